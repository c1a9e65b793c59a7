#include "platform/clock.h"

#include <errno.h>

#include "tests/unit/unit.h"

TEST(rfc3339_round_trip)
{
	char buf[CLOCK_RFC3339_SIZE];
	clock_format_rfc3339(1795316645, buf);
	CHECK_STR(buf, "2026-11-22T03:04:05Z");
	time_t t;
	CHECK_OK(clock_parse_rfc3339(buf, &t));
	CHECK_INT(t, ==, 1795316645);
}

TEST(rfc3339_rejects_other_forms)
{
	time_t t;
	CHECK_INT(clock_parse_rfc3339("2026-11-22 03:04:05", &t), ==, -EINVAL);
	CHECK_INT(clock_parse_rfc3339("2026-11-22T03:04:05Zjunk", &t), ==, -EINVAL);
	CHECK_INT(clock_parse_rfc3339("", &t), ==, -EINVAL);
}

TEST(monotonic_never_goes_back)
{
	uint64_t a = clock_monotonic_us();
	uint64_t b = clock_monotonic_us();
	CHECK_INT(b, >=, a);
	CHECK_INT(clock_monotonic_ms(), >=, a / 1000);
	CHECK_INT(clock_realtime_ms(), >, 1700000000000LL);
}
