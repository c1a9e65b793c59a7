#include "platform/clock.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

uint64_t clock_monotonic_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

uint64_t clock_monotonic_ms(void)
{
	return clock_monotonic_us() / 1000u;
}

int64_t clock_realtime_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void clock_format_rfc3339(time_t t, char buf[CLOCK_RFC3339_SIZE])
{
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(buf, CLOCK_RFC3339_SIZE, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

int clock_parse_rfc3339(const char *s, time_t *ret_time)
{
	struct tm tm;
	memset(&tm, 0, sizeof(tm));
	const char *end = strptime(s, "%Y-%m-%dT%H:%M:%SZ", &tm);
	if (!end || *end != '\0')
		return -EINVAL;
	time_t t = timegm(&tm);
	if (t == (time_t)-1)
		return -EINVAL;
	*ret_time = t;
	return 0;
}
