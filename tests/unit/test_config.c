#include "agent/config.h"

#include <errno.h>
#include <stdio.h>

#include "platform/file.h"
#include "platform/memory.h"
#include "tests/unit/unit.h"

static char *write_conf(const char *name, const char *text)
{
	char *path = xasprintf("%s/%s", unit_temp_dir(), name);
	CHECK_OK(file_write_atomic(path, text, strlen(text), 0644, NULL));
	return path;
}

/* Loads text and returns what was reported (empty when the file is fine). */
static char *load_errors(const char *text, int *ret)
{
	cleanup_free char *path = write_conf("b.conf", text);
	char *out = NULL;
	size_t size = 0;
	FILE *errors = open_memstream(&out, &size);
	struct config c;
	*ret = config_load(path, &c, errors);
	fclose(errors);
	config_free(&c);
	return out;
}

TEST(defaults_are_those_documented)
{
	struct config c;
	config_defaults(&c);
	CHECK_INT(c.roles, ==, CONFIG_ROLE_AGENT);
	CHECK_STR(c.data_dir, "/var/lib/bramble");
	CHECK_STR(c.listen, "0.0.0.0:5684");
	CHECK_STR(c.debug_plain_listen, "");
	CHECK_INT(c.log_level, ==, LOG_LEVEL_INFO);
	CHECK(!c.log_syslog);
	config_free(&c);
}

TEST(sample_configuration_loads_cleanly)
{
	char *text = NULL;
	size_t size = 0;
	FILE *f = open_memstream(&text, &size);
	config_write_sample(f);
	fclose(f);
	int r;
	cleanup_free char *errors = load_errors(text, &r);
	CHECK_OK(r);
	CHECK_STR(errors, "");
	free(text);
}

TEST(values_are_read_and_derived)
{
	cleanup_free char *path = write_conf("c.conf", "[node]\n"
	                                               "name = pi-7\n"
	                                               "roles = server, agent\n"
	                                               "data-dir = /srv/bramble\n"
	                                               "[server]\n"
	                                               "listen = [::1]:6000\n"
	                                               "[log]\n"
	                                               "level = debug\n"
	                                               "target = syslog\n");
	struct config c;
	CHECK_OK(config_load(path, &c, stderr));
	CHECK_STR(c.node_name, "pi-7");
	CHECK_INT(c.roles, ==, CONFIG_ROLE_AGENT | CONFIG_ROLE_SERVER);
	CHECK_STR(c.credentials, "/srv/bramble/credentials");
	CHECK_STR(c.listen, "[::1]:6000");
	CHECK_INT(c.log_level, ==, LOG_LEVEL_DEBUG);
	CHECK(c.log_syslog);
	config_free(&c);
}

TEST(every_error_is_reported_with_file_and_line)
{
	int r;
	cleanup_free char *errors = load_errors("[node]\n"
	                                        "name = Pi_7\n"
	                                        "roles = server, kubelet\n"
	                                        "data-dir = var/lib\n"
	                                        "colour = red\n"
	                                        "[server]\n"
	                                        "listen = pi.local:5684\n"
	                                        "[gpu]\n"
	                                        "x = 1\n"
	                                        "[log]\n"
	                                        "level = loud\n"
	                                        "level = info\n",
	                                        &r);
	CHECK_INT(r, ==, -EINVAL);
	CHECK_CONTAINS(errors, "b.conf:2: node.name: 'Pi_7' is not a valid node name");
	CHECK_CONTAINS(errors, "b.conf:3: node.roles: unknown role 'kubelet'");
	CHECK_CONTAINS(errors, "b.conf:4: node.data-dir: 'var/lib' must be an absolute path");
	CHECK_CONTAINS(errors, "b.conf:5: unknown key 'colour' in [node]");
	CHECK_CONTAINS(errors, "b.conf:7: server.listen: 'pi.local:5684' is not an address");
	CHECK_CONTAINS(errors, "b.conf:9: unknown section [gpu]");
	CHECK_CONTAINS(errors, "b.conf:11: log.level: unknown log level 'loud'");
	CHECK_CONTAINS(errors, "b.conf:12: log.level is set twice");
}

TEST(syntax_error_names_the_line)
{
	int r;
	cleanup_free char *errors = load_errors("[node]\nname = a\nthis line has no equals sign\n", &r);
	CHECK_INT(r, ==, -EINVAL);
	CHECK_CONTAINS(errors, "b.conf:3: expected 'key = value'");
}

TEST(key_outside_a_section)
{
	int r;
	cleanup_free char *errors = load_errors("name = a\n", &r);
	CHECK_INT(r, ==, -EINVAL);
	CHECK_CONTAINS(errors, "b.conf:1: 'name' is outside any section");
}

TEST(missing_file)
{
	struct config c;
	char *out = NULL;
	size_t size = 0;
	FILE *errors = open_memstream(&out, &size);
	CHECK_INT(config_load("/nonexistent/bramble.conf", &c, errors), ==, -ENOENT);
	fclose(errors);
	CHECK_CONTAINS(out, "/nonexistent/bramble.conf: cannot open");
	free(out);
	config_free(&c);
}

TEST(empty_node_name_becomes_the_host_name)
{
	cleanup_free char *path = write_conf("d.conf", "[node]\nname =\n");
	struct config c;
	CHECK_OK(config_load(path, &c, stderr));
	CHECK(c.node_name[0] != '\0');
	config_free(&c);
}

TEST(join_token_must_carry_the_cluster_hash)
{
	int r;
	cleanup_free char *errors = load_errors("[agent]\ntoken = abcdef.0123456789abcdef\n", &r);
	CHECK_INT(r, ==, -EINVAL);
	CHECK_CONTAINS(errors, ":2: agent.token: join token abcdef has no cluster hash");
	cleanup_free char *ok = load_errors("[agent]\ntoken = abcdef.0123456789abcdef:sha256:"
	                                    "00000000000000000000000000000000000000000000000000000000000000ff\n",
	                                    &r);
	CHECK_OK(r);
	CHECK_STR(ok, "");
}
