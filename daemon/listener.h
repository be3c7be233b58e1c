/* listener: the small socket server under the control socket and the
 * metrics endpoint: one epoll fd for a listening socket and its clients,
 * a fixed number of client slots, a bounded accept loop that pauses when
 * the process is out of fds, and one deadline per client.
 *
 * Everything runs on the main thread and never blocks: main() polls
 * listener_fd() and calls listener_dispatch() when it is readable or when
 * listener_timeout_ms() has passed. The owner (control, metrics) keeps
 * what it knows of a client in its own array, indexed by the slot the
 * listener gave it, and hears of it through three handlers. */
#ifndef GK_LISTENER_H
#define GK_LISTENER_H

#include <stddef.h>
#include <stdint.h>

struct listener;

struct listener_handlers {
	/* FD was accepted (non-blocking, close-on-exec): serve it with
	 * listener_add(), or close it. */
	void (*accepted)(void *owner, int fd);
	/* The client in SLOT is ready for EVENTS (EPOLLIN, EPOLLOUT, ...). */
	void (*ready)(void *owner, size_t slot, uint32_t events);
	/* The client in SLOT is past its deadline; the owner ends it with
	 * listener_remove(). */
	void (*expired)(void *owner, size_t slot);
};

/* Serves LISTEN_FD (bound, listening, non-blocking), which it takes in
 * every case, with at most MAX_CLIENTS clients; NAME prefixes its log
 * lines. NULL (logged) on failure. */
struct listener *listener_open(const char *name, int listen_fd, size_t max_clients,
			       const struct listener_handlers *handlers, void *owner);
/* Closes every client still in a slot, the listening socket and the
 * epoll fd. The owner ends its clients first if it has more to do. */
void listener_close(struct listener *l);

/* The fd to poll (an epoll fd), and how long the poll may sleep before
 * listener_dispatch() must run anyway (-1: forever). */
int listener_fd(const struct listener *l);
int listener_timeout_ms(const struct listener *l);
/* Accepts, hands ready clients to the owner, expires clients past their
 * deadline, and listens again after a pause. */
void listener_dispatch(struct listener *l);

/* Puts FD in a free slot, watched for EVENTS, ending at DEADLINE_MS
 * (clock_now_ms). The slot, or -1 (FD untouched) when none is free or
 * epoll refuses it. */
int listener_add(struct listener *l, int fd, uint32_t events, uint64_t deadline_ms);
/* Stops watching the client in SLOT, closes its fd and frees the slot. */
void listener_remove(struct listener *l, size_t slot);
/* The client's fd, or -1 for a free slot. */
int listener_client_fd(const struct listener *l, size_t slot);
size_t listener_clients(const struct listener *l);
/* Watches the client for EVENTS instead; if epoll refuses, the client
 * ends at the next dispatch. */
void listener_watch(struct listener *l, size_t slot, uint32_t events);
/* What the client in SLOT is watched for now. */
uint32_t listener_events(const struct listener *l, size_t slot);
void listener_set_deadline(struct listener *l, size_t slot, uint64_t deadline_ms);

#endif
