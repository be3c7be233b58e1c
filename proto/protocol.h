/* protocol: the control socket's wire format and the rules both ends of
 * it hold, the only thing gatekeeperd and gatekeeperctl share (see
 * proto/PROTOCOL.md).
 *
 *   request:  one line, "COMMAND [ARG...]\n", at most PROTOCOL_MAX_LINE
 *             bytes including the newline
 *   reply:    "OK <len>\n" or "ERR <code> <len>\n", then exactly <len>
 *             bytes of body (text, or JSON when the request asked for it)
 *
 * Self-contained on purpose (libc only): gatekeeperctl links nothing else
 * of the daemon, so the two sides can drift only through this file. */
#ifndef GK_PROTOCOL_H
#define GK_PROTOCOL_H

#include <stdbool.h>
#include <stddef.h>
#include <string.h>

#define PROTOCOL_VERSION 1
/* The daemon's default control.socket, and the client's default -s. */
#define PROTOCOL_DEFAULT_SOCKET "/run/gatekeeper/control.sock"

/* A site name, as the config, the state file and the requests know it:
 * 1 to PROTOCOL_SITE_NAME_MAX of these characters. Never a space or a
 * newline, so a name cannot smuggle a second word or request into a line. */
#define PROTOCOL_SITE_NAME_MAX 64
#define PROTOCOL_SITE_NAME_CHARS \
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-"

/* What an offline site does with a SYN: the words of the config's
 * "action", of the offline request and of the state file. */
#define PROTOCOL_ACTION_DROP "drop"
#define PROTOCOL_ACTION_REJECT "reject"

/* A request line, newline included. */
#define PROTOCOL_MAX_LINE 4096
/* A reply header: "ERR " + code + " " + 20 digits + "\n" fits easily. */
#define PROTOCOL_MAX_HEADER 64
/* The largest body a reader accepts; a status of many thousands of sites
 * stays far below it, and a corrupt length cannot make the reader
 * allocate without bound. */
#define PROTOCOL_MAX_BODY (64u * 1024u * 1024u)

/* Commands. */
#define PROTOCOL_CMD_HELLO "hello"
#define PROTOCOL_CMD_STATUS "status"
#define PROTOCOL_CMD_STATS "stats"
#define PROTOCOL_CMD_OFFLINE "offline"
#define PROTOCOL_CMD_ONLINE "online"
#define PROTOCOL_CMD_RESET "reset"
#define PROTOCOL_CMD_RELOAD "reload"
#define PROTOCOL_CMD_METRICS "metrics" /* Prometheus text exposition */
#define PROTOCOL_CMD_FLEET_INIT "fleet-init" /* create the fleet's schema key in etcd */
/* The optional argument of status and stats that asks for a JSON body. */
#define PROTOCOL_ARG_JSON "json"
/* offline's deadline (for=SECONDS, until=UNIXTIME): from 1 s to 366 days
 * ahead, checked by gatekeeperctl and again by the daemon */
#define PROTOCOL_DEADLINE_MIN_S 1
#define PROTOCOL_DEADLINE_MAX_S (366 * 86400)
/* offline's option that also ends the site's established connections */
#define PROTOCOL_OPTION_CUT "cut"
/* fleet mode: a toggle on this box only (a local pin), and a toggle answered
 * once every live box applied it */
#define PROTOCOL_OPTION_LOCAL "local"
#define PROTOCOL_OPTION_WAIT "wait"

/* Error codes of "ERR <code> <len>". */
#define PROTOCOL_ERR_USAGE "usage"               /* unknown command, bad arguments */
#define PROTOCOL_ERR_MALFORMED "malformed"       /* line too long or binary: connection closed */
#define PROTOCOL_ERR_PERMISSION "permission"     /* read-only peer asked for a change */
#define PROTOCOL_ERR_UNKNOWN_SITE "unknown-site" /* no site of that name in the running config */
#define PROTOCOL_ERR_CONFIG "config"             /* reload refused: body lists FILE:LINE:COL errors */
#define PROTOCOL_ERR_FAILED "failed"             /* could not be done (state file, memory) */
#define PROTOCOL_ERR_BUSY "busy"                 /* too many clients: connection closed */
#define PROTOCOL_ERR_TIMEOUT "timeout"           /* idle too long: connection closed */
#define PROTOCOL_ERR_FLEET "fleet"               /* etcd unreachable, not initialised, not applied in time */

static inline bool protocol_site_name_valid(const char *name)
{
	size_t len = strnlen(name, PROTOCOL_SITE_NAME_MAX + 1);

	return len >= 1 && len <= PROTOCOL_SITE_NAME_MAX &&
	       strspn(name, PROTOCOL_SITE_NAME_CHARS) == len;
}

static inline bool protocol_action_valid(const char *word)
{
	return strcmp(word, PROTOCOL_ACTION_DROP) == 0 || strcmp(word, PROTOCOL_ACTION_REJECT) == 0;
}

struct protocol_reply_header {
	bool ok;
	char code[24]; /* "" when ok */
	size_t len;
};

/* Parses one reply header line (without its newline). 0, or -1 when the
 * line is not a valid header or announces more than PROTOCOL_MAX_BODY. */
static inline int protocol_parse_reply_header(const char *line, struct protocol_reply_header *out)
{
	const char *p = line, *code = NULL;
	size_t code_len = 0, len = 0, digits = 0;

	memset(out, 0, sizeof(*out));
	if (strncmp(p, "OK ", 3) == 0) {
		out->ok = true;
		p += 3;
	} else if (strncmp(p, "ERR ", 4) == 0) {
		p += 4;
		code = p;
		code_len = strcspn(p, " ");
		if (code_len == 0 || code_len >= sizeof(out->code) || p[code_len] != ' ')
			return -1;
		p += code_len + 1;
	} else {
		return -1;
	}
	for (; *p >= '0' && *p <= '9'; p++, digits++) {
		if (digits >= 10) /* far above PROTOCOL_MAX_BODY: no overflow */
			return -1;
		len = len * 10 + (size_t)(*p - '0');
	}
	if (digits == 0 || *p != '\0' || len > PROTOCOL_MAX_BODY)
		return -1;
	if (code) {
		memcpy(out->code, code, code_len);
		out->code[code_len] = '\0';
	}
	out->len = len;
	return 0;
}

#endif
