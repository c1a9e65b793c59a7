/* See cpustat.h. */
#include "platform/cpustat.h"

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "platform/error.h"
#include "platform/memory.h"

int cpustat_parse(const char *text, struct cpustat *ret, struct error *err)
{
	if (strncmp(text, "cpu ", 4) != 0)
		return error_set(err, EBADMSG, "/proc/stat: the first line is not the \"cpu\" total");
	/* user nice system idle iowait irq softirq steal (guest time is inside user already) */
	unsigned long long v[8] = { 0 };
	int n = sscanf(text + 4, "%llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5],
	               &v[6], &v[7]);
	if (n < 4)
		return error_set(err, EBADMSG, "/proc/stat: the \"cpu\" line has %d numbers, 4 at least are needed",
		                 n < 0 ? 0 : n);
	long hz = sysconf(_SC_CLK_TCK);
	uint64_t tick_ns = hz > 0 ? 1000000000ull / (uint64_t)hz : 10000000ull;
	uint64_t busy = v[0] + v[1] + v[2] + v[5] + v[6] + v[7];
	ret->busy_ns = busy * tick_ns;
	ret->total_ns = (busy + v[3] + v[4]) * tick_ns;
	return 0;
}

int cpustat_read(const char *root, struct cpustat *ret, struct error *err)
{
	cleanup_free char *path = xasprintf("%s/proc/stat", root ? root : "");
	FILE *f = fopen(path, "re");
	if (!f)
		return error_set_errno(err, errno, "opening %s", path);
	char line[512]; /* the first line only: the file goes on with every cpu and interrupt */
	bool ok = fgets(line, sizeof(line), f) != NULL;
	fclose(f);
	if (!ok)
		return error_set(err, EBADMSG, "%s: empty", path);
	return cpustat_parse(line, ret, err);
}
