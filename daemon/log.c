#include "log.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *log_ident = "gatekeeperd";
static atomic_int log_max_level = LOG_LEVEL_INFO;
static int log_journal;

void log_init(const char *ident, enum log_level max_level)
{
	log_ident = ident;
	atomic_store(&log_max_level, (int)max_level);
	log_journal = getenv("JOURNAL_STREAM") != NULL;
}

void log_set_level(enum log_level max_level)
{
	atomic_store(&log_max_level, (int)max_level);
}

int log_enabled(enum log_level level)
{
	return (int)level <= atomic_load_explicit(&log_max_level, memory_order_relaxed);
}

void log_msg(enum log_level level, int with_errno, const char *fmt, ...)
{
	/* syslog priorities, as journald reads them from "<N>" */
	static const int priority[] = {3, 4, 6, 7};
	static const char *const name[] = {"error: ", "warning: ", "", "debug: "};
	char text[1024];
	int saved_errno = errno;
	va_list ap;

	if (!log_enabled(level))
		return;
	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	/* One fprintf per line: stdio's lock keeps lines from worker threads whole. */
	if (log_journal)
		fprintf(stderr, "<%d>%s%s%s\n", priority[level], text,
			with_errno ? ": " : "", with_errno ? strerror(saved_errno) : "");
	else
		fprintf(stderr, "%s: %s%s%s%s\n", log_ident, name[level], text,
			with_errno ? ": " : "", with_errno ? strerror(saved_errno) : "");
	errno = saved_errno;
}
