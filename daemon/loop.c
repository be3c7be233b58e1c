/* loop: see loop.h. */
#include "loop.h"

#include <errno.h>
#include <poll.h>

#include "log.h"

int loop_add(struct loop *loop, const struct loop_source *source)
{
	if (loop->count == LOOP_MAX_SOURCES) {
		log_error("loop: no room for source %s", source->name);
		return -1;
	}
	loop->sources[loop->count++] = *source;
	return 0;
}

void loop_stop(struct loop *loop, int status)
{
	loop->stopping = true;
	loop->status = status;
}

int loop_earliest(int a, int b)
{
	return b >= 0 && (a < 0 || b < a) ? b : a;
}

int loop_run(struct loop *loop)
{
	struct pollfd pfd[LOOP_MAX_SOURCES];

	loop->stopping = false;
	while (!loop->stopping) {
		int timeout = -1;

		for (size_t i = 0; i < loop->count; i++) {
			const struct loop_source *s = &loop->sources[i];
			/* a negative fd is ignored by poll */
			pfd[i] = (struct pollfd){.fd = s->fd ? s->fd(s->owner) : -1, .events = POLLIN};
			if (s->timeout_ms)
				timeout = loop_earliest(timeout, s->timeout_ms(s->owner));
		}
		if (poll(pfd, loop->count, timeout) < 0) {
			if (errno == EINTR)
				continue;
			log_error_errno("poll");
			return -1;
		}
		for (size_t i = 0; i < loop->count && !loop->stopping; i++) {
			const struct loop_source *s = &loop->sources[i];
			s->dispatch(s->owner, pfd[i].fd >= 0 && (pfd[i].revents & (POLLIN | POLLHUP | POLLERR)));
		}
	}
	return loop->status;
}
