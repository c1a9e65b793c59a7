/* The unit-test harness: TEST() registers a test, CHECK*() assert inside it.
 *
 * Each test runs in its own forked process with a time limit, so a crash, a hang or state
 * left behind (blocked signals, open descriptors) fails that one test and no other. A
 * failed check ends the test at once and reports file:line and the values involved.
 */
#ifndef BRAMBLE_TESTS_UNIT_H
#define BRAMBLE_TESTS_UNIT_H

#include <stdint.h>
#include <string.h>

struct unit_test {
	const char *name;
	const char *file;
	void (*run)(void);
	struct unit_test *next;
};

void unit_register(struct unit_test *test);
void unit_fail(const char *file, int line, const char *fmt, ...) __attribute__((noreturn, format(printf, 3, 4)));

/* A fresh directory for this test, removed after it; valid inside a test only. */
const char *unit_temp_dir(void);

/* A UDP port on 127.0.0.1 that nothing is bound to at the moment of the call. */
uint16_t unit_free_udp_port(void);

#define TEST(name)                                                                                                     \
	static void test_##name(void);                                                                                 \
	static struct unit_test unit_test_##name = { #name, __FILE__, test_##name, NULL };                             \
	__attribute__((constructor)) static void register_##name(void)                                                 \
	{                                                                                                              \
		unit_register(&unit_test_##name);                                                                      \
	}                                                                                                              \
	static void test_##name(void)

#define CHECK(cond)                                                                                                    \
	do {                                                                                                           \
		if (!(cond))                                                                                           \
			unit_fail(__FILE__, __LINE__, "CHECK(%s)", #cond);                                             \
	} while (0)

#define CHECK_INT(a, op, b)                                                                                            \
	do {                                                                                                           \
		long long check_a_ = (long long)(a), check_b_ = (long long)(b);                                        \
		if (!(check_a_ op check_b_))                                                                           \
			unit_fail(__FILE__, __LINE__, "%s %s %s: %lld vs %lld", #a, #op, #b, check_a_, check_b_);      \
	} while (0)

#define CHECK_STR(a, b)                                                                                                \
	do {                                                                                                           \
		const char *check_a_ = (a), *check_b_ = (b);                                                           \
		if (!check_a_ || !check_b_ || strcmp(check_a_, check_b_) != 0)                                         \
			unit_fail(__FILE__, __LINE__, "%s == %s: \"%s\" vs \"%s\"", #a, #b,                            \
			          check_a_ ? check_a_ : "(null)", check_b_ ? check_b_ : "(null)");                     \
	} while (0)

#define CHECK_CONTAINS(haystack, needle)                                                                               \
	do {                                                                                                           \
		const char *check_h_ = (haystack), *check_n_ = (needle);                                               \
		if (!check_h_ || !strstr(check_h_, check_n_))                                                          \
			unit_fail(__FILE__, __LINE__, "%s contains \"%s\": got \"%s\"", #haystack, check_n_,           \
			          check_h_ ? check_h_ : "(null)");                                                     \
	} while (0)

/* r >= 0, else the failure shows r as an errno name. */
#define CHECK_OK(r)                                                                                                    \
	do {                                                                                                           \
		long long check_r_ = (long long)(r);                                                                   \
		if (check_r_ < 0)                                                                                      \
			unit_fail(__FILE__, __LINE__, "%s failed: %lld (%s)", #r, check_r_, strerror((int)-check_r_)); \
	} while (0)

#endif
