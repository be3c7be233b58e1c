#include "listener.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "clock.h"
#include "log.h"

/* An epoll tag is a slot and its generation: an event of a client that
 * was closed, its slot reused within the same batch, is not the new
 * client's. */
#define LISTENER_TAG UINT64_MAX
#define ACCEPT_BUDGET 16
#define ACCEPT_PAUSE_MS 1000
#define EVENT_BATCH 32
#define MAX_SLEEP_MS 60000

struct slot {
	int fd; /* -1: free */
	uint32_t generation;
	uint32_t events; /* registered with epoll */
	uint64_t deadline_ms;
};

struct listener {
	const char *name;
	int epoll_fd, listen_fd;
	uint64_t accept_resume_ms; /* 0, or when to listen again after EMFILE */
	uint32_t next_generation;
	const struct listener_handlers *handlers;
	void *owner;
	size_t max_clients, n_clients;
	struct slot slots[];
};

static uint64_t tag_of(const struct listener *l, size_t slot)
{
	return (uint64_t)l->slots[slot].generation << 32 | (uint64_t)slot;
}

struct listener *listener_open(const char *name, int listen_fd, size_t max_clients,
			       const struct listener_handlers *handlers, void *owner)
{
	struct epoll_event ev = {.events = EPOLLIN, .data.u64 = LISTENER_TAG};
	struct listener *l = calloc(1, sizeof(*l) + max_clients * sizeof(l->slots[0]));

	if (!l) {
		log_error("%s: out of memory", name);
		close(listen_fd);
		return NULL;
	}
	l->name = name;
	l->listen_fd = listen_fd;
	l->handlers = handlers;
	l->owner = owner;
	l->max_clients = max_clients;
	for (size_t i = 0; i < max_clients; i++)
		l->slots[i].fd = -1;
	l->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
	if (l->epoll_fd < 0 || epoll_ctl(l->epoll_fd, EPOLL_CTL_ADD, listen_fd, &ev) < 0) {
		log_error_errno("%s: epoll", name);
		listener_close(l);
		return NULL;
	}
	return l;
}

void listener_close(struct listener *l)
{
	if (!l)
		return;
	for (size_t i = 0; i < l->max_clients; i++)
		if (l->slots[i].fd >= 0)
			listener_remove(l, i);
	if (l->listen_fd >= 0)
		close(l->listen_fd);
	if (l->epoll_fd >= 0)
		close(l->epoll_fd);
	free(l);
}

int listener_add(struct listener *l, int fd, uint32_t events, uint64_t deadline_ms)
{
	struct epoll_event ev = {.events = events};
	struct slot *s = NULL;
	size_t i;

	for (i = 0; i < l->max_clients && !s; i++)
		if (l->slots[i].fd < 0)
			s = &l->slots[i];
	if (!s)
		return -1;
	i = (size_t)(s - l->slots);
	s->generation = ++l->next_generation;
	ev.data.u64 = tag_of(l, i);
	if (epoll_ctl(l->epoll_fd, EPOLL_CTL_ADD, fd, &ev) < 0)
		return -1;
	s->fd = fd;
	s->events = events;
	s->deadline_ms = deadline_ms;
	l->n_clients++;
	return (int)i;
}

void listener_remove(struct listener *l, size_t slot)
{
	struct slot *s = &l->slots[slot];

	epoll_ctl(l->epoll_fd, EPOLL_CTL_DEL, s->fd, NULL);
	close(s->fd);
	s->fd = -1;
	l->n_clients--;
}

int listener_client_fd(const struct listener *l, size_t slot)
{
	return l->slots[slot].fd;
}

size_t listener_clients(const struct listener *l)
{
	return l->n_clients;
}

void listener_watch(struct listener *l, size_t slot, uint32_t events)
{
	struct slot *s = &l->slots[slot];
	struct epoll_event ev = {.events = events, .data.u64 = tag_of(l, slot)};

	if (s->events == events)
		return;
	/* cannot fail for a registered fd short of a kernel bug */
	if (epoll_ctl(l->epoll_fd, EPOLL_CTL_MOD, s->fd, &ev) == 0)
		s->events = events;
	else
		s->deadline_ms = 0;
}

uint32_t listener_events(const struct listener *l, size_t slot)
{
	return l->slots[slot].events;
}

void listener_set_deadline(struct listener *l, size_t slot, uint64_t deadline_ms)
{
	l->slots[slot].deadline_ms = deadline_ms;
}

static void accept_clients(struct listener *l)
{
	for (int i = 0; i < ACCEPT_BUDGET; i++) {
		int fd = accept4(l->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd >= 0) {
			l->handlers->accepted(l->owner, fd);
			continue;
		}
		if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
			/* the listener would stay readable and spin the loop:
			 * stop listening for a moment instead */
			log_warn_errno("%s: cannot accept a client, pausing for %d ms", l->name,
				       ACCEPT_PAUSE_MS);
			epoll_ctl(l->epoll_fd, EPOLL_CTL_DEL, l->listen_fd, NULL);
			l->accept_resume_ms = clock_now_ms() + ACCEPT_PAUSE_MS;
		}
		return;
	}
}

void listener_dispatch(struct listener *l)
{
	struct epoll_event events[EVENT_BATCH];
	uint64_t now;
	int n;

	if (!l)
		return;
	n = epoll_wait(l->epoll_fd, events, EVENT_BATCH, 0);
	for (int i = 0; i < n; i++) {
		uint64_t tag = events[i].data.u64;
		size_t slot = tag & 0xffffffffu;

		if (tag == LISTENER_TAG)
			accept_clients(l);
		else if (l->slots[slot].fd >= 0 && l->slots[slot].generation == (uint32_t)(tag >> 32))
			l->handlers->ready(l->owner, slot, events[i].events);
	}
	now = clock_now_ms();
	for (size_t i = 0; i < l->max_clients; i++)
		if (l->slots[i].fd >= 0 && now >= l->slots[i].deadline_ms)
			l->handlers->expired(l->owner, i);
	if (l->accept_resume_ms && now >= l->accept_resume_ms) {
		struct epoll_event ev = {.events = EPOLLIN, .data.u64 = LISTENER_TAG};

		if (epoll_ctl(l->epoll_fd, EPOLL_CTL_ADD, l->listen_fd, &ev) == 0)
			l->accept_resume_ms = 0;
		else
			l->accept_resume_ms = now + ACCEPT_PAUSE_MS;
	}
}

int listener_fd(const struct listener *l)
{
	return l ? l->epoll_fd : -1;
}

int listener_timeout_ms(const struct listener *l)
{
	uint64_t now = clock_now_ms(), next;

	if (!l)
		return -1;
	next = l->accept_resume_ms ? l->accept_resume_ms : UINT64_MAX;
	for (size_t i = 0; i < l->max_clients; i++)
		if (l->slots[i].fd >= 0 && l->slots[i].deadline_ms < next)
			next = l->slots[i].deadline_ms;
	if (next == UINT64_MAX)
		return -1;
	if (next <= now)
		return 0;
	return next - now > MAX_SLEEP_MS ? MAX_SLEEP_MS : (int)(next - now);
}
