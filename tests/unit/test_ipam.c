#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "agent/ipam.h"
#include "platform/error.h"
#include "platform/file.h"
#include "tests/unit/unit.h"

static const char *text(struct in_addr a)
{
	static char buf[4][INET_ADDRSTRLEN];
	static int i;
	i = (i + 1) % 4;
	return inet_ntop(AF_INET, &a, buf[i], sizeof(buf[i]));
}

static char *state_path(void)
{
	static char path[512];
	snprintf(path, sizeof(path), "%s/ipam", unit_temp_dir());
	return path;
}

/* file_write_atomic replaces the file: a new inode means a write happened. */
static ino_t inode_of(const char *path)
{
	struct stat st;
	if (stat(path, &st) < 0)
		return 0;
	return st.st_ino;
}

TEST(ipam_allocates_from_two_and_persists)
{
	struct error err = { 0 };
	struct ipam *ipam;
	CHECK_OK(ipam_open(state_path(), "10.42.3.0/24", &ipam, &err));
	CHECK_STR(text(ipam_gateway(ipam)), "10.42.3.1");
	CHECK_INT(ipam_capacity(ipam), ==, 253);
	CHECK_INT(inode_of(state_path()), ==, 0); /* nothing written yet */
	struct in_addr a, b, again;
	CHECK_OK(ipam_allocate(ipam, "uid-a", &a, &err));
	CHECK_STR(text(a), "10.42.3.2");
	CHECK_OK(ipam_allocate(ipam, "uid-b", &b, &err));
	CHECK_STR(text(b), "10.42.3.3");
	ino_t written = inode_of(state_path());
	CHECK(written != 0);
	CHECK_OK(ipam_allocate(ipam, "uid-a", &again, &err)); /* the same pod again: same address, no write */
	CHECK_STR(text(again), "10.42.3.2");
	CHECK_OK(ipam_release(ipam, "uid-unknown", &err));
	CHECK_INT(inode_of(state_path()), ==, written);
	ipam_free(ipam);

	/* a restart keeps them, and writes nothing */
	CHECK_OK(ipam_open(state_path(), "10.42.3.0/24", &ipam, &err));
	CHECK_INT(ipam_allocated_count(ipam), ==, 2);
	CHECK_OK(ipam_lookup(ipam, "uid-b", &again));
	CHECK_STR(text(again), "10.42.3.3");
	CHECK_INT(ipam_lookup(ipam, "uid-c", &again), ==, -ENOENT);
	CHECK_INT(inode_of(state_path()), ==, written);
	/* next-fit: a released address is not handed out again at once */
	CHECK_OK(ipam_release(ipam, "uid-a", &err));
	CHECK(inode_of(state_path()) != written);
	struct in_addr c;
	CHECK_OK(ipam_allocate(ipam, "uid-c", &c, &err));
	CHECK_STR(text(c), "10.42.3.4");
	ipam_free(ipam);

	char *data;
	CHECK_OK(file_read(state_path(), 4096, &data, NULL, &err));
	CHECK_CONTAINS(data, "cidr 10.42.3.0/24\n");
	CHECK_CONTAINS(data, "10.42.3.3 uid-b\n");
	CHECK_CONTAINS(data, "10.42.3.4 uid-c\n");
	CHECK(!strstr(data, "uid-a"));
	free(data);
}

TEST(ipam_exhaustion_and_wraparound)
{
	struct error err = { 0 };
	struct ipam *ipam;
	CHECK_OK(ipam_open(state_path(), "10.42.7.0/29", &ipam, &err));
	CHECK_INT(ipam_capacity(ipam), ==, 5); /* .2 to .6 */
	char key[32];
	struct in_addr a;
	for (int i = 0; i < 5; i++) {
		snprintf(key, sizeof(key), "pod-%d", i);
		CHECK_OK(ipam_allocate(ipam, key, &a, &err));
	}
	CHECK_STR(text(a), "10.42.7.6");
	CHECK_INT(ipam_allocate(ipam, "pod-5", &a, &err), ==, -ENOSPC);
	CHECK_CONTAINS(err.message, "pod CIDR 10.42.7.0/29 is exhausted: all 5 pod addresses are in use");
	CHECK_OK(ipam_release(ipam, "pod-1", &err));
	CHECK_OK(ipam_allocate(ipam, "pod-5", &a, &err)); /* wraps around past .7 (broadcast), .0 and .1 */
	CHECK_STR(text(a), "10.42.7.3");
	ipam_free(ipam);
}

