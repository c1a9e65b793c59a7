#include "tools/clientconfig.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "platform/error.h"
#include "tests/unit/unit.h"

static const char *write_config(const char *name, const char *text)
{
	static char path[512];
	snprintf(path, sizeof(path), "%s/%s", unit_temp_dir(), name);
	FILE *f = fopen(path, "w");
	CHECK(f != NULL);
	fputs(text, f);
	fclose(f);
	return path;
}

TEST(reads_what_init_writes)
{
	const char *path = write_config("admin.conf", "# Bramble client configuration (bramble init)\n"
	                                              "[cluster]\nserver = coaps://127.0.0.1:5684\n\n"
	                                              "[user]\nidentity = admin\nkey = abcdefghijklmnop0123\n");
	struct clientconfig config;
	struct error err = { 0 };
	CHECK_OK(clientconfig_load(path, &config, &err));
	CHECK_STR(config.server, "coaps://127.0.0.1:5684");
	CHECK_STR(config.identity, "admin");
	CHECK_STR(config.key, "abcdefghijklmnop0123");
	CHECK_STR(config.path, path);
	clientconfig_clear(&config);
	CHECK_STR(config.key, "");
}

TEST(missing_file_says_how_to_get_one)
{
	struct clientconfig config;
	struct error err = { 0 };
	CHECK_INT(clientconfig_load("/nonexistent/bramble/config", &config, &err), ==, -ENOENT);
	CHECK_CONTAINS(err.message, "/nonexistent/bramble/config");
	CHECK_CONTAINS(err.message, "bramble init");
	CHECK_CONTAINS(err.message, "admin.conf");
	CHECK_CONTAINS(err.message, "--config");
}

TEST(errors_name_file_and_line)
{
	struct clientconfig config;
	struct error err = { 0 };
	const char *path =
	        write_config("c1", "[cluster]\nserver = coaps://127.0.0.1:5684\n[user]\nidentity = a\nkee = x\n");
	CHECK_INT(clientconfig_load(path, &config, &err), ==, -EINVAL);
	CHECK_CONTAINS(err.message, ":5: unknown key 'kee' in [user]");
	path = write_config("c2", "[cluster]\nserver = coaps://127.0.0.1:5684\n[users]\nidentity = a\n");
	CHECK_INT(clientconfig_load(path, &config, &err), ==, -EINVAL);
	CHECK_CONTAINS(err.message, "c2:4: unknown section [users]");
	path = write_config("c3", "[cluster]\nserver = coaps://127.0.0.1:5684\nthis is not ini\n");
	CHECK_INT(clientconfig_load(path, &config, &err), ==, -EINVAL);
	CHECK_CONTAINS(err.message, "c3:3: expected 'key = value'");
	path = write_config("c4", "[cluster]\nserver = coaps://127.0.0.1:5684\n[user]\nidentity = admin\n");
	CHECK_INT(clientconfig_load(path, &config, &err), ==, -EINVAL);
	CHECK_CONTAINS(err.message, "[user] key is missing");
	path = write_config("c5", "server = x\n");
	CHECK_INT(clientconfig_load(path, &config, &err), ==, -EINVAL);
	CHECK_CONTAINS(err.message, "c5:1: 'server' is outside a section");
	path = write_config("c6", "[cluster]\nserver = a\nserver = b\n");
	CHECK_INT(clientconfig_load(path, &config, &err), ==, -EINVAL);
	CHECK_CONTAINS(err.message, "c6:3: server is set twice");
}

TEST(path_precedence)
{
	char buf[512];
	setenv("HOME", "/home/pi", 1);
	unsetenv("BRAMBLE_CONFIG");
	clientconfig_path(NULL, buf, sizeof(buf));
	CHECK_STR(buf, "/home/pi/.config/bramble/config");
	setenv("BRAMBLE_CONFIG", "/etc/bramble/client.conf", 1);
	clientconfig_path(NULL, buf, sizeof(buf));
	CHECK_STR(buf, "/etc/bramble/client.conf");
	clientconfig_path("/tmp/x.conf", buf, sizeof(buf));
	CHECK_STR(buf, "/tmp/x.conf");
}
