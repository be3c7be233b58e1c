/* Fuzz target: both ends of the control protocol's line parsing.
 *
 * control_parse_request is the daemon's parser of a client's request line
 * (control.c hands it every line it read, after the length and byte
 * checks; it is fed here without those checks, so it must hold up on its
 * own). protocol_parse_reply_header is gatekeeperctl's parser of the
 * daemon's reply header, which sizes the body it then reads. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "control.h"
#include "protocol.h"
#include "fuzz_check.h"

static void check_request(const char *copy, char *line, size_t len)
{
	struct control_request req;
	char err[256];

	err[0] = '\0';
	if (control_parse_request(line, &req, err, sizeof(err)) < 0) {
		CHECK(err[0] != '\0' && memchr(err, '\0', sizeof(err)));
		return;
	}
	switch (req.command) {
	case CONTROL_CMD_HELLO:
	case CONTROL_CMD_RELOAD:
	case CONTROL_CMD_METRICS:
	case CONTROL_CMD_FLEET_INIT:
		CHECK(!req.site && !req.json && !req.has_action && !req.local && !req.wait);
		break;
	case CONTROL_CMD_STATUS:
	case CONTROL_CMD_STATS:
		CHECK(!req.site && !req.has_action);
		CHECK(!req.json || strstr(copy, PROTOCOL_ARG_JSON));
		break;
	case CONTROL_CMD_OFFLINE:
	case CONTROL_CMD_ONLINE:
	case CONTROL_CMD_RESET:
		/* the site name is a word of the line, split in place */
		CHECK(req.site && req.site >= line && req.site < line + len);
		CHECK(req.site[0] != '\0' && !strpbrk(req.site, " \t"));
		CHECK(!req.json);
		CHECK(!req.has_action || req.command == CONTROL_CMD_OFFLINE);
		CHECK(!req.has_action || req.action == SITE_ACTION_DROP ||
		      req.action == SITE_ACTION_REJECT);
		break;
	default:
		CHECK(0);
	}
	CHECK(control_request_changes_state(&req) ==
	      (req.command == CONTROL_CMD_OFFLINE || req.command == CONTROL_CMD_ONLINE ||
	       req.command == CONTROL_CMD_RESET || req.command == CONTROL_CMD_RELOAD ||
	       req.command == CONTROL_CMD_FLEET_INIT));
}

static void check_reply_header(const char *line)
{
	struct protocol_reply_header h;

	if (protocol_parse_reply_header(line, &h) < 0)
		return;
	CHECK(h.len <= PROTOCOL_MAX_BODY);
	CHECK(memchr(h.code, '\0', sizeof(h.code)));
	if (h.ok)
		CHECK(h.code[0] == '\0' && strncmp(line, "OK ", 3) == 0);
	else
		CHECK(h.code[0] != '\0' && !strchr(h.code, ' ') && strncmp(line, "ERR ", 4) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *line, *copy;

	/* the daemon never passes more than one line of PROTOCOL_MAX_LINE */
	if (size >= PROTOCOL_MAX_LINE)
		return 0;
	/* exact-size NUL-terminated copies; an embedded NUL simply ends the
	 * string, as it would for the parser */
	line = malloc(size + 1);
	copy = malloc(size + 1);
	if (!line || !copy)
		goto out;
	memcpy(line, data, size);
	line[size] = '\0';
	memcpy(copy, line, size + 1);

	check_reply_header(line);
	check_request(copy, line, size);
out:
	free(line);
	free(copy);
	return 0;
}
