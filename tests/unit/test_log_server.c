/* agent/log_server: the container log files as `kubectl logs` shows them. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "agent/log_server.h"
#include "platform/buffer.h"
#include "platform/file.h"
#include "platform/memory.h"
#include "tests/unit/unit.h"

static char *render(const char *text, bool timestamps)
{
	struct buffer b = BUFFER_INIT;
	bool start = true;
	log_server_render(text, strlen(text), timestamps, &start, &b);
	return buffer_steal(&b);
}

TEST(cri_records_become_their_messages)
{
	const char *text = "2026-11-22T04:00:00.123456789Z stdout F hello\n"
	                   "2026-11-22T04:00:01.000000000Z stderr P part one, \n"
	                   "2026-11-22T04:00:01.500000000Z stderr F part two\n";
	cleanup_free char *plain = render(text, false);
	CHECK_STR(plain, "hello\npart one, part two\n");
	cleanup_free char *stamped = render(text, true);
	CHECK_STR(stamped, "2026-11-22T04:00:00.123456789Z hello\n2026-11-22T04:00:01.000000000Z part one, part two\n");
}

TEST(raw_output_is_shown_as_it_is)
{
	cleanup_free char *plain = render("line-1\nline-2\nno newline yet", false);
	CHECK_STR(plain, "line-1\nline-2\nno newline yet");
	cleanup_free char *odd = render("2026 is not a record\n\n", true);
	CHECK_STR(odd, "2026 is not a record\n\n");
}

TEST(tail_keeps_the_last_lines)
{
	const char *text = "a\nb\nc\nd\n";
	CHECK_INT(log_server_tail_offset(text, strlen(text), -1), ==, 0);
	CHECK_STR(text + log_server_tail_offset(text, strlen(text), 2), "c\nd\n");
	CHECK_STR(text + log_server_tail_offset(text, strlen(text), 1), "d\n");
	CHECK_STR(text + log_server_tail_offset(text, strlen(text), 0), "");
	CHECK_STR(text + log_server_tail_offset(text, strlen(text), 10), text);
	const char *open_line = "a\nb\nc";
	CHECK_STR(open_line + log_server_tail_offset(open_line, strlen(open_line), 2), "b\nc");
}

TEST(the_current_and_the_previous_file)
{
	cleanup_free char *dir = xasprintf("%s/c", unit_temp_dir());
	CHECK_INT(log_server_pick_file(dir, false, NULL), ==, -ENOENT);
	CHECK(mkdir(dir, 0700) == 0);
	char *path = NULL;
	CHECK_INT(log_server_pick_file(dir, false, &path), ==, -ENOENT);
	static const char *const names[] = { "0.log", "2.log", "10.log", "1.log", "10.log.1", "notes" };
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		cleanup_free char *p = xasprintf("%s/%s", dir, names[i]);
		FILE *f = fopen(p, "w");
		CHECK(f != NULL);
		fclose(f);
	}
	CHECK_OK(log_server_pick_file(dir, false, &path));
	cleanup_free char *want = xasprintf("%s/10.log", dir);
	CHECK_STR(path, want);
	free(path);
	CHECK_OK(log_server_pick_file(dir, true, &path));
	cleanup_free char *previous = xasprintf("%s/2.log", dir);
	CHECK_STR(path, previous);
	free(path);
}
