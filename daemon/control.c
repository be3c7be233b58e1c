/* control: the socket, the clients, framing and peer credentials. The
 * commands themselves are in control_commands.c. */
#include "control.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pwd.h>
#include <sys/epoll.h>
#include <sys/fsuid.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "clock.h"
#include "control_internal.h"
#include "control_slots.h"
#include "engine.h"
#include "listener.h"
#include "log.h"
#include "protocol.h"

/* Requests served per client per dispatch, so one client pipelining
 * thousands of cheap requests cannot starve the others. */
#define REQUEST_BUDGET 16

/* One per listener slot; the fd, what epoll watches and the deadline of
 * the current request/reply round are the listener's. */
struct control_client {
	struct control_peer peer;
	char in[PROTOCOL_MAX_LINE];
	size_t in_len;
	struct strbuf out; /* the pending reply */
	size_t out_off;
	bool eof, closing, more;
	bool answered; /* one reply sent: the first-request deadline is over */
	bool waiting;  /* its request's reply comes later (control_complete) */
	uint64_t ticket; /* which one, while waiting */
	enum control_rank rank;
	uint64_t active_ms; /* for eviction: the longest idle goes first */
};

static size_t slot_of(const struct control *ctl, const struct control_client *c)
{
	return (size_t)(c - ctl->clients);
}

static int fd_of(const struct control *ctl, const struct control_client *c)
{
	return listener_client_fd(ctl->listener, slot_of(ctl, c));
}

/* The next request/reply round ends this long from now. */
static uint64_t round_deadline(const struct control *ctl)
{
	return clock_now_ms() + (uint64_t)ctl->idle_timeout_ms;
}

/* A new connection's first request must come sooner. */
static uint64_t first_deadline(const struct control *ctl)
{
	int ms = ctl->first_request_ms < ctl->idle_timeout_ms ? ctl->first_request_ms
							       : ctl->idle_timeout_ms;
	return clock_now_ms() + (uint64_t)ms;
}

/* ---- peer credentials ---- */

bool control_peer_in_group(gid_t want, gid_t gid, const gid_t *groups, size_t n_groups)
{
	if (gid == want)
		return true;
	for (size_t i = 0; i < n_groups; i++)
		if (groups[i] == want)
			return true;
	return false;
}

/* SO_PEERGROUPS gives the supplementary groups the peer had when it
 * connected, taken by the kernel with its uid: unlike /proc/PID/status or
 * getgrouplist() it cannot be fooled by a reused PID or a changed
 * /etc/group. Fails closed. */
static bool peer_in_group(int fd, const struct ucred *cred, gid_t want)
{
	gid_t small[64], *groups = small;
	socklen_t len = sizeof(small);
	bool found = false;

	if (cred->gid == want)
		return true;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &len) < 0) {
		if (errno != ERANGE || !(groups = malloc(len)))
			goto fail;
		if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &len) < 0)
			goto fail;
	}
	found = control_peer_in_group(want, cred->gid, groups, len / sizeof(gid_t));
	if (groups != small)
		free(groups);
	return found;
fail:
	log_warn_errno("control: cannot read the groups of pid %d (uid %u); treating it as read-only",
		       (int)cred->pid, (unsigned)cred->uid);
	if (groups != small)
		free(groups);
	return false;
}

static int peer_identify(const struct control *ctl, int fd, struct control_peer *peer)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0)
		return -1;
	peer->uid = cred.uid;
	peer->gid = cred.gid;
	peer->pid = cred.pid;
	peer->privileged = cred.uid == 0 ||
			   (ctl->have_group && peer_in_group(fd, &cred, ctl->group_gid));
	return 0;
}

/* ---- clients ---- */

/* Closing a unix socket with unread input makes the kernel reset the
 * peer, which can discard the error reply it has not read yet. So: refuse
 * further input, throw away what is queued (bounded: one socket buffer),
 * then close, and a client that sent garbage still reads why it was cut. */
