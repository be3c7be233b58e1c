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
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "clock.h"
#include "control_internal.h"
#include "engine.h"
#include "log.h"
#include "protocol.h"

#define LISTENER_TAG UINT64_MAX
/* Requests served per client per dispatch, so one client pipelining
 * thousands of cheap requests cannot starve the others. */
#define REQUEST_BUDGET 16
#define ACCEPT_BUDGET 16
#define ACCEPT_PAUSE_MS 1000
#define EVENT_BATCH 32

struct control_client {
	int fd; /* -1: free slot */
	uint32_t generation;
	struct control_peer peer;
	char in[PROTOCOL_MAX_LINE];
	size_t in_len;
	struct strbuf out; /* the pending reply */
	size_t out_off;
	uint64_t deadline_ms; /* the current request/reply round ends here */
	uint32_t events;      /* registered with epoll */
	bool eof, closing, more;
};

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

static void client_set_events(struct control *ctl, struct control_client *c, uint32_t events)
{
	struct epoll_event ev = {.events = events};

	if (c->events == events)
		return;
	ev.data.u64 = (uint64_t)c->generation << 32 | (uint64_t)(c - ctl->clients);
	/* cannot fail for a registered fd short of a kernel bug; the deadline
	 * ends the client if it ever did */
	if (epoll_ctl(ctl->epoll_fd, EPOLL_CTL_MOD, c->fd, &ev) == 0)
		c->events = events;
}

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

static void client_close(struct control *ctl, struct control_client *c)
{
	log_debug("control: client uid %u pid %d gone", (unsigned)c->peer.uid, (int)c->peer.pid);
	epoll_ctl(ctl->epoll_fd, EPOLL_CTL_DEL, c->fd, NULL);
	client_discard_input(c->fd);
	close(c->fd);
	c->fd = -1;
	strbuf_free(&c->out);
}

int control_adopt(struct control *ctl, int fd, const struct control_peer *peer)
{
	struct control_client *c = NULL;
	struct epoll_event ev = {.events = EPOLLIN};

	for (size_t i = 0; i < CONTROL_MAX_CLIENTS && !c; i++)
		if (ctl->clients[i].fd < 0)
			c = &ctl->clients[i];
	if (!c || fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) < 0) {
		close(fd);
		return -1;
	}
	memset(c, 0, sizeof(*c));
	c->fd = fd;
	c->generation = ++ctl->next_generation;
	c->peer = *peer;
	c->events = EPOLLIN;
	c->deadline_ms = clock_now_ms() + (uint64_t)ctl->idle_timeout_ms;
	strbuf_init(&c->out, PROTOCOL_MAX_BODY + PROTOCOL_MAX_HEADER);
	ev.data.u64 = (uint64_t)c->generation << 32 | (uint64_t)(c - ctl->clients);
	if (epoll_ctl(ctl->epoll_fd, EPOLL_CTL_ADD, fd, &ev) < 0) {
		close(fd);
		c->fd = -1;
		return -1;
	}
	log_debug("control: client uid %u pid %d connected (%s)", (unsigned)peer->uid,
		  (int)peer->pid, peer->privileged ? "may change state" : "read-only");
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

/* The last slots are kept for peers that may change state: read-only
 * clients filling every slot cannot lock the operator out. */
static bool has_free_slot(const struct control *ctl, const struct control_peer *peer)
{
	size_t used = 0;

	for (size_t i = 0; i < CONTROL_MAX_CLIENTS; i++)
		used += ctl->clients[i].fd >= 0;
	return used < (peer->privileged ? CONTROL_MAX_CLIENTS
					: CONTROL_MAX_CLIENTS - CONTROL_RESERVED_PRIVILEGED);
}

static void accept_clients(struct control *ctl)
{
	for (int i = 0; i < ACCEPT_BUDGET; i++) {
		struct control_peer peer;
		int fd = accept4(ctl->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd < 0) {
			if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
				/* the listener would stay readable and spin the loop:
				 * stop listening for a moment instead */
				log_warn_errno("control: cannot accept a client, pausing for %d ms",
					       ACCEPT_PAUSE_MS);
				epoll_ctl(ctl->epoll_fd, EPOLL_CTL_DEL, ctl->listen_fd, NULL);
				ctl->accept_resume_ms = clock_now_ms() + ACCEPT_PAUSE_MS;
			}
			return;
		}
		if (peer_identify(ctl, fd, &peer) < 0) {
			log_warn_errno("control: SO_PEERCRED");
			close(fd);
			continue;
		}
		if (!has_free_slot(ctl, &peer)) {
			log_debug("control: no client slot left for uid %u pid %d",
				  (unsigned)peer.uid, (int)peer.pid);
			send_refusal(fd, PROTOCOL_ERR_BUSY,
				     "too many control clients connected; try again in a moment");
			close(fd);
			continue;
		}
		if (control_adopt(ctl, fd, &peer) < 0)
			log_warn_errno("control: cannot serve a client");
	}
}

