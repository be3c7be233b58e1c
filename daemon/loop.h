/* loop: the main thread's one event loop. Every source of events (signals,
 * the control socket, the health checker, the metrics listener, timers such
 * as maintenance deadlines and the cut's probe rounds, the fleet's etcd
 * client) is one registration: an fd to poll, how long the loop may sleep
 * before it must run, and what to run. A new source is a row, not another
 * copy of the poll loop.
 *
 * Sources are read through callbacks on every round, not captured once:
 * an engine reload replaces the health checks' fd, a metrics listener may
 * come and go. */
#ifndef GK_LOOP_H
#define GK_LOOP_H

#include <stdbool.h>
#include <stddef.h>

#define LOOP_MAX_SOURCES 16

struct loop_source {
	const char *name;
	/* The fd to poll for input, or -1 (none now); NULL: a timer only. */
	int (*fd)(void *owner);
	/* Milliseconds the loop may sleep before DISPATCH must run, -1:
	 * until the fd is ready; NULL: no deadline of its own. */
	int (*timeout_ms)(void *owner);
	/* Runs after every wake-up of the loop, in registration order, with
	 * READY saying whether this source's fd was readable: a source may
	 * have deadlines to serve on a timeout, and the sources after one
	 * that changed a site's state (the guard's sync) must see it. */
	void (*dispatch)(void *owner, bool ready);
	void *owner;
};

struct loop {
	struct loop_source sources[LOOP_MAX_SOURCES];
	size_t count;
	bool stopping;
	int status;
};

/* Adds SOURCE (copied) after the ones already there. -1 when full. */
int loop_add(struct loop *loop, const struct loop_source *source);
/* Polls and dispatches until a source calls loop_stop(); its STATUS, or -1
 * when poll itself fails. */
int loop_run(struct loop *loop);
void loop_stop(struct loop *loop, int status);
/* The earlier of two timeouts in the loop's convention (-1: none). */
int loop_earliest(int a, int b);

#endif