static void client_discard_input(int fd)
{
	char sink[4096];

	shutdown(fd, SHUT_RD);
	for (int i = 0; i < 256 && recv(fd, sink, sizeof(sink), MSG_DONTWAIT) > 0; i++)
		;
}

static enum control_rank rank_of(const struct control *ctl, const struct control_peer *peer)
{
	if (peer->uid == 0)
		return CONTROL_RANK_ROOT;
	if (peer->uid == ctl->daemon_uid)
		return CONTROL_RANK_OWNER;
	return peer->privileged ? CONTROL_RANK_MEMBER : CONTROL_RANK_READER;
}

static void client_close(struct control *ctl, struct control_client *c)
{
	log_debug("control: client uid %u pid %d gone", (unsigned)c->peer.uid, (int)c->peer.pid);
	client_discard_input(fd_of(ctl, c));
	listener_remove(ctl->listener, slot_of(ctl, c));
	strbuf_free(&c->out);
}

int control_adopt(struct control *ctl, int fd, const struct control_peer *peer)
{
	struct control_client *c;
	int slot = -1;

	if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) < 0 ||
	    (slot = listener_add(ctl->listener, fd, EPOLLIN, first_deadline(ctl))) < 0) {
		close(fd);
		return -1;
	}
	c = &ctl->clients[slot];
	memset(c, 0, sizeof(*c));
	c->peer = *peer;
	c->rank = rank_of(ctl, peer);
	c->active_ms = clock_now_ms();
	strbuf_init(&c->out, PROTOCOL_MAX_BODY + PROTOCOL_MAX_HEADER);
	log_debug("control: client uid %u pid %d connected (%s, %s)", (unsigned)peer->uid,
		  (int)peer->pid, peer->privileged ? "may change state" : "read-only",
		  control_rank_name(c->rank));
	return 0;
}

/* A refusal is written once, without waiting: a fresh socket's buffer has
 * room for it, and a client that cannot take it loses nothing of value. */
static void send_refusal(int fd, const char *code, const char *message)
{
	char text[256];
	int n = snprintf(text, sizeof(text), "ERR %s %zu\n%s\n", code, strlen(message) + 1, message);

	if (n > 0 && (size_t)n < sizeof(text))
		(void)!send(fd, text, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT);
}

/* Who may have a slot, and whom to evict for them: control_slots.h. */
static int make_room(struct control *ctl, const struct control_peer *peer, int fd)
{
	struct control_slot view[CONTROL_MAX_CLIENTS];
	enum control_rank rank = rank_of(ctl, peer);
	struct control_client *victim;
	size_t slot = 0;

	for (size_t i = 0; i < CONTROL_MAX_CLIENTS; i++) {
		view[i].used = listener_client_fd(ctl->listener, i) >= 0;
		view[i].uid = ctl->clients[i].peer.uid;
		view[i].rank = ctl->clients[i].rank;
		view[i].active_ms = ctl->clients[i].active_ms;
	}
	switch (control_slots_admit(view, CONTROL_MAX_CLIENTS, CONTROL_RESERVED_PRIVILEGED,
				    peer->uid, rank, &slot)) {
	case CONTROL_ADMIT:
		return 0;
	case CONTROL_ADMIT_EVICT:
		victim = &ctl->clients[slot];
		log_info("control: every slot taken; closing the longest-idle client (uid %u pid %d, "
			 "%s) for uid %u pid %d (%s)", (unsigned)victim->peer.uid,
			 (int)victim->peer.pid, control_rank_name(victim->rank), (unsigned)peer->uid,
			 (int)peer->pid, control_rank_name(rank));
		if (victim->out_off == victim->out.len)
			send_refusal(fd_of(ctl, victim), PROTOCOL_ERR_BUSY,
				     "closed to make room for a privileged client; try again later");
		client_close(ctl, victim);
		return 0;
	case CONTROL_REFUSE_UID_CAP:
		log_debug("control: uid %u already holds %d connections; refusing pid %d",
			  (unsigned)peer->uid, CONTROL_MAX_PER_UID, (int)peer->pid);
		send_refusal(fd, PROTOCOL_ERR_BUSY,
			     "too many control connections from this user; try again in a moment");
		return -1;
	case CONTROL_REFUSE_FULL:
		break;
	}
	log_debug("control: no client slot left for uid %u pid %d", (unsigned)peer->uid,
		  (int)peer->pid);
	send_refusal(fd, PROTOCOL_ERR_BUSY, "too many control clients connected; try again in a moment");
	return -1;
}

