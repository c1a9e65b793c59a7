#include "agent/container_log.h"

#include <errno.h>
#include <sys/stat.h>
#include <unistd.h>

#include "platform/error.h"
#include "platform/file.h"
#include "platform/loop.h"
#include "platform/memory.h"
#include "tests/unit/unit.h"

static char *read_all(const char *path)
{
	char *data = NULL;
	CHECK_OK(file_read(path, 1 << 20, &data, NULL, NULL));
	return data;
}

static size_t count(const char *haystack, const char *needle)
{
	size_t n = 0;
	for (const char *p = haystack; (p = strstr(p, needle)); p++)
		n++;
	return n;
}

TEST(lines_become_cri_records)
{
	cleanup_free char *path = xasprintf("%s/c.log", unit_temp_dir());
	struct container_log *log;
	struct error err;
	CHECK_OK(container_log_open(path, 0, 0, &log, &err));
	CHECK_OK(container_log_write(log, "stdout", "hello\nwor", 9));
	CHECK_OK(container_log_write(log, "stderr", "oops\n", 5));
	CHECK_OK(container_log_write(log, "stdout", "ld\n", 3));
	CHECK_OK(container_log_write(log, "stdout", "no newline", 10));
	CHECK_OK(container_log_flush(log, "stdout"));
	container_log_close(log);
	cleanup_free char *text = read_all(path);
	/* 2026-11-22T04:00:00.123456789Z stdout F hello */
	CHECK_INT(strlen(text), >, 0);
	CHECK(text[4] == '-' && text[10] == 'T' && text[19] == '.' && text[29] == 'Z');
	const char *lines[] = { " stdout F hello\n", " stderr F oops\n", " stdout F world\n",
		                " stdout F no newline\n" };
	const char *at = text;
	for (size_t i = 0; i < ARRAY_SIZE(lines); i++) {
		const char *found = strstr(at, lines[i]);
		if (!found)
			unit_fail(__FILE__, __LINE__, "missing %s in %s", lines[i], text);
		at = found + 1;
	}
	CHECK_INT(count(text, "\n"), ==, 4);
}

TEST(an_endless_line_is_cut_into_partial_records)
{
	cleanup_free char *path = xasprintf("%s/c.log", unit_temp_dir());
	struct container_log *log;
	CHECK_OK(container_log_open(path, 0, 0, &log, NULL));
	size_t size = 3 * CONTAINER_LOG_LINE_MAX;
	cleanup_free char *big = xmalloc(size);
	memset(big, 'x', size);
	CHECK_OK(container_log_write(log, "stdout", big, size));
	CHECK_OK(container_log_write(log, "stdout", "\n", 1));
	container_log_close(log);
	cleanup_free char *text = read_all(path);
	CHECK_INT(count(text, " stdout P "), ==, 3);
	CHECK_INT(count(text, " stdout F "), ==, 1);
}

TEST(files_rotate_at_the_size_limit)
{
	cleanup_free char *path = xasprintf("%s/c.log", unit_temp_dir());
	cleanup_free char *one = xasprintf("%s.1", path);
	cleanup_free char *two = xasprintf("%s.2", path);
	struct container_log *log;
	CHECK_OK(container_log_open(path, 4096, 2, &log, NULL));
	char line[100];
	memset(line, 'y', sizeof(line) - 1);
	line[sizeof(line) - 1] = '\n';
	for (int i = 0; i < 1000; i++)
		CHECK_OK(container_log_write(log, "stdout", line, sizeof(line)));
	container_log_close(log);
	struct stat st;
	CHECK_OK(stat(path, &st));
	CHECK_INT(st.st_size, <=, 4096);
	CHECK_OK(stat(one, &st));
	CHECK_INT(st.st_size, <=, 4096);
	CHECK_INT(st.st_size, >, 3000);
	CHECK(access(two, F_OK) < 0); /* two files at most: the oldest was dropped */
}

static void stop_when_done(struct loop *loop, void *data)
{
	(void)data;
	loop_stop(loop);
}

TEST(the_pump_reads_a_pipe_until_it_ends)
{
	cleanup_free char *path = xasprintf("%s/c.log", unit_temp_dir());
	struct container_log *log;
	struct loop *loop;
	CHECK_OK(loop_new(&loop));
	CHECK_OK(container_log_open(path, 0, 0, &log, NULL));
	int fds[2];
	CHECK_OK(pipe(fds));
	int open_streams = 1;
	CHECK_OK(container_log_pump(loop, log, "stderr", fds[0], &open_streams, NULL));
	CHECK_INT(write(fds[1], "from a pipe\nand the end", 23), ==, 23);
	close(fds[1]);
	loop_add_timer(loop, 5000, stop_when_done, NULL);
	while (open_streams > 0)
		CHECK_OK(loop_run_once(loop, 100));
	CHECK_INT(open_streams, ==, 0);
	container_log_close(log);
	loop_free(loop);
	cleanup_free char *text = read_all(path);
	CHECK_CONTAINS(text, " stderr F from a pipe\n");
	CHECK_CONTAINS(text, " stderr F and the end\n");
}