/* Sends what is pending. 0 (maybe partly sent), -1 on a dead socket. */
static int client_flush(struct control_client *c)
{
	while (c->out_off < c->out.len) {
		ssize_t n = send(c->fd, c->out.data + c->out_off, c->out.len - c->out_off,
				 MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -1;
		c->out_off += (size_t)n;
	}
	return 0;
}

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
	control_execute(ctl, &c->peer, line, &c->out);
}

/* Moves the client as far as it can go without blocking: flush the reply,
 * then serve the next complete request, until it must wait. */
static void client_progress(struct control *ctl, struct control_client *c)
{
	int budget = REQUEST_BUDGET;

	c->more = false;
	for (;;) {
		char *newline;

		if (c->out_off < c->out.len) {
			if (client_flush(c) < 0) {
				client_close(ctl, c);
				return;
			}
			if (c->out_off < c->out.len) {
				client_set_events(ctl, c, EPOLLOUT);
				return;
			}
			strbuf_reset(&c->out);
			c->out_off = 0;
			c->deadline_ms = clock_now_ms() + (uint64_t)ctl->idle_timeout_ms;
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
		client_set_events(ctl, c, EPOLLIN);
		return;
	}
}

static void client_event(struct control *ctl, struct control_client *c, uint32_t events)
{
	if ((events & (EPOLLIN | EPOLLHUP | EPOLLERR)) && (c->events & EPOLLIN) &&
	    c->in_len < sizeof(c->in)) {
		ssize_t n = recv(c->fd, c->in + c->in_len, sizeof(c->in) - c->in_len, MSG_DONTWAIT);

		if (n > 0) {
			c->in_len += (size_t)n;
		} else if (n == 0) {
			c->eof = true;
		} else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
			client_close(ctl, c);
			return;
		}
	}
	client_progress(ctl, c);
}

static void expire_clients(struct control *ctl, uint64_t now)
{
	for (size_t i = 0; i < CONTROL_MAX_CLIENTS; i++) {
		struct control_client *c = &ctl->clients[i];

		if (c->fd < 0 || now < c->deadline_ms)
			continue;
		log_debug("control: client uid %u pid %d timed out", (unsigned)c->peer.uid,
			  (int)c->peer.pid);
		if (c->out_off == c->out.len)
			send_refusal(c->fd, PROTOCOL_ERR_TIMEOUT,
				     "no complete request within the time limit; closing");
		client_close(ctl, c);
	}
}

void control_dispatch(struct control *ctl)
{
	struct epoll_event events[EVENT_BATCH];
	uint64_t now;
	int n = epoll_wait(ctl->epoll_fd, events, EVENT_BATCH, 0);

	ctl->work_pending = false;
	for (int i = 0; i < n; i++) {
		uint64_t tag = events[i].data.u64;
		struct control_client *c;

		if (tag == LISTENER_TAG) {
			accept_clients(ctl);
			continue;
		}
		c = &ctl->clients[tag & 0xffffffffu];
		/* a slot closed and reused earlier in this batch is not this event's */
		if (c->fd >= 0 && c->generation == (uint32_t)(tag >> 32))
			client_event(ctl, c, events[i].events);
	}
	for (size_t i = 0; i < CONTROL_MAX_CLIENTS; i++)
		if (ctl->clients[i].fd >= 0 && ctl->clients[i].more)
			client_progress(ctl, &ctl->clients[i]);
	now = clock_now_ms();
	expire_clients(ctl, now);
	if (ctl->accept_resume_ms && now >= ctl->accept_resume_ms) {
		struct epoll_event ev = {.events = EPOLLIN, .data.u64 = LISTENER_TAG};

		if (epoll_ctl(ctl->epoll_fd, EPOLL_CTL_ADD, ctl->listen_fd, &ev) == 0)
			ctl->accept_resume_ms = 0;
		else
			ctl->accept_resume_ms = now + ACCEPT_PAUSE_MS;
	}
}

int control_fd(const struct control *ctl)
{
	return ctl->epoll_fd;
}

int control_timeout_ms(const struct control *ctl)
{
	uint64_t now = clock_now_ms(), next = ctl->accept_resume_ms;

	if (ctl->work_pending)
		return 0;
	for (size_t i = 0; i < CONTROL_MAX_CLIENTS; i++)
		if (ctl->clients[i].fd >= 0 && (!next || ctl->clients[i].deadline_ms < next))
			next = ctl->clients[i].deadline_ms;
	if (!next)
		return -1;
	if (next <= now)
		return 0;
	return next - now > 60000 ? 60000 : (int)(next - now);
}