static void on_accepted(void *owner, int fd)
{
	struct control *ctl = owner;
	struct control_peer peer;

	if (peer_identify(ctl, fd, &peer) < 0) {
		log_warn_errno("control: SO_PEERCRED");
		close(fd);
		return;
	}
	if (make_room(ctl, &peer, fd) < 0) {
		close(fd);
		return;
	}
	if (control_adopt(ctl, fd, &peer) < 0)
		log_warn_errno("control: cannot serve a client");
}

/* Sends what is pending. 0 (maybe partly sent), -1 on a dead socket. */
static int client_flush(int fd, struct control_client *c)
{
	while (c->out_off < c->out.len) {
		ssize_t n = send(fd, c->out.data + c->out_off, c->out.len - c->out_off,
				 MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -1;
		c->out_off += (size_t)n;
	}
	return 0;
}

static void client_progress(struct control *ctl, struct control_client *c);

/* Handles the complete line at the start of the input buffer. */
static void client_handle_line(struct control *ctl, struct control_client *c, size_t len)
{
	char *line = c->in;

	line[len] = '\0'; /* the newline's place */
	if (len && line[len - 1] == '\r')
		line[--len] = '\0';
	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)line[i];
		if ((ch < 0x20 && ch != '\t') || ch >= 0x7f) {
			control_reply_error(&c->out, PROTOCOL_ERR_MALFORMED,
					    "byte 0x%02x at offset %zu: requests are printable ASCII text lines",
					    ch, i);
			c->closing = true;
			return;
		}
	}
	c->ticket = ++ctl->next_ticket;
	if (control_execute(ctl, &c->peer, line, &c->out, c->ticket)) {
		/* nothing more is read from it until the reply is there */
		c->waiting = true;
		listener_watch(ctl->listener, slot_of(ctl, c), 0);
		listener_set_deadline(ctl->listener, slot_of(ctl, c),
				      clock_now_ms() + CONTROL_PENDING_MAX_MS);
	}
}

void control_complete(struct control *ctl, uint64_t ticket, const char *code,
		      const struct strbuf *body)
{
	for (size_t i = 0; i < CONTROL_MAX_CLIENTS; i++) {
		struct control_client *c = &ctl->clients[i];

		if (listener_client_fd(ctl->listener, i) < 0 || !c->waiting || c->ticket != ticket)
			continue;
		c->waiting = false;
		control_reply(&c->out, code, body);
		client_progress(ctl, c);
		return;
	}
	/* the client went away, or timed out, meanwhile: nobody to tell */
}

/* Moves the client as far as it can go without blocking: flush the reply,
 * then serve the next complete request, until it must wait. */
static void client_progress(struct control *ctl, struct control_client *c)
{
	int budget = REQUEST_BUDGET;

	c->more = false;
	for (;;) {
		char *newline;

		if (c->waiting)
			return;

		if (c->out_off < c->out.len) {
			if (client_flush(fd_of(ctl, c), c) < 0) {
				client_close(ctl, c);
				return;
			}
			if (c->out_off < c->out.len) {
				listener_watch(ctl->listener, slot_of(ctl, c), EPOLLOUT);
				return;
			}
			strbuf_reset(&c->out);
			c->out_off = 0;
			c->answered = true;
			c->active_ms = clock_now_ms();
			listener_set_deadline(ctl->listener, slot_of(ctl, c), round_deadline(ctl));
		}
		if (c->closing) {
			client_close(ctl, c);
			return;
		}
		newline = memchr(c->in, '\n', c->in_len);
		if (newline) {
			size_t len = (size_t)(newline - c->in);

			if (budget-- == 0) {
				c->more = true;
				ctl->work_pending = true;
				return;
			}
			client_handle_line(ctl, c, len);
			c->in_len -= len + 1;
			memmove(c->in, c->in + len + 1, c->in_len);
			continue;
		}
		if (c->in_len == sizeof(c->in)) {
			control_reply_error(&c->out, PROTOCOL_ERR_MALFORMED,
					    "request longer than %d bytes; closing the connection",
					    PROTOCOL_MAX_LINE);
			c->closing = true;
			continue;
		}
		if (c->eof) { /* a partial last line is not a request */
			client_close(ctl, c);
			return;
		}
		listener_watch(ctl->listener, slot_of(ctl, c), EPOLLIN);
		return;
	}
}

