/* platform/cpustat: the board's cpu time from /proc/stat. */
#include <errno.h>
#include <unistd.h>

#include "platform/cpustat.h"
#include "platform/error.h"
#include "tests/unit/unit.h"

TEST(parses_the_cpu_line)
{
	struct cpustat s;
	CHECK_OK(cpustat_parse("cpu  100 20 30 1000 50 5 5 10 0 0\ncpu0 1 2 3 4\n", &s, NULL));
	long hz = sysconf(_SC_CLK_TCK);
	uint64_t tick = 1000000000ull / (uint64_t)hz;
	CHECK_INT(s.busy_ns, ==, (100 + 20 + 30 + 5 + 5 + 10) * tick);
	CHECK_INT(s.total_ns, ==, (100 + 20 + 30 + 5 + 5 + 10 + 1000 + 50) * tick);
}

TEST(refuses_what_is_not_proc_stat)
{
	struct cpustat s;
	struct error err = { 0 };
	CHECK_INT(cpustat_parse("intr 1 2 3\n", &s, &err), ==, -EBADMSG);
	CHECK_CONTAINS(err.message, "not the \"cpu\" total");
	CHECK_INT(cpustat_parse("cpu  1 2\n", &s, &err), ==, -EBADMSG);
}

TEST(reads_this_machine)
{
	struct cpustat a, b;
	CHECK_OK(cpustat_read(NULL, &a, NULL));
	CHECK(a.total_ns >= a.busy_ns);
	CHECK_OK(cpustat_read(NULL, &b, NULL));
	CHECK(b.total_ns >= a.total_ns);
}