void control_set_idle_timeout(struct control *ctl, int ms)
{
	ctl->idle_timeout_ms = ms;
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

void control_apply_group(struct control *ctl)
{
	const char *name = engine_config(ctl->engine)->control.group;
	struct stat st;
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
	/* skip chown when the group is already right: under the unit's
	 * syscall filter chown is refused, and there it always is right */
	if ((stat(ctl->socket_path, &st) < 0 || st.st_gid != gid) &&
	    chown(ctl->socket_path, (uid_t)-1, gid) < 0) {
		log_warn_errno("control: cannot give %s to group '%s'", ctl->socket_path, name);
		return;
	}
	if (chmod(ctl->socket_path, (mode_t)engine_config(ctl->engine)->control.mode) < 0)
		log_warn_errno("control: cannot set the mode of %s", ctl->socket_path);
}

/* Makes PATH's directory if it is missing (not its parents: those are
 * the system's, /run or /var/lib). */
static int make_parent_dir(const char *path)
{
	char dir[sizeof(((struct sockaddr_un *)0)->sun_path)];
	const char *slash = strrchr(path, '/');
	struct stat st;

	if (!slash || slash == path)
		return 0;
	snprintf(dir, sizeof(dir), "%.*s", (int)(slash - path), path);
	if (mkdir(dir, CONTROL_DIR_MODE) == 0)
		return 0;
	if (errno != EEXIST) {
		log_error_errno("control.socket: cannot create the directory %s", dir);
		return -1;
	}
	if (stat(dir, &st) < 0 || !S_ISDIR(st.st_mode)) {
		log_error("control.socket: %s is not a directory", dir);
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

static int open_socket(struct control *ctl)
{
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	struct epoll_event ev = {.events = EPOLLIN, .data.u64 = LISTENER_TAG};
	struct stat st;
	mode_t old_mask;
	int rc;

	if (strlen(ctl->socket_path) >= sizeof(addr.sun_path)) {
		log_error("control.socket %s: longer than %zu bytes", ctl->socket_path,
			  sizeof(addr.sun_path) - 1);
		return -1;
	}
	memcpy(addr.sun_path, ctl->socket_path, strlen(ctl->socket_path) + 1);
	if (make_parent_dir(ctl->socket_path) < 0 || clear_stale_socket(&addr) < 0)
		return -1;
	ctl->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (ctl->listen_fd < 0) {
		log_error_errno("control: socket");
		return -1;
	}
	/* born owner-only; widened to the final mode once the group is set */
	old_mask = umask(0177);
	rc = bind(ctl->listen_fd, (const struct sockaddr *)&addr, sizeof(addr));
	umask(old_mask);
	if (rc < 0) {
		log_error_errno("control.socket: cannot bind %s", ctl->socket_path);
		return -1;
	}
	if (lstat(ctl->socket_path, &st) == 0) {
		ctl->socket_dev = st.st_dev;
		ctl->socket_ino = st.st_ino;
	}
	control_apply_group(ctl);
	if (chmod(ctl->socket_path, (mode_t)engine_config(ctl->engine)->control.mode) < 0) {
		log_error_errno("control.socket: chmod %s", ctl->socket_path);
		return -1;
	}
	if (listen(ctl->listen_fd, 128) < 0 ||
	    epoll_ctl(ctl->epoll_fd, EPOLL_CTL_ADD, ctl->listen_fd, &ev) < 0) {
		log_error_errno("control.socket: cannot listen on %s", ctl->socket_path);
		return -1;
	}
	return 0;
}

struct control *control_start(struct engine *engine, const char *config_path)
{
	struct control *ctl = calloc(1, sizeof(*ctl));

	if (!ctl) {
		log_error("control: out of memory");
		return NULL;
	}
	ctl->engine = engine;
	ctl->listen_fd = -1;
	ctl->epoll_fd = -1;
	ctl->idle_timeout_ms = CONTROL_IDLE_TIMEOUT_MS;
	ctl->started_ms = clock_now_ms();
	ctl->config_path = strdup(config_path);
	ctl->socket_path = strdup(engine_config(engine)->control.socket);
	ctl->clients = calloc(CONTROL_MAX_CLIENTS, sizeof(*ctl->clients));
	if (!ctl->config_path || !ctl->socket_path || !ctl->clients) {
		log_error("control: out of memory");
		goto fail;
	}
	for (size_t i = 0; i < CONTROL_MAX_CLIENTS; i++)
		ctl->clients[i].fd = -1;
	ctl->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
	if (ctl->epoll_fd < 0) {
		log_error_errno("control: epoll_create1");
		goto fail;
	}
	if (open_socket(ctl) < 0)
		goto fail;
	log_info("control socket %s (mode %04o, group %s)", ctl->socket_path,
		 (unsigned)engine_config(engine)->control.mode,
		 ctl->have_group ? engine_config(engine)->control.group : "root only");
	return ctl;
fail:
	control_stop(ctl);
	return NULL;
}

void control_stop(struct control *ctl)
{
	struct stat st;

	if (!ctl)
		return;
	if (ctl->clients)
		for (size_t i = 0; i < CONTROL_MAX_CLIENTS; i++)
			if (ctl->clients[i].fd >= 0)
				client_close(ctl, &ctl->clients[i]);
	if (ctl->listen_fd >= 0) {
		close(ctl->listen_fd);
		/* a successor may already have bound the same path: leave its file */
		if (ctl->socket_ino && lstat(ctl->socket_path, &st) == 0 &&
		    st.st_dev == ctl->socket_dev && st.st_ino == ctl->socket_ino)
			unlink(ctl->socket_path);
	}
	if (ctl->epoll_fd >= 0)
		close(ctl->epoll_fd);
	free(ctl->clients);
	free(ctl->config_path);
	free(ctl->socket_path);
	free(ctl);
}