static void on_ready(void *owner, size_t slot, uint32_t events)
{
	struct control *ctl = owner;
	struct control_client *c = &ctl->clients[slot];

	/* gone while its reply is pending: epoll reports the hang-up over and
	 * over (it is watched for nothing else), so end it now */
	if (c->waiting && (events & (EPOLLHUP | EPOLLERR))) {
		client_close(ctl, c);
		return;
	}
	if ((events & (EPOLLIN | EPOLLHUP | EPOLLERR)) &&
	    (listener_events(ctl->listener, slot) & EPOLLIN) && c->in_len < sizeof(c->in)) {
		ssize_t n = recv(fd_of(ctl, c), c->in + c->in_len, sizeof(c->in) - c->in_len,
				 MSG_DONTWAIT);

		if (n > 0) {
			c->in_len += (size_t)n;
			c->active_ms = clock_now_ms();
		} else if (n == 0) {
			c->eof = true;
		} else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
			client_close(ctl, c);
			return;
		}
	}
	client_progress(ctl, c);
}

static void on_expired(void *owner, size_t slot)
{
	struct control *ctl = owner;
	struct control_client *c = &ctl->clients[slot];

	log_debug("control: client uid %u pid %d timed out (%s)", (unsigned)c->peer.uid,
		  (int)c->peer.pid, c->answered ? "idle" : "no first request");
	if (c->out_off == c->out.len)
		send_refusal(fd_of(ctl, c), PROTOCOL_ERR_TIMEOUT,
			     "no complete request within the time limit; closing");
	client_close(ctl, c);
}

static const struct listener_handlers handlers = {
	.accepted = on_accepted,
	.ready = on_ready,
	.expired = on_expired,
};

void control_dispatch(struct control *ctl)
{
	ctl->work_pending = false;
	listener_dispatch(ctl->listener);
	/* clients whose request budget ran out with requests left over */
	for (size_t i = 0; i < CONTROL_MAX_CLIENTS; i++)
		if (listener_client_fd(ctl->listener, i) >= 0 && ctl->clients[i].more)
			client_progress(ctl, &ctl->clients[i]);
}

int control_fd(const struct control *ctl)
{
	return listener_fd(ctl->listener);
}

int control_timeout_ms(const struct control *ctl)
{
	return ctl->work_pending ? 0 : listener_timeout_ms(ctl->listener);
}

void control_set_idle_timeout(struct control *ctl, int ms)
{
	ctl->idle_timeout_ms = ms;
}

void control_set_first_request_timeout(struct control *ctl, int ms)
{
	ctl->first_request_ms = ms;
}

/* ---- the socket ---- */

static int resolve_group(const char *name, gid_t *out)
{
	struct group grp, *found = NULL;
	size_t size = 16384;
	char *buf = NULL;
	int rc;

	for (;;) {
		char *grown = realloc(buf, size);
		if (!grown) {
			rc = ENOMEM;
			break;
		}
		buf = grown;
		rc = getgrnam_r(name, &grp, buf, size, &found);
		if (rc != ERANGE || size >= 1u << 20)
			break;
		size *= 2;
	}
	if (rc == 0 && found)
		*out = found->gr_gid;
	free(buf);
	if (rc == 0 && !found)
		rc = ENOENT;
	errno = rc;
	return rc ? -1 : 0;
}

