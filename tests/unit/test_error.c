#include "platform/error.h"

#include <errno.h>

#include "tests/unit/unit.h"

TEST(set_returns_negative_code_and_message)
{
	struct error err;
	CHECK_INT(error_set(&err, EINVAL, "bad %s", "thing"), ==, -EINVAL);
	CHECK_INT(err.code, ==, EINVAL);
	CHECK_STR(err.message, "bad thing");
}

TEST(set_errno_appends_strerror)
{
	struct error err;
	CHECK_INT(error_set_errno(&err, -ENOENT, "open %s", "/x"), ==, -ENOENT);
	CHECK_STR(err.message, "open /x: No such file or directory");
}

TEST(prefix_adds_context)
{
	struct error err;
	error_set(&err, EPERM, "denied");
	CHECK_INT(error_prefix(&err, "loading %s", "a.conf"), ==, -EPERM);
	CHECK_STR(err.message, "loading a.conf: denied");
}

TEST(null_error_still_returns_code)
{
	CHECK_INT(error_set(NULL, EIO, "ignored"), ==, -EIO);
	CHECK_INT(error_set_errno(NULL, 0, "zero becomes a code"), <, 0);
}

TEST(long_messages_are_truncated_not_overflowed)
{
	struct error err;
	char big[2000];
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	error_set(&err, EINVAL, "%s", big);
	CHECK_INT(strlen(err.message), ==, ERROR_MESSAGE_MAX - 1);
	error_prefix(&err, "ctx");
	CHECK_INT(strlen(err.message), ==, ERROR_MESSAGE_MAX - 1);
	CHECK(strncmp(err.message, "ctx: aaa", 8) == 0);
}

TEST(field_errors_name_the_field)
{
	struct error err;
	CHECK_INT(error_set_field(&err, EINVAL, "spec.containers[0].image", "required"), ==, -EINVAL);
	CHECK_STR(err.field, "spec.containers[0].image");
	CHECK_STR(err.message, "spec.containers[0].image: required");
	error_set(&err, EINVAL, "plain");
	CHECK_STR(err.field, "");
}
