/* See container_log.h. State: the open file and its size, and per stream the start of a
 * line not yet ended. Invariant: the file never grows past max_bytes, except by one record
 * when a single record is larger than the whole limit. */
#include "agent/container_log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "platform/error.h"
#include "platform/file.h"
#include "platform/loop.h"
#include "platform/memory.h"

enum { STREAM_STDOUT, STREAM_STDERR, STREAM_COUNT };

struct container_log {
	char *path;
	size_t max_bytes;
	unsigned max_files;
	int fd;
	size_t size;
	struct {
		char *data;
		size_t length;
	} held[STREAM_COUNT];
};

static int stream_index(const char *stream)
{
	return strcmp(stream, "stderr") == 0 ? STREAM_STDERR : STREAM_STDOUT;
}

int container_log_open(const char *path, size_t max_bytes, unsigned max_files, struct container_log **ret_log,
                       struct error *err)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0640);
	if (fd < 0)
		return error_set_errno(err, errno, "open the container log %s", path);
	struct stat st;
	fstat(fd, &st);
	struct container_log *log = xcalloc(1, sizeof(*log));
	log->path = xstrdup(path);
	log->max_bytes = max_bytes ? max_bytes : CONTAINER_LOG_DEFAULT_MAX_BYTES;
	log->max_files = max_files ? max_files : CONTAINER_LOG_DEFAULT_MAX_FILES;
	log->fd = fd;
	log->size = (size_t)st.st_size;
	*ret_log = log;
	return 0;
}

void container_log_close(struct container_log *log)
{
	if (!log)
		return;
	for (int i = 0; i < STREAM_COUNT; i++)
		free(log->held[i].data);
	if (log->fd >= 0)
		close(log->fd);
	free(log->path);
	free(log);
}

/* path.(n-1) is dropped, path.k becomes path.(k+1), path becomes path.1, a new path starts. */
static int rotate(struct container_log *log)
{
	for (unsigned k = log->max_files - 1; k >= 1; k--) {
		cleanup_free char *from = k == 1 ? xstrdup(log->path) : xasprintf("%s.%u", log->path, k - 1);
		cleanup_free char *to = xasprintf("%s.%u", log->path, k);
		if (rename(from, to) < 0 && errno != ENOENT)
			return -errno;
	}
	if (log->max_files == 1 && ftruncate(log->fd, 0) < 0)
		return -errno;
	close(log->fd);
	log->fd = open(log->path, O_WRONLY | O_CREAT | O_APPEND | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0640);
	log->size = 0;
	return log->fd < 0 ? -errno : 0;
}

static int write_record(struct container_log *log, const char *stream, char tag, const char *data, size_t length)
{
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	struct tm tm;
	gmtime_r(&now.tv_sec, &tm);
	char header[80];
	size_t n = strftime(header, sizeof(header), "%Y-%m-%dT%H:%M:%S", &tm);
	n += (size_t)snprintf(header + n, sizeof(header) - n, ".%09ldZ %s %c ", now.tv_nsec, stream, tag);
	size_t record = n + length + 1;
	if (log->size > 0 && log->size + record > log->max_bytes) {
		int r = rotate(log);
		if (r < 0)
			return r;
	}
	char newline = '\n';
	int r = file_write_all(log->fd, header, n);
	if (r == 0)
		r = file_write_all(log->fd, data, length);
	if (r == 0)
		r = file_write_all(log->fd, &newline, 1);
	if (r == 0)
		log->size += record;
	return r;
}

int container_log_write(struct container_log *log, const char *stream, const char *data, size_t length)
{
	int s = stream_index(stream);
	while (length > 0) {
		const char *end = memchr(data, '\n', length);
		size_t chunk = end ? (size_t)(end - data) : length;
		size_t held = log->held[s].length;
		if (!end && held + chunk < CONTAINER_LOG_LINE_MAX) {
			/* The start of a line: keep it until its end arrives. */
			log->held[s].data = xrealloc(log->held[s].data, held + chunk);
			memcpy(log->held[s].data + held, data, chunk);
			log->held[s].length += chunk;
			return 0;
		}
		if (held + chunk > CONTAINER_LOG_LINE_MAX && !end)
			chunk = CONTAINER_LOG_LINE_MAX - held; /* a line this long is cut into P records */
		char *line = xmalloc(held + chunk + 1);
		if (held)
			memcpy(line, log->held[s].data, held);
		memcpy(line + held, data, chunk);
		free(log->held[s].data);
		log->held[s].data = NULL;
		log->held[s].length = 0;
		int r = write_record(log, stream, end && chunk == (size_t)(end - data) ? 'F' : 'P', line, held + chunk);
		free(line);
		if (r < 0)
			return r;
		size_t used = chunk + (end && chunk == (size_t)(end - data) ? 1 : 0);
		data += used;
		length -= used;
	}
	return 0;
}

int container_log_flush(struct container_log *log, const char *stream)
{
	int s = stream_index(stream);
	if (log->held[s].length == 0)
		return 0;
	int r = write_record(log, stream, 'F', log->held[s].data, log->held[s].length);
	free(log->held[s].data);
	log->held[s].data = NULL;
	log->held[s].length = 0;
	return r;
}

struct pump {
	struct container_log *log;
	const char *stream;
	int *open_streams;
};

static void on_readable(struct loop *loop, int fd, uint32_t events, void *data)
{
	struct pump *p = data;
	char buffer[64 * 1024];
	ssize_t n = read(fd, buffer, sizeof(buffer));
	if (n > 0) {
		container_log_write(p->log, p->stream, buffer, (size_t)n);
		return;
	}
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	(void)events;
	container_log_flush(p->log, p->stream);
	loop_remove_fd(loop, fd);
	close(fd);
	if (p->open_streams)
		(*p->open_streams)--;
	free(p);
}

int container_log_pump(struct loop *loop, struct container_log *log, const char *stream, int fd, int *open_streams,
                       struct error *err)
{
	int flags = fcntl(fd, F_GETFL);
	if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0)
		return error_set_errno(err, errno, "make the %s pipe non-blocking", stream);
	struct pump *p = xcalloc(1, sizeof(*p));
	p->log = log;
	p->stream = stream;
	p->open_streams = open_streams;
	int r = loop_add_fd(loop, fd, EPOLLIN, on_readable, p);
	if (r < 0) {
		free(p);
		return error_set_errno(err, -r, "watch the %s pipe", stream);
	}
	return 0;
}
