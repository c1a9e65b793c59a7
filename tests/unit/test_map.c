#include "platform/map.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "tests/unit/unit.h"

TEST(map_puts_gets_replaces_and_removes)
{
	struct map m = { 0 };
	CHECK(map_get(&m, "absent") == NULL);
	CHECK(map_remove(&m, "absent") == NULL);
	int a = 1, b = 2;
	CHECK(map_put(&m, "a", &a) == NULL);
	CHECK(map_get(&m, "a") == &a);
	CHECK(map_put(&m, "a", &b) == &a); /* replaced: the old value comes back */
	CHECK(map_get(&m, "a") == &b);
	CHECK_INT(m.count, ==, 1);
	CHECK(map_remove(&m, "a") == &b);
	CHECK(map_get(&m, "a") == NULL);
	CHECK_INT(m.count, ==, 0);
	map_clear(&m);
}

TEST(map_grows_and_iterates_in_insertion_order)
{
	struct map m = { 0 };
	char key[32];
	for (intptr_t i = 0; i < 5000; i++) {
		snprintf(key, sizeof(key), "ns/pod-%ld", (long)i);
		map_put(&m, key, (void *)(i + 1));
	}
	CHECK_INT(m.count, ==, 5000);
	for (intptr_t i = 0; i < 5000; i += 2) { /* every other one out */
		snprintf(key, sizeof(key), "ns/pod-%ld", (long)i);
		CHECK(map_remove(&m, key) == (void *)(i + 1));
	}
	intptr_t expected = 1, seen = 0;
	map_each(e, &m)
	{
		snprintf(key, sizeof(key), "ns/pod-%ld", (long)expected);
		CHECK_STR(e->key, key);
		CHECK(e->value == (void *)(expected + 1));
		expected += 2;
		seen++;
	}
	CHECK_INT(seen, ==, 2500);
	snprintf(key, sizeof(key), "ns/pod-%d", 4999);
	CHECK(map_get(&m, key) == (void *)5000);
	map_clear(&m);
	CHECK_INT(m.count, ==, 0);
	CHECK(m.first == NULL);
}

TEST(map_hash_is_fnv1a_and_continues)
{
	CHECK_INT(map_hash("", 0, MAP_HASH_SEED), ==, 2166136261u);
	CHECK_INT(map_hash("a", 1, MAP_HASH_SEED), ==, 0xe40c292cu); /* FNV-1a 32 test vector */
	CHECK_INT(map_hash("foobar", 6, MAP_HASH_SEED), ==, 0xbf9cf968u);
	CHECK_INT(map_hash("bar", 3, map_hash("foo", 3, MAP_HASH_SEED)), ==, 0xbf9cf968u);
}
