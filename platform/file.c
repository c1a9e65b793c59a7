#include "platform/file.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "platform/error.h"
#include "platform/memory.h"

int file_read(const char *path, size_t max_size, char **ret_data, size_t *ret_size, struct error *err)
{
	cleanup_close int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return error_set_errno(err, errno, "open %s", path);
	struct stat st;
	if (fstat(fd, &st) < 0)
		return error_set_errno(err, errno, "stat %s", path);
	if (S_ISDIR(st.st_mode))
		return error_set(err, EISDIR, "%s is a directory, not a file", path);
	size_t capacity = S_ISREG(st.st_mode) && (size_t)st.st_size < max_size ? (size_t)st.st_size + 1 : 4096;
	cleanup_free char *data = xmalloc(capacity + 1);
	size_t size = 0;
	for (;;) {
		if (size == capacity) {
			if (capacity > max_size)
				break;
			capacity *= 2;
			data = xrealloc(data, capacity + 1);
		}
		ssize_t n = read(fd, data + size, capacity - size);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return error_set_errno(err, errno, "read %s", path);
		}
		if (n == 0)
			break;
		size += (size_t)n;
		if (size > max_size)
			break;
	}
	if (size > max_size)
		return error_set(err, EFBIG, "%s is larger than the limit of %zu bytes", path, max_size);
	data[size] = '\0';
	*ret_data = steal_pointer(&data);
	if (ret_size)
		*ret_size = size;
	return 0;
}

int file_write_all(int fd, const void *buf, size_t size)
{
	const char *p = buf;
	while (size > 0) {
		ssize_t n = write(fd, p, size);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += n;
		size -= (size_t)n;
	}
	return 0;
}

static int fsync_directory_of(const char *path)
{
	cleanup_free char *copy = xstrdup(path);
	cleanup_close int fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	return fsync(fd) < 0 ? -errno : 0;
}

int file_write_atomic(const char *path, const void *data, size_t size, mode_t mode, struct error *err)
{
	cleanup_free char *tmp = xasprintf("%s.tmp.%ld", path, (long)getpid());
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, mode);
	if (fd < 0)
		return error_set_errno(err, errno, "create %s", tmp);
	int r = fchmod(fd, mode) < 0 ? -errno : 0; /* the umask must not widen or narrow mode */
	if (r == 0)
		r = file_write_all(fd, data, size);
	if (r == 0 && fsync(fd) < 0)
		r = -errno;
	if (close(fd) < 0 && r == 0)
		r = -errno;
	if (r == 0 && rename(tmp, path) < 0)
		r = -errno;
	if (r < 0) {
		unlink(tmp);
		return error_set_errno(err, -r, "write %s", path);
	}
	r = fsync_directory_of(path);
	if (r < 0)
		return error_set_errno(err, -r, "sync the directory of %s", path);
	return 0;
}

int file_mkdir_p(const char *path, mode_t mode, struct error *err)
{
	if (strlen(path) >= PATH_MAX)
		return error_set(err, ENAMETOOLONG, "path too long: %.64s...", path);
	char buf[PATH_MAX];
	strcpy(buf, path);
	for (char *p = buf + 1;; p++) {
		if (*p != '/' && *p != '\0')
			continue;
		char saved = *p;
		*p = '\0';
		if (mkdir(buf, mode) < 0 && errno != EEXIST)
			return error_set_errno(err, errno, "mkdir %s", buf);
		*p = saved;
		if (saved == '\0')
			break;
	}
	struct stat st;
	if (stat(path, &st) < 0)
		return error_set_errno(err, errno, "stat %s", path);
	if (!S_ISDIR(st.st_mode))
		return error_set(err, ENOTDIR, "%s exists and is not a directory", path);
	return 0;
}

static int remove_entry(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	(void)st;
	(void)type;
	(void)ftw;
	return remove(path) < 0 && errno != ENOENT ? -1 : 0;
}

int file_remove_tree(const char *path)
{
	struct stat st;
	if (lstat(path, &st) < 0)
		return errno == ENOENT ? 0 : -errno;
	return nftw(path, remove_entry, 16, FTW_DEPTH | FTW_PHYS | FTW_MOUNT) < 0 ? -errno : 0;
}

/* /proc/self/mounts escapes space, tab, newline and backslash as \ooo. */
static void unescape_mount_path(char *s)
{
	char *out = s;
	for (; *s; s++) {
		if (s[0] == '\\' && s[1] >= '0' && s[1] <= '7' && s[2] >= '0' && s[2] <= '7' && s[3] >= '0' &&
		    s[3] <= '7') {
			*out++ = (char)((s[1] - '0') * 64 + (s[2] - '0') * 8 + (s[3] - '0'));
			s += 3;
		} else {
			*out++ = *s;
		}
	}
	*out = '\0';
}

int file_unmount_below(const char *path)
{
	FILE *f = fopen("/proc/self/mounts", "re");
	if (!f)
		return 0;
	size_t length = strlen(path);
	while (length > 1 && path[length - 1] == '/')
		length--;
	char **found = NULL;
	size_t count = 0;
	char line[4096];
	while (fgets(line, sizeof(line), f)) {
		char *space = strchr(line, ' ');
		if (!space)
			continue;
		char *target = space + 1, *end = strchr(target, ' ');
		if (!end)
			continue;
		*end = '\0';
		unescape_mount_path(target);
		if (strncmp(target, path, length) == 0 && (target[length] == '\0' || target[length] == '/')) {
			found = xrealloc(found, (count + 1) * sizeof(*found));
			found[count++] = xstrdup(target);
		}
	}
	fclose(f);
	int detached = 0;
	for (size_t i = count; i-- > 0;) { /* mounted later, deeper: detached first */
		if (umount2(found[i], MNT_DETACH) == 0)
			detached++;
		free(found[i]);
	}
	free(found);
	return detached;
}
