#include "agent/credentials.h"

#include <errno.h>
#include <sys/stat.h>

#include "platform/error.h"
#include "platform/file.h"
#include "platform/memory.h"
#include "tests/unit/unit.h"

static char *write_credentials(const char *text, mode_t mode)
{
	char *path = xasprintf("%s/credentials", unit_temp_dir());
	CHECK_OK(file_write_atomic(path, text, strlen(text), mode, NULL));
	return path;
}

TEST(loads_identities_and_looks_up_keys)
{
	cleanup_free char *path = write_credentials("# who may use the API\n"
	                                            "admin   0123456789abcdef0123\n"
	                                            "\n"
	                                            "node:pi-1 pi1-secret-key-123456 # comment\n",
	                                            0600);
	struct credentials c;
	struct error err;
	CHECK_OK(credentials_load(path, &c, &err));
	CHECK_INT(c.count, ==, 2);
	uint8_t key[64];
	int len = credentials_psk_lookup("node:pi-1", key, &c);
	CHECK_INT(len, ==, 21);
	CHECK(memcmp(key, "pi1-secret-key-123456", 21) == 0);
	CHECK_INT(credentials_psk_lookup("node:pi-2", key, &c), ==, -ENOENT);
	credentials_free(&c);
}

TEST(refuses_a_file_others_can_read)
{
	cleanup_free char *path = write_credentials("admin 0123456789abcdef0123\n", 0644);
	struct credentials c;
	struct error err;
	CHECK_INT(credentials_load(path, &c, &err), ==, -EPERM);
	CHECK_CONTAINS(err.message, "chmod 600");
}

TEST(names_the_line_of_a_bad_entry)
{
	struct credentials c;
	struct error err;
	cleanup_free char *short_key = write_credentials("admin 0123456789abcdef\nnode:x short\n", 0600);
	CHECK_INT(credentials_load(short_key, &c, &err), ==, -EINVAL);
	CHECK_CONTAINS(err.message, "credentials:2: key must be 16 to 64 printable characters");
	cleanup_free char *twice = write_credentials("admin 0123456789abcdef\nadmin 0123456789abcdef\n", 0600);
	CHECK_INT(credentials_load(twice, &c, &err), ==, -EINVAL);
	CHECK_CONTAINS(err.message, ":2: identity 'admin' appears twice");
	cleanup_free char *lonely = write_credentials("admin\n", 0600);
	CHECK_INT(credentials_load(lonely, &c, &err), ==, -EINVAL);
	CHECK_CONTAINS(err.message, ":1: expected 'identity key'");
	cleanup_free char *extra = write_credentials("admin 0123456789abcdef junk\n", 0600);
	CHECK_INT(credentials_load(extra, &c, &err), ==, -EINVAL);
	CHECK_CONTAINS(err.message, "unexpected text after the key");
}

TEST(missing_file_is_a_clear_error)
{
	struct credentials c;
	struct error err;
	CHECK_INT(credentials_load("/nonexistent/credentials", &c, &err), ==, -ENOENT);
	CHECK_CONTAINS(err.message, "/nonexistent/credentials");
}

TEST(stores_a_boards_own_credential_privately_and_reads_it_back)
{
	cleanup_free char *path = xasprintf("%s/node-credential", unit_temp_dir());
	struct error err;
	CHECK_OK(credentials_store_own(path, "node:pi-2@1", "0123456789abcdefXYZ", "issued when pi-2 joined", &err));
	struct stat st;
	CHECK_OK(stat(path, &st));
	CHECK_INT(st.st_mode & 0777, ==, 0600);
	char *identity = NULL, *key = NULL;
	CHECK_OK(credentials_load_own(path, &identity, &key, &err));
	CHECK_STR(identity, "node:pi-2@1");
	CHECK_STR(key, "0123456789abcdefXYZ");
	free(identity);
	free(key);
	/* Replaced whole (a rotation). */
	CHECK_OK(credentials_store_own(path, "node:pi-2@2", "abcdefghijklmnopqrst", "rotated", &err));
	CHECK_OK(credentials_load_own(path, &identity, &key, &err));
	CHECK_STR(identity, "node:pi-2@2");
	free(identity);
	free(key);
	CHECK_INT(credentials_store_own(path, "node:pi-2@3", "short", "x", &err), ==, -EINVAL);
}