/* Sets the socket file's group and mode, if they are not what we want,
 * through an O_PATH fd of the very file we bound (dev and inode checked):
 * never by path, which the directory's owner could point elsewhere. */
static int socket_set_owner(struct control *ctl, gid_t gid, mode_t mode)
{
	char proc[64];
	struct stat st;
	int fd = open(ctl->socket_path, O_PATH | O_NOFOLLOW | O_CLOEXEC), rc = -1;

	if (fd < 0 || fstat(fd, &st) < 0) {
		log_warn_errno("control: %s", ctl->socket_path);
		goto out;
	}
	if (!S_ISSOCK(st.st_mode) || st.st_dev != ctl->socket_dev || st.st_ino != ctl->socket_ino) {
		log_warn("control: %s is no longer the socket we created; leaving it alone",
			 ctl->socket_path);
		goto out;
	}
	if (st.st_gid != gid && fchownat(fd, "", (uid_t)-1, gid, AT_EMPTY_PATH) < 0) {
		log_warn_errno("control: cannot give %s to gid %u", ctl->socket_path, (unsigned)gid);
		goto out;
	}
	/* fchmod() refuses an O_PATH fd; its /proc link names the same inode */
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
	if ((st.st_mode & 07777) != mode && chmod(proc, mode) < 0) {
		log_warn_errno("control: cannot set the mode of %s", ctl->socket_path);
		goto out;
	}
	rc = 0;
out:
	if (fd >= 0)
		close(fd);
	return rc;
}

/* Resolves control.group into ctl->have_group/group_gid. */
static void resolve_control_group(struct control *ctl)
{
	const char *name = engine_config(ctl->engine)->control.group;
	gid_t gid;

	ctl->have_group = false;
	if (!name)
		return;
	if (resolve_group(name, &gid) < 0) {
		log_warn("control.group '%s': %s; only root may change state",
			 name, errno == ENOENT ? "no such group" : strerror(errno));
		return;
	}
	ctl->have_group = true;
	ctl->group_gid = gid;
}

void control_apply_group(struct control *ctl)
{
	struct stat st;

	resolve_control_group(ctl);
	/* a reload that changed neither the group nor the mode touches no
	 * file: under the unit's syscall filter chown is refused */
	if (!ctl->socket_ino || lstat(ctl->socket_path, &st) < 0 ||
	    ((!ctl->have_group || st.st_gid == ctl->group_gid) &&
	     (st.st_mode & 07777) == (mode_t)engine_config(ctl->engine)->control.mode))
		return;
	socket_set_owner(ctl, ctl->have_group ? ctl->group_gid : st.st_gid,
			 (mode_t)engine_config(ctl->engine)->control.mode);
}

/* Makes PATH's directory if it is missing (not its parents: those are
 * the system's, /run or /var/lib), and refuses one that others could
 * change under us: a symlink, owned by anyone but root, us or the user we
 * will run as, writable by others, or group-writable by a group other
 * than root's (the operators' group must not be able to swap the socket
 * for a fake one). */
static int check_socket_dir(const struct control *ctl)
{
	char dir[sizeof(((struct sockaddr_un *)0)->sun_path)];
	const char *slash = strrchr(ctl->socket_path, '/');
	struct stat st;
	int fd;

	if (!slash)
		snprintf(dir, sizeof(dir), ".");
	else if (slash == ctl->socket_path)
		snprintf(dir, sizeof(dir), "/");
	else
		snprintf(dir, sizeof(dir), "%.*s", (int)(slash - ctl->socket_path), ctl->socket_path);
	if (mkdir(dir, CONTROL_DIR_MODE) < 0 && errno != EEXIST) {
		log_error_errno("control.socket: cannot create the directory %s", dir);
		return -1;
	}
	fd = open(dir, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) < 0) {
		if (errno == ELOOP || errno == ENOTDIR)
			log_error("control.socket: %s is a symlink or not a directory; refusing it: "
				  "use a real directory", dir);
		else
			log_error_errno("control.socket: %s", dir);
		if (fd >= 0)
			close(fd);
		return -1;
	}
	close(fd);
	if (st.st_uid != 0 && st.st_uid != geteuid() && st.st_uid != ctl->daemon_uid) {
		log_error("control.socket: the directory %s belongs to uid %u, not to root or the "
			  "daemon's user (uid %u); refusing it: chown it, or use another directory",
			  dir, (unsigned)st.st_uid, (unsigned)ctl->daemon_uid);
		return -1;
	}
	if ((st.st_mode & S_IWOTH) || ((st.st_mode & S_IWGRP) && st.st_gid != 0)) {
		log_error("control.socket: the directory %s (mode %04o, gid %u) is writable by "
			  "others; refusing it: chmod go-w it, or use another directory",
			  dir, (unsigned)(st.st_mode & 07777), (unsigned)st.st_gid);
		return -1;
	}
	return 0;
}

