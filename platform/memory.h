/* Allocation that cannot fail, and cleanup attributes.
 *
 * Out of memory is the one failure Bramble does not handle gracefully: the x* wrappers
 * abort with a message, so callers never test for NULL. Everything else returns an error.
 */
#ifndef BRAMBLE_PLATFORM_MEMORY_H
#define BRAMBLE_PLATFORM_MEMORY_H

#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <unistd.h>

void *xmalloc(size_t size);
void *xcalloc(size_t count, size_t size);
void *xrealloc(void *ptr, size_t size);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
char *xvasprintf(const char *fmt, va_list ap) __attribute__((format(printf, 1, 0)));

/* For long-running daemons: fixes glibc's mmap and trim thresholds at 64 KiB. By default
 * glibc raises its mmap threshold to the size of the largest block freed so far (up to
 * 32 MiB), after which every big short-lived buffer (a child's stack, an archive reader, a
 * large answer) comes from the heap and the heap never shrinks: an agent with 20 pods
 * measured 8-10 MB resident instead of 3 MB. */
void memory_tune_for_daemon(void);

static inline void cleanup_free_func(void *p)
{
	free(*(void **)p);
}

static inline void cleanup_close_func(int *fd)
{
	if (*fd >= 0)
		close(*fd);
}

#define cleanup_free __attribute__((cleanup(cleanup_free_func)))
#define cleanup_close __attribute__((cleanup(cleanup_close_func)))

/* Hands ownership out of a cleanup variable: `*ret = steal_pointer(&p);` */
static inline void *steal_pointer(void *pp)
{
	void **p = pp;
	void *v = *p;
	*p = NULL;
	return v;
}

static inline int steal_fd(int *fd)
{
	int v = *fd;
	*fd = -1;
	return v;
}

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

#endif
