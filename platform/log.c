#include "platform/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <syslog.h>
#include <unistd.h>

static struct {
	const char *ident;
	enum log_target target;
	enum log_level level;
} log_state = { "bramble", LOG_TARGET_STDERR, LOG_LEVEL_INFO };

static const char *const level_names[] = { "error", "warn", "info", "debug" };

void log_setup(const char *ident, enum log_target target, enum log_level level)
{
	if (log_state.target == LOG_TARGET_SYSLOG)
		closelog();
	log_state.ident = ident;
	log_state.target = target;
	log_state.level = level;
	if (target == LOG_TARGET_SYSLOG)
		openlog(ident, LOG_PID | LOG_NDELAY, LOG_DAEMON);
}

void log_set_level(enum log_level level)
{
	log_state.level = level;
}

enum log_level log_get_level(void)
{
	return log_state.level;
}

int log_level_from_name(const char *name, enum log_level *ret_level)
{
	for (unsigned i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++) {
		if (strcasecmp(name, level_names[i]) == 0) {
			*ret_level = (enum log_level)i;
			return 0;
		}
	}
	return -1;
}

const char *log_level_name(enum log_level level)
{
	return (unsigned)level < sizeof(level_names) / sizeof(level_names[0]) ? level_names[level] : "?";
}

void log_message(enum log_level level, int errnum, const char *fmt, ...)
{
	if (level > log_state.level)
		return;
	int saved_errno = errno;
	char line[LOG_MESSAGE_MAX];
	size_t n = 0;
	if (log_state.target == LOG_TARGET_STDERR) {
		int r = snprintf(line, sizeof(line), "%s[%ld]: %s: ", log_state.ident, (long)getpid(),
		                 level_names[level]);
		n = r > 0 ? (size_t)r : 0;
	}
	va_list ap;
	va_start(ap, fmt);
	int r = vsnprintf(line + n, sizeof(line) - n, fmt, ap);
	va_end(ap);
	if (r > 0)
		n = n + (size_t)r < sizeof(line) ? n + (size_t)r : sizeof(line) - 1;
	if (errnum && n < sizeof(line) - 1) {
		r = snprintf(line + n, sizeof(line) - n, ": %s", strerror(errnum));
		if (r > 0)
			n = n + (size_t)r < sizeof(line) ? n + (size_t)r : sizeof(line) - 1;
	}
	if (log_state.target == LOG_TARGET_SYSLOG) {
		static const int priorities[] = { LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG };
		syslog(priorities[level], "%s", line);
	} else {
		if (n >= sizeof(line) - 1)
			n = sizeof(line) - 2;
		line[n++] = '\n';
		ssize_t w = write(STDERR_FILENO, line, n);
		(void)w; /* nowhere left to report a failed log write */
	}
	errno = saved_errno;
}