/* A leftover socket of a dead daemon is removed; one that still answers,
 * or anything that is not a socket, is left alone and we refuse to start. */
static int clear_stale_socket(const struct sockaddr_un *addr)
{
	struct stat st;
	int fd, rc;

	if (lstat(addr->sun_path, &st) < 0) {
		if (errno == ENOENT)
			return 0;
		log_error_errno("control.socket %s", addr->sun_path);
		return -1;
	}
	if (!S_ISSOCK(st.st_mode)) {
		log_error("control.socket %s exists and is not a socket; refusing to replace it. "
			  "Remove it, or set control.socket to another path", addr->sun_path);
		return -1;
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		log_error_errno("control: socket");
		return -1;
	}
	rc = connect(fd, (const struct sockaddr *)addr, sizeof(*addr));
	close(fd);
	if (rc == 0) {
		log_error("control.socket %s: another process is serving it (another gatekeeperd?)",
			  addr->sun_path);
		return -1;
	}
	if (unlink(addr->sun_path) < 0 && errno != ENOENT) {
		log_error_errno("control.socket: cannot remove the stale %s", addr->sun_path);
		return -1;
	}
	return 0;
}

/* Binds FD to ADDR with the file born as it must stay: mode
 * control.mode (the umask), group control.group (the fsgid; needs root,
 * or the group being our own). Both are per process: no other thread
 * exists yet at start-up (see main.c). Returns bind()'s result. */
static int bind_final(const struct control *ctl, int fd, const struct sockaddr_un *addr)
{
	mode_t mode = (mode_t)engine_config(ctl->engine)->control.mode;
	mode_t old_mask = umask(~mode & 0777);
	bool swap_gid = ctl->have_group && ctl->group_gid != getegid() && geteuid() == 0;
	int rc, saved;

	if (swap_gid)
		setfsgid(ctl->group_gid);
	rc = bind(fd, (const struct sockaddr *)addr, sizeof(*addr));
	saved = errno;
	if (swap_gid)
		setfsgid(getegid());
	umask(old_mask);
	errno = saved;
	return rc;
}

/* The listening socket, or -1. */
static int open_socket(struct control *ctl)
{
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	mode_t mode = (mode_t)engine_config(ctl->engine)->control.mode;
	struct stat st;
	int fd;

	if (strlen(ctl->socket_path) >= sizeof(addr.sun_path)) {
		log_error("control.socket %s: longer than %zu bytes", ctl->socket_path,
			  sizeof(addr.sun_path) - 1);
		return -1;
	}
	memcpy(addr.sun_path, ctl->socket_path, strlen(ctl->socket_path) + 1);
	if (check_socket_dir(ctl) < 0 || clear_stale_socket(&addr) < 0)
		return -1;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		log_error_errno("control: socket");
		return -1;
	}
	resolve_control_group(ctl);
	if (bind_final(ctl, fd, &addr) < 0) {
		log_error_errno("control.socket: cannot bind %s", ctl->socket_path);
		goto fail;
	}
	/* Only to know the file again (stop, reload): nothing is done by this
	 * path. A file that is not the socket we just made, as we made it,
	 * means someone else writes in the directory: refuse to go on. */
	if (lstat(ctl->socket_path, &st) < 0 || !S_ISSOCK(st.st_mode) || st.st_uid != geteuid() ||
	    (st.st_mode & 07777) != mode) {
		log_error("control.socket: %s was replaced or changed right after bind() (another "
			  "process writes in its directory); refusing to start", ctl->socket_path);
		goto fail;
	}
	ctl->socket_dev = st.st_dev;
	ctl->socket_ino = st.st_ino;
	/* not root and the group is not ours: the owner may still give it a
	 * group it is in, through the verified fd */
	if (ctl->have_group && st.st_gid != ctl->group_gid &&
	    socket_set_owner(ctl, ctl->group_gid, mode) < 0)
		log_warn("control: the socket keeps gid %u; members of control.group '%s' may not "
			 "reach it", (unsigned)st.st_gid, engine_config(ctl->engine)->control.group);
	if (listen(fd, 128) < 0) {
		log_error_errno("control.socket: cannot listen on %s", ctl->socket_path);
		goto fail;
	}
	return fd;
