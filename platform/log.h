/* Logging: one call, two destinations (stderr for the journal, or syslog).
 *
 * As in OpenBSD's daemons, log_warn() appends strerror(errno) and log_warnx() does not.
 * Messages are bounded (LOG_MESSAGE_MAX bytes) and written with one write(2) so lines from
 * several processes never interleave.
 */
#ifndef BRAMBLE_PLATFORM_LOG_H
#define BRAMBLE_PLATFORM_LOG_H

#include <errno.h>

#define LOG_MESSAGE_MAX 1024

enum log_level { LOG_LEVEL_ERROR, LOG_LEVEL_WARN, LOG_LEVEL_INFO, LOG_LEVEL_DEBUG };
enum log_target { LOG_TARGET_STDERR, LOG_TARGET_SYSLOG };

void log_setup(const char *ident, enum log_target target, enum log_level level);
void log_set_level(enum log_level level);
enum log_level log_get_level(void);
int log_level_from_name(const char *name, enum log_level *ret_level);
const char *log_level_name(enum log_level level);

void log_message(enum log_level level, int errnum, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#define log_error(...) log_message(LOG_LEVEL_ERROR, errno, __VA_ARGS__)
#define log_errorx(...) log_message(LOG_LEVEL_ERROR, 0, __VA_ARGS__)
#define log_warn(...) log_message(LOG_LEVEL_WARN, errno, __VA_ARGS__)
#define log_warnx(...) log_message(LOG_LEVEL_WARN, 0, __VA_ARGS__)
#define log_info(...) log_message(LOG_LEVEL_INFO, 0, __VA_ARGS__)
#define log_debug(...) log_message(LOG_LEVEL_DEBUG, 0, __VA_ARGS__)

#endif
