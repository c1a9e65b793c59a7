#include "platform/memory.h"

#include "tests/unit/unit.h"

TEST(xasprintf_formats)
{
	cleanup_free char *s = xasprintf("%s-%d", "node", 7);
	CHECK_STR(s, "node-7");
}

TEST(xstrndup_stops_at_limit)
{
	cleanup_free char *s = xstrndup("abcdef", 3);
	CHECK_STR(s, "abc");
}

TEST(steal_pointer_hands_over_ownership)
{
	cleanup_free char *owned = xstrdup("x");
	char *taken = steal_pointer(&owned);
	CHECK(owned == NULL);
	CHECK_STR(taken, "x");
	free(taken);
}

TEST(xcalloc_zeroes)
{
	cleanup_free int *p = xcalloc(16, sizeof(int));
	for (int i = 0; i < 16; i++)
		CHECK_INT(p[i], ==, 0);
}