TEST(ipam_reconcile_with_live_pods)
{
	struct error err = { 0 };
	struct ipam *ipam;
	CHECK_OK(ipam_open(state_path(), "10.42.3.0/24", &ipam, &err));
	struct in_addr a;
	CHECK_OK(ipam_allocate(ipam, "keep", &a, &err));
	CHECK_OK(ipam_allocate(ipam, "gone-1", &a, &err));
	CHECK_OK(ipam_allocate(ipam, "gone-2", &a, &err));
	ipam_free(ipam);
	CHECK_OK(ipam_open(state_path(), "10.42.3.0/24", &ipam, &err));
	const char *live[] = { "keep", "not-allocated" };
	CHECK_OK(ipam_reconcile(ipam, live, 2, &err));
	CHECK_INT(ipam_allocated_count(ipam), ==, 1);
	ino_t written = inode_of(state_path());
	CHECK_OK(ipam_reconcile(ipam, live, 2, &err)); /* nothing to do: no write */
	CHECK_INT(inode_of(state_path()), ==, written);
	ipam_free(ipam);
	CHECK_OK(ipam_open(state_path(), "10.42.3.0/24", &ipam, &err));
	CHECK_INT(ipam_allocated_count(ipam), ==, 1);
	CHECK_OK(ipam_lookup(ipam, "keep", &a));
	CHECK_STR(text(a), "10.42.3.2");
	ipam_free(ipam);
}

TEST(ipam_new_cidr_discards_old_state)
{
	struct error err = { 0 };
	struct ipam *ipam;
	struct in_addr a;
	CHECK_OK(ipam_open(state_path(), "10.42.3.0/24", &ipam, &err));
	CHECK_OK(ipam_allocate(ipam, "p", &a, &err));
	ipam_free(ipam);
	CHECK_OK(ipam_open(state_path(), "10.42.9.0/24", &ipam, &err));
	CHECK_INT(ipam_allocated_count(ipam), ==, 0);
	CHECK_OK(ipam_allocate(ipam, "p", &a, &err));
	CHECK_STR(text(a), "10.42.9.2");
	ipam_free(ipam);
}

TEST(ipam_bad_input)
{
	struct error err = { 0 };
	struct ipam *ipam;
	CHECK_INT(ipam_open(state_path(), "10.42.3.1/24", &ipam, &err), ==, -EINVAL);
	CHECK_CONTAINS(err.message, "pod CIDR: '10.42.3.1/24' has host bits set");
	CHECK_INT(ipam_open(state_path(), "10.42.3.0/30", &ipam, &err), ==, -EINVAL);
	CHECK_CONTAINS(err.message, "/8 to /29");
	CHECK_INT(ipam_open(state_path(), "banana", &ipam, &err), ==, -EINVAL);

	CHECK_OK(ipam_open(state_path(), "10.42.3.0/24", &ipam, &err));
	struct in_addr a;
	CHECK_INT(ipam_allocate(ipam, "has space", &a, &err), ==, -EINVAL);
	CHECK_INT(ipam_allocate(ipam, "", &a, &err), ==, -EINVAL);
	ipam_free(ipam);

	const char *broken[] = {
		"10.42.3.2 pod\n",                               /* no cidr line first */
		"cidr 10.42.3.0/24\n10.42.3.1 pod\n",            /* the gateway */
		"cidr 10.42.3.0/24\n10.42.4.2 pod\n",            /* outside */
		"cidr 10.42.3.0/24\n10.42.3.2 a\n10.42.3.2 b\n", /* twice */
		"cidr 10.42.3.0/24\nnonsense\n",
		"cidr nonsense\n",
	};
	for (size_t i = 0; i < sizeof(broken) / sizeof(broken[0]); i++) {
		CHECK_OK(file_write_atomic(state_path(), broken[i], strlen(broken[i]), 0600, &err));
		CHECK_INT(ipam_open(state_path(), "10.42.3.0/24", &ipam, &err), ==, -EINVAL);
		CHECK_CONTAINS(err.message, state_path());
	}
	/* an unwritable state directory: the address is not handed out */
	char path[600];
	snprintf(path, sizeof(path), "%s/missing-dir/ipam", unit_temp_dir());
	CHECK_OK(ipam_open(path, "10.42.3.0/24", &ipam, &err));
	CHECK(ipam_allocate(ipam, "p", &a, &err) < 0);
	CHECK_CONTAINS(err.message, "saving pod addresses");
	CHECK_INT(ipam_allocated_count(ipam), ==, 0);
	ipam_free(ipam);
}

TEST(ipam_stored_cidr_names_the_last_runs_block)
{
	char path[300], cidr[32];
	snprintf(path, sizeof(path), "%s/pod-addresses", unit_temp_dir());
	CHECK_INT(ipam_stored_cidr(path, cidr, sizeof(cidr)), ==, -ENOENT);
	struct ipam *ipam;
	struct error err;
	CHECK_OK(ipam_open(path, "10.42.7.0/24", &ipam, &err));
	struct in_addr a;
	CHECK_OK(ipam_allocate(ipam, "pod-1", &a, &err));
	ipam_free(ipam);
	CHECK_OK(ipam_stored_cidr(path, cidr, sizeof(cidr)));
	CHECK_STR(cidr, "10.42.7.0/24");
}
