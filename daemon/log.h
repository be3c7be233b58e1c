/* log: one line per message on stderr, which systemd hands to journald.
 *
 * Under systemd (JOURNAL_STREAM set) each line starts with the sd-daemon
 * "<N>" priority prefix so journald keeps the level; elsewhere a readable
 * "gatekeeperd: warning: " prefix. The *_errno variants append
 * strerror(errno), so call sites say what failed and the log says why. */
#ifndef GK_LOG_H
#define GK_LOG_H

#include <stdarg.h>

enum log_level { LOG_LEVEL_ERROR, LOG_LEVEL_WARN, LOG_LEVEL_INFO, LOG_LEVEL_DEBUG };

void log_init(const char *ident, enum log_level max_level);
void log_set_level(enum log_level max_level);
int log_enabled(enum log_level level);

void log_msg(enum log_level level, int with_errno, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#define log_error(...) log_msg(LOG_LEVEL_ERROR, 0, __VA_ARGS__)
#define log_error_errno(...) log_msg(LOG_LEVEL_ERROR, 1, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_LEVEL_WARN, 0, __VA_ARGS__)
#define log_warn_errno(...) log_msg(LOG_LEVEL_WARN, 1, __VA_ARGS__)
#define log_info(...) log_msg(LOG_LEVEL_INFO, 0, __VA_ARGS__)
/* Compiled in, off unless -v: the argument list is not even evaluated. */
#define log_debug(...) \
	do { \
		if (log_enabled(LOG_LEVEL_DEBUG)) \
			log_msg(LOG_LEVEL_DEBUG, 0, __VA_ARGS__); \
	} while (0)

#endif
