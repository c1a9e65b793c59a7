#include "platform/buffer.h"

#include <stdio.h>
#include <string.h>

#include "platform/memory.h"

static void reserve(struct buffer *buffer, size_t extra)
{
	if (buffer->length + extra + 1 <= buffer->capacity)
		return;
	size_t capacity = buffer->capacity ? buffer->capacity : 256;
	while (capacity < buffer->length + extra + 1)
		capacity *= 2;
	buffer->data = xrealloc(buffer->data, capacity);
	buffer->capacity = capacity;
}

void buffer_append(struct buffer *buffer, const void *data, size_t length)
{
	reserve(buffer, length);
	memcpy(buffer->data + buffer->length, data, length);
	buffer->length += length;
	buffer->data[buffer->length] = '\0';
}

void buffer_append_string(struct buffer *buffer, const char *s)
{
	buffer_append(buffer, s, strlen(s));
}

void buffer_printf(struct buffer *buffer, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n <= 0)
		return;
	reserve(buffer, (size_t)n);
	va_start(ap, fmt);
	vsnprintf(buffer->data + buffer->length, (size_t)n + 1, fmt, ap);
	va_end(ap);
	buffer->length += (size_t)n;
}

void buffer_append_json_string(struct buffer *buffer, const char *s)
{
	reserve(buffer, strlen(s) + 2);
	buffer_append(buffer, "\"", 1);
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		switch (*p) {
		case '"':
			buffer_append(buffer, "\\\"", 2);
			break;
		case '\\':
			buffer_append(buffer, "\\\\", 2);
			break;
		case '\n':
			buffer_append(buffer, "\\n", 2);
			break;
		case '\r':
			buffer_append(buffer, "\\r", 2);
			break;
		case '\t':
			buffer_append(buffer, "\\t", 2);
			break;
		default:
			if (*p < 0x20)
				buffer_printf(buffer, "\\u%04x", *p);
			else
				buffer_append(buffer, p, 1);
		}
	}
	buffer_append(buffer, "\"", 1);
}

char *buffer_steal(struct buffer *buffer)
{
	if (!buffer->data)
		return xstrdup("");
	char *data = buffer->data;
	buffer->data = NULL;
	buffer->length = buffer->capacity = 0;
	return data;
}

void buffer_reset(struct buffer *buffer)
{
	buffer->length = 0;
	if (buffer->data)
		buffer->data[0] = '\0';
}

void buffer_free(struct buffer *buffer)
{
	free(buffer->data);
	buffer->data = NULL;
	buffer->length = buffer->capacity = 0;
}
