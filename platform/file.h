/* Files: bounded reads, atomic durable writes, directories.
 *
 * Config, credentials and caches live on SD cards that lose power without warning, so
 * every file Bramble writes goes through file_write_atomic(): a reader sees the old
 * content or the new, never a torn one.
 */
#ifndef BRAMBLE_PLATFORM_FILE_H
#define BRAMBLE_PLATFORM_FILE_H

#include <stddef.h>
#include <sys/types.h>

struct error;

/* Reads a whole file of at most max_size bytes into a NUL-terminated buffer (the NUL is not
 * counted in *ret_size). A larger file is refused with -EFBIG. */
int file_read(const char *path, size_t max_size, char **ret_data, size_t *ret_size, struct error *err);

/* Writes via a temporary file in the same directory, fsync, rename, fsync of the directory. */
int file_write_atomic(const char *path, const void *data, size_t size, mode_t mode, struct error *err);

/* mkdir -p; existing directories are fine. */
int file_mkdir_p(const char *path, mode_t mode, struct error *err);

/* rm -rf, without following symbolic links or crossing into other filesystems (a mount
 * left inside is refused, not emptied); a missing path is fine. */
int file_remove_tree(const char *path);
/* Detaches every mount at or below path (deepest first), as read from /proc/self/mounts;
 * returns how many were detached. */
int file_unmount_below(const char *path);

/* Writes all of buf to fd, retrying short writes and EINTR. */
int file_write_all(int fd, const void *buf, size_t size);

#endif
