#include "platform/file.h"

#include <errno.h>
#include <stdbool.h>
#include <sys/mount.h>
#include <sys/stat.h>

#include "platform/error.h"
#include "platform/memory.h"
#include "tests/unit/unit.h"

TEST(write_atomic_then_read_back)
{
	cleanup_free char *path = xasprintf("%s/a.conf", unit_temp_dir());
	struct error err;
	CHECK_OK(file_write_atomic(path, "hello\n", 6, 0600, &err));
	struct stat st;
	CHECK_OK(stat(path, &st));
	CHECK_INT(st.st_mode & 0777, ==, 0600);
	cleanup_free char *data = NULL;
	size_t size = 0;
	CHECK_OK(file_read(path, 100, &data, &size, &err));
	CHECK_INT(size, ==, 6);
	CHECK_STR(data, "hello\n");
	/* Replacing keeps no temporary file behind. */
	CHECK_OK(file_write_atomic(path, "x", 1, 0644, &err));
	cleanup_free char *tmp = xasprintf("%s.tmp.%ld", path, (long)getpid());
	CHECK(access(tmp, F_OK) < 0);
}

TEST(read_refuses_files_over_the_limit)
{
	cleanup_free char *path = xasprintf("%s/big", unit_temp_dir());
	char buf[5000];
	memset(buf, 'z', sizeof(buf));
	CHECK_OK(file_write_atomic(path, buf, sizeof(buf), 0600, NULL));
	cleanup_free char *data = NULL;
	struct error err;
	CHECK_INT(file_read(path, 4096, &data, NULL, &err), ==, -EFBIG);
	CHECK(data == NULL);
	CHECK_CONTAINS(err.message, "larger than the limit of 4096 bytes");
	CHECK_OK(file_read(path, 5000, &data, NULL, &err));
}

TEST(read_of_a_stream_is_bounded_too)
{
	cleanup_free char *data = NULL;
	struct error err;
	/* /dev/zero never ends: the limit must stop it. */
	CHECK_INT(file_read("/dev/zero", 10000, &data, NULL, &err), ==, -EFBIG);
}

TEST(read_missing_names_the_path)
{
	cleanup_free char *data = NULL;
	struct error err;
	CHECK_INT(file_read("/nonexistent/bramble.conf", 10, &data, NULL, &err), ==, -ENOENT);
	CHECK_STR(err.message, "open /nonexistent/bramble.conf: No such file or directory");
}

TEST(mkdir_p_creates_nested_and_refuses_files)
{
	cleanup_free char *dir = xasprintf("%s/a/b/c", unit_temp_dir());
	struct error err;
	CHECK_OK(file_mkdir_p(dir, 0700, &err));
	CHECK_OK(file_mkdir_p(dir, 0700, &err));
	struct stat st;
	CHECK_OK(stat(dir, &st));
	CHECK(S_ISDIR(st.st_mode));
	cleanup_free char *file = xasprintf("%s/f", unit_temp_dir());
	CHECK_OK(file_write_atomic(file, "", 0, 0600, NULL));
	cleanup_free char *under = xasprintf("%s/f/g", unit_temp_dir());
	CHECK_INT(file_mkdir_p(under, 0700, &err), <, 0);
	CHECK_INT(file_mkdir_p(file, 0700, &err), ==, -ENOTDIR);
}

TEST(remove_tree_removes_without_following_links)
{
	cleanup_free char *tree = xasprintf("%s/tree", unit_temp_dir());
	cleanup_free char *deep = xasprintf("%s/a/b/c", tree);
	cleanup_free char *outside = xasprintf("%s/outside", unit_temp_dir());
	cleanup_free char *kept = xasprintf("%s/kept", outside);
	cleanup_free char *link = xasprintf("%s/a/link", tree);
	CHECK_OK(file_mkdir_p(deep, 0700, NULL));
	CHECK_OK(file_mkdir_p(outside, 0700, NULL));
	CHECK_OK(file_write_atomic(kept, "x", 1, 0600, NULL));
	CHECK_OK(symlink(outside, link));
	CHECK_OK(file_remove_tree(tree));
	CHECK(access(tree, F_OK) < 0);
	CHECK(access(kept, F_OK) == 0);   /* the link went, not what it pointed to */
	CHECK_OK(file_remove_tree(tree)); /* already gone: fine */
}

static bool mounted_at(const char *path)
{
	struct stat here, parent;
	cleanup_free char *up = xasprintf("%s/..", path);
	return stat(path, &here) == 0 && stat(up, &parent) == 0 && here.st_dev != parent.st_dev;
}

TEST(unmount_below_detaches_nested_mounts_and_nothing_beside)
{
	cleanup_free char *top = xasprintf("%s/pod", unit_temp_dir());
	cleanup_free char *inner = xasprintf("%s/pod/volumes/with space", unit_temp_dir());
	cleanup_free char *nested = xasprintf("%s/pod/volumes/with space/deeper", unit_temp_dir());
	cleanup_free char *beside = xasprintf("%s/pod-other", unit_temp_dir());
	CHECK_OK(file_mkdir_p(inner, 0700, NULL));
	CHECK_OK(file_mkdir_p(beside, 0700, NULL));
	CHECK_OK(mount("tmpfs", inner, "tmpfs", 0, "size=64k"));
	CHECK_OK(file_mkdir_p(nested, 0700, NULL));
	CHECK_OK(mount("tmpfs", nested, "tmpfs", 0, "size=64k"));
	CHECK_OK(mount("tmpfs", beside, "tmpfs", 0, "size=64k"));
	CHECK(mounted_at(inner) && mounted_at(nested) && mounted_at(beside));
	int detached = file_unmount_below(top);
	bool beside_kept = mounted_at(beside);
	umount2(beside, MNT_DETACH); /* the test's own, whatever happened */
	CHECK_INT(detached, ==, 2);
	CHECK(!mounted_at(inner));
	CHECK(beside_kept); /* a sibling whose name merely starts the same is not below */
	CHECK_OK(file_remove_tree(top));
}
