#include "platform/log.h"

#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

#include "platform/file.h"
#include "platform/memory.h"
#include "tests/unit/unit.h"

/* Runs fn with stderr sent to a file and returns what was written. */
static char *capture_stderr(void (*fn)(void))
{
	cleanup_free char *path = xasprintf("%s/stderr", unit_temp_dir());
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	CHECK(fd >= 0);
	int saved = dup(STDERR_FILENO);
	dup2(fd, STDERR_FILENO);
	fn();
	dup2(saved, STDERR_FILENO);
	close(saved);
	close(fd);
	char *data = NULL;
	CHECK_OK(file_read(path, 1 << 20, &data, NULL, NULL));
	return data;
}

static void log_levels(void)
{
	log_setup("test", LOG_TARGET_STDERR, LOG_LEVEL_INFO);
	log_info("hello %d", 42);
	log_debug("hidden");
	errno = ENOENT;
	log_warn("open x");
	log_warnx("plain");
}

TEST(levels_prefix_and_errno)
{
	cleanup_free char *out = capture_stderr(log_levels);
	cleanup_free char *expect = xasprintf("test[%ld]: info: hello 42\n"
	                                      "test[%ld]: warn: open x: No such file or directory\n"
	                                      "test[%ld]: warn: plain\n",
	                                      (long)getpid(), (long)getpid(), (long)getpid());
	CHECK_STR(out, expect);
}

static void log_huge(void)
{
	log_setup("test", LOG_TARGET_STDERR, LOG_LEVEL_DEBUG);
	char big[4000];
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	log_info("%s", big);
}

TEST(long_lines_are_bounded_and_end_with_newline)
{
	cleanup_free char *out = capture_stderr(log_huge);
	CHECK_INT(strlen(out), <=, LOG_MESSAGE_MAX);
	CHECK(out[strlen(out) - 1] == '\n');
}

TEST(level_names_round_trip)
{
	enum log_level level;
	CHECK_INT(log_level_from_name("DEBUG", &level), ==, 0);
	CHECK_INT(level, ==, LOG_LEVEL_DEBUG);
	CHECK_STR(log_level_name(LOG_LEVEL_WARN), "warn");
	CHECK_INT(log_level_from_name("verbose", &level), <, 0);
}
