/* The board's cpu time, from /proc/stat: what node metrics are made of (a rate over a
 * window is the difference of two readings). */
#ifndef BRAMBLE_PLATFORM_CPUSTAT_H
#define BRAMBLE_PLATFORM_CPUSTAT_H

#include <stdint.h>

struct error;

struct cpustat {
	uint64_t busy_ns;  /* user + nice + system + irq + softirq + steal, every cpu together */
	uint64_t total_ns; /* busy + idle + iowait */
};

/* Reads root/proc/stat (root NULL or "": the real one). */
int cpustat_read(const char *root, struct cpustat *ret, struct error *err);

/* Parses the text of /proc/stat (its first "cpu " line). */
int cpustat_parse(const char *text, struct cpustat *ret, struct error *err);

#endif
