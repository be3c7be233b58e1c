/* control_internal: what the socket server (control.c) shares with the
 * commands (control_commands.c). Private to the control module. */
#ifndef GK_CONTROL_INTERNAL_H
#define GK_CONTROL_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>

#include "control.h"
#include "strbuf.h"

struct control_client;

struct control {
	struct engine *engine;
	char *config_path;
	char *socket_path;
	struct listener *listener; /* the socket and its client slots */
	dev_t socket_dev; /* the socket file we made, so stop removes only it */
	ino_t socket_ino;
	bool have_group;
	gid_t group_gid;
	uid_t daemon_uid; /* config user, or who runs us: ranks as owner */
	gid_t daemon_gid;
	int first_request_ms;
	uint64_t started_ms; /* CLOCK_MONOTONIC, for the uptime */
	int idle_timeout_ms;
	bool work_pending; /* a client has queued requests left over */
	uint64_t next_ticket; /* names each request whose reply may come later */
	uint64_t executing;   /* the ticket of the request being run */
	struct control_client *clients; /* one per listener slot */
};

/* Runs one request line from PEER and appends the whole reply (header and
 * body) to OUT; or, for a request that waits on the fleet (etcd), returns
 * true and appends nothing: control_complete(TICKET) gives the reply. */
bool control_execute(struct control *ctl, const struct control_peer *peer, char *line,
		     struct strbuf *out, uint64_t ticket);
/* A command's "code" for a reply that comes later, with ctl->executing. */
extern const char control_pending[];
/* Appends "OK <len>\n" (CODE NULL) or "ERR CODE <len>\n", then BODY. */
void control_reply(struct strbuf *out, const char *code, const struct strbuf *body);
/* Appends an error reply with a one-line printf-style message. */
__attribute__((format(printf, 3, 4))) void control_reply_error(struct strbuf *out, const char *code,
								const char *fmt, ...);

struct health;
struct metrics_server;
struct sites;

/* The bodies of status and stats (control_report.c), text or JSON. */
struct fleet;
/* FLEET NULL: no fleet section. */
void control_status_text(const struct sites *sites, const struct health *health,
			 const struct metrics_server *metrics, const struct fleet *fleet,
			 struct strbuf *b);
void control_status_json(const struct sites *sites, const struct health *health,
			 const struct metrics_server *metrics, const struct fleet *fleet,
			 struct strbuf *b);
void control_stats_text(const struct control *ctl, struct strbuf *b);
void control_stats_json(const struct control *ctl, struct strbuf *b);

/* Resolves control.group of the running config (who may change state)
 * and, on a reload that changed control.group or control.mode, gives them
 * to the socket through a verified fd of the file we bound, never by
 * path. Warns (once per call) when the group does not exist. */
void control_apply_group(struct control *ctl);

#endif
