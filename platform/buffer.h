/* A growable byte buffer for building replies and JSON text, always NUL-terminated. */
#ifndef BRAMBLE_PLATFORM_BUFFER_H
#define BRAMBLE_PLATFORM_BUFFER_H

#include <stdarg.h>
#include <stddef.h>

struct buffer {
	char *data;
	size_t length;
	size_t capacity;
};

#define BUFFER_INIT                                                                                                    \
	{                                                                                                              \
		NULL, 0, 0                                                                                             \
	}

void buffer_append(struct buffer *buffer, const void *data, size_t length);
void buffer_append_string(struct buffer *buffer, const char *s);
void buffer_printf(struct buffer *buffer, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Appends s as a JSON string literal, quotes and escapes included. */
void buffer_append_json_string(struct buffer *buffer, const char *s);
/* Hands the text over to the caller (never NULL), leaving the buffer empty. */
char *buffer_steal(struct buffer *buffer);
void buffer_reset(struct buffer *buffer);
void buffer_free(struct buffer *buffer);

#endif