fail:
	close(fd);
	return -1;
}

/* Whose uid ranks as the daemon's own: RUN_AS, or who we are. */
static int resolve_daemon_user(struct control *ctl, const char *run_as)
{
	struct passwd pw, *found = NULL;
	char buf[4096];
	int rc;

	ctl->daemon_uid = geteuid();
	ctl->daemon_gid = getegid();
	if (!run_as)
		return 0;
	rc = getpwnam_r(run_as, &pw, buf, sizeof(buf), &found);
	if (rc != 0 || !found) {
		errno = rc ? rc : ENOENT;
		log_error_errno("user '%s'", run_as);
		return -1;
	}
	ctl->daemon_uid = pw.pw_uid;
	ctl->daemon_gid = pw.pw_gid;
	return 0;
}

struct control *control_open(struct engine *engine, const char *config_path,
			     const char *run_as)
{
	struct control *ctl = calloc(1, sizeof(*ctl));
	int fd;

	if (!ctl) {
		log_error("control: out of memory");
		return NULL;
	}
	ctl->engine = engine;
	ctl->idle_timeout_ms = CONTROL_IDLE_TIMEOUT_MS;
	ctl->first_request_ms = CONTROL_FIRST_REQUEST_MS;
	ctl->started_ms = clock_now_ms();
	ctl->config_path = strdup(config_path);
	ctl->socket_path = strdup(engine_config(engine)->control.socket);
	ctl->clients = calloc(CONTROL_MAX_CLIENTS, sizeof(*ctl->clients));
	if (!ctl->config_path || !ctl->socket_path || !ctl->clients) {
		log_error("control: out of memory");
		goto fail;
	}
	if (resolve_daemon_user(ctl, run_as) < 0)
		goto fail;
	fd = open_socket(ctl);
	if (fd < 0)
		goto fail;
	ctl->listener = listener_open("control", fd, CONTROL_MAX_CLIENTS, &handlers, ctl);
	if (!ctl->listener)
		goto fail;
	log_info("control socket %s (mode %04o, group %s)", ctl->socket_path,
		 (unsigned)engine_config(engine)->control.mode,
		 ctl->have_group ? engine_config(engine)->control.group : "root only");
	return ctl;
fail:
	control_close(ctl);
	return NULL;
}

void control_close(struct control *ctl)
{
	struct stat st;

	if (!ctl)
		return;
	for (size_t i = 0; ctl->listener && i < CONTROL_MAX_CLIENTS; i++)
		if (listener_client_fd(ctl->listener, i) >= 0)
			client_close(ctl, &ctl->clients[i]);
	listener_close(ctl->listener);
	/* a successor may already have bound the same path: leave its file */
	if (ctl->socket_ino && lstat(ctl->socket_path, &st) == 0 && st.st_dev == ctl->socket_dev &&
	    st.st_ino == ctl->socket_ino)
		unlink(ctl->socket_path);
	free(ctl->clients);
	free(ctl->config_path);
	free(ctl->socket_path);
	free(ctl);
}
