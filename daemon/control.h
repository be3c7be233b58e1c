/* control: the control socket server that gatekeeperctl talks to.
 *
 * An AF_UNIX stream socket (config control.socket, mode 0660, group
 * control.group). Every peer is identified once, at accept, by
 * SO_PEERCRED and SO_PEERGROUPS: uid 0 and members of control.group may
 * change state (offline, online, reset, reload); anyone else who can open
 * the socket may only read (hello, status, stats, metrics).
 *
 * Everything runs on the main thread from one epoll fd that main() polls,
 * non-blocking, with a bounded input line and one pending reply per
 * client, a 3 s deadline for a connection's first request, a 30 s
 * deadline per request/reply round after it, and at most
 * CONTROL_MAX_CLIENTS clients, shared out by control_slots.h (a cap per
 * uid, the last few kept for privileged peers, root evicting the
 * longest-idle), so no client can hold up another or lock root out; the
 * packet workers are other threads and never wait on this module. The
 * wire format is in proto/protocol.h and proto/PROTOCOL.md. */
#ifndef GK_CONTROL_H
#define GK_CONTROL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "config.h"

#define CONTROL_MAX_CLIENTS 64
/* ... of which read-only peers may hold at most all but these */
#define CONTROL_RESERVED_PRIVILEGED 8
#define CONTROL_IDLE_TIMEOUT_MS 30000
/* A new connection has this long to send its first complete request: a
 * peer that connects and says nothing holds a slot for seconds, not for
 * the whole idle timeout (gatekeeperctl sends at once) */
#define CONTROL_FIRST_REQUEST_MS 3000
#define CONTROL_DIR_MODE 0755
/* A request waiting on the fleet (etcd) is answered within this, by the
 * fleet's own deadlines; past it the client gets "timeout". */
#define CONTROL_PENDING_MAX_MS 20000

struct control;
struct engine;

/* Who is on the other end of a connection, as the kernel told us. */
struct control_peer {
	uid_t uid;
	gid_t gid;
	pid_t pid;
	bool privileged; /* may change state */
};

/* Creates the socket named by ENGINE's config and serves ENGINE; reloads
 * read CONFIG_PATH. RUN_AS is the user the daemon will run as (NULL: the
 * one it runs as now): its uid ranks above group members for the slots,
 * and it may own the socket's directory.
 *
 * The socket is born with its final mode and group (umask and fsgid
 * around bind()), never chmod'ed or chown'ed by path afterwards: the
 * directory may belong to the daemon's user, who could swap the path for
 * a symlink between bind() and a path-based chown run as root. A
 * directory that is a symlink, owned by anyone but root or that user, or
 * writable by others is refused.
 *
 * NULL (after logging why) when the socket cannot be created: the daemon
 * must not run without a way to control it. */
struct control *control_open(struct engine *engine, const char *config_path, const char *run_as);
/* Closes every client and removes the socket file, if it is still ours. */
void control_close(struct control *ctl);

struct strbuf;
/* The reply to the request TICKET that waited (control_internal.h): CODE
 * NULL for OK, else a PROTOCOL_ERR_* code, then BODY. Ignored when that
 * client is gone. */
void control_complete(struct control *ctl, uint64_t ticket, const char *code,
		      const struct strbuf *body);

/* The fd to poll for input (an epoll fd), and how long the poll may sleep
 * before control_dispatch() must run anyway (-1: forever). */
int control_fd(const struct control *ctl);
int control_timeout_ms(const struct control *ctl);
/* Serves whatever is ready and ends clients past their deadline. Never
 * blocks. */
void control_dispatch(struct control *ctl);

/* Reloads the config (SIGHUP), the same way as `gatekeeperctl reload`:
 * errors are logged and the old config stays; on success the state file
 * is rewritten. TRIGGER names the cause in the log. 0 or -1. */
int control_reload(struct control *ctl, const char *trigger);

/* ---- exposed for the unit tests ---- */

/* Serves FD (a connected stream socket, e.g. one end of a socketpair) as
 * a client identified as PEER. Takes FD; 0, or -1 and FD closed. */
int control_adopt(struct control *ctl, int fd, const struct control_peer *peer);
void control_set_idle_timeout(struct control *ctl, int ms);
void control_set_first_request_timeout(struct control *ctl, int ms);
/* Whether WANT is the primary group GID or one of GROUPS. */
bool control_peer_in_group(gid_t want, gid_t gid, const gid_t *groups, size_t n_groups);

enum control_command {
	CONTROL_CMD_HELLO,
	CONTROL_CMD_STATUS,
	CONTROL_CMD_STATS,
	CONTROL_CMD_OFFLINE,
	CONTROL_CMD_ONLINE,
	CONTROL_CMD_RESET,
	CONTROL_CMD_RELOAD,
	CONTROL_CMD_METRICS,
	CONTROL_CMD_FLEET_INIT,
};

#define CONTROL_MAX_OPTIONS 3

struct control_request {
	enum control_command command;
	bool json;          /* status, stats */
	const char *site;   /* offline, online, reset: points into the line */
	bool has_action;    /* offline */
	enum site_action action;
	/* offline: "allow=...", "for=..." / "until=...", "cut" (maintenance.h),
	 * checked by control_parse_request; pointing into the line */
	const char *options[CONTROL_MAX_OPTIONS];
	size_t n_options;
	/* with a fleet: this box only (a local pin); answer once every live
	 * box applied it */
	bool local, wait;
};

/* Parses one request line (no newline, NUL-terminated; split in place).
 * 0, or -1 with a message for the client in ERR. */
int control_parse_request(char *line, struct control_request *req, char *err, size_t err_len);
/* Whether REQ's command changes state (needs a privileged peer). */
bool control_request_changes_state(const struct control_request *req);

#endif
