#include "platform/buffer.h"

#include <stdlib.h>

#include "tests/unit/unit.h"

TEST(appends_and_formats)
{
	struct buffer b = BUFFER_INIT;
	buffer_append_string(&b, "items: ");
	for (int i = 0; i < 1000; i++)
		buffer_printf(&b, "%d,", i);
	CHECK_INT(b.length, ==, strlen(b.data));
	CHECK(strncmp(b.data, "items: 0,1,2,", 13) == 0);
	CHECK_CONTAINS(b.data, ",998,999,");
	char *text = buffer_steal(&b);
	CHECK(b.data == NULL && b.length == 0);
	free(text);
	buffer_free(&b);
}

TEST(json_strings_are_escaped)
{
	struct buffer b = BUFFER_INIT;
	buffer_append_json_string(&b, "a\"b\\c\n\x01");
	CHECK_STR(b.data, "\"a\\\"b\\\\c\\n\\u0001\"");
	buffer_free(&b);
}

TEST(steal_of_empty_buffer_is_an_empty_string)
{
	struct buffer b = BUFFER_INIT;
	char *s = buffer_steal(&b);
	CHECK_STR(s, "");
	free(s);
}
