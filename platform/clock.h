/* Time: a monotonic clock for timers and intervals, the wall clock for timestamps. */
#ifndef BRAMBLE_PLATFORM_CLOCK_H
#define BRAMBLE_PLATFORM_CLOCK_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define CLOCK_RFC3339_SIZE 21 /* "2026-11-22T03:04:05Z" + NUL */

uint64_t clock_monotonic_ms(void);
uint64_t clock_monotonic_us(void);
int64_t clock_realtime_ms(void);

/* Formats a UTC time the way Kubernetes writes timestamps: 2026-11-22T03:04:05Z. */
void clock_format_rfc3339(time_t t, char buf[CLOCK_RFC3339_SIZE]);

/* Parses that form back; returns 0, or -EINVAL for anything else. */
int clock_parse_rfc3339(const char *s, time_t *ret_time);

#endif
