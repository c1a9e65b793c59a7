#include "platform/error.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static int code_of(int code)
{
	if (code < 0)
		code = -code;
	return code ? code : 1; /* an error always has a code */
}

static int error_vset(struct error *err, int code, int with_errno, const char *fmt, va_list ap)
{
	code = code_of(code);
	if (!err)
		return -code;
	err->code = code;
	err->field[0] = '\0';
	int n = vsnprintf(err->message, sizeof(err->message), fmt, ap);
	if (with_errno && n >= 0 && (size_t)n < sizeof(err->message))
		snprintf(err->message + n, sizeof(err->message) - (size_t)n, ": %s", strerror(code));
	return -code;
}

int error_set(struct error *err, int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int r = error_vset(err, code, 0, fmt, ap);
	va_end(ap);
	return r;
}

int error_set_errno(struct error *err, int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int r = error_vset(err, code, 1, fmt, ap);
	va_end(ap);
	return r;
}

int error_set_field(struct error *err, int code, const char *field, const char *fmt, ...)
{
	code = code_of(code);
	if (!err)
		return -code;
	char text[ERROR_MESSAGE_MAX];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	err->code = code;
	snprintf(err->field, sizeof(err->field), "%s", field);
	snprintf(err->message, sizeof(err->message), "%s: %s", field, text);
	return -code;
}

int error_prefix(struct error *err, const char *fmt, ...)
{
	if (!err)
		return -EIO;
	char prefix[ERROR_MESSAGE_MAX], old[ERROR_MESSAGE_MAX];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(prefix, sizeof(prefix), fmt, ap);
	va_end(ap);
	memcpy(old, err->message, sizeof(old));
	snprintf(err->message, sizeof(err->message), "%s: %s", prefix, old);
	err->code = code_of(err->code);
	return -err->code;
}

void error_clear(struct error *err)
{
	if (!err)
		return;
	err->code = 0;
	err->message[0] = '\0';
	err->field[0] = '\0';
}
