/* See clientconfig.h. */
#include "tools/clientconfig.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define INI_HANDLER_LINENO 1
#include <ini.h>

#include "core/client.h"
#include "platform/error.h"
#include "platform/log.h"
#include "tools/verbs.h"

struct load_state {
	struct clientconfig *config;
	struct error *err;
	const char *path;
	int failed;
};

void clientconfig_path(const char *explicit_path, char *buf, size_t size)
{
	const char *env = getenv("BRAMBLE_CONFIG");
	const char *home = getenv("HOME");
	if (explicit_path && explicit_path[0])
		snprintf(buf, size, "%s", explicit_path);
	else if (env && env[0])
		snprintf(buf, size, "%s", env);
	else
		snprintf(buf, size, "%s/.config/bramble/config", home && home[0] ? home : ".");
}

static int set_value(struct load_state *state, int line, char *dst, const char *name, const char *value)
{
	if (dst[0]) {
		error_set(state->err, EINVAL, "%s:%d: %s is set twice", state->path, line, name);
		return 0;
	}
	if (!value[0] || strlen(value) >= CLIENTCONFIG_VALUE_MAX) {
		error_set(state->err, EINVAL, "%s:%d: %s must have 1 to %d characters", state->path, line, name,
		          CLIENTCONFIG_VALUE_MAX - 1);
		return 0;
	}
	snprintf(dst, CLIENTCONFIG_VALUE_MAX, "%s", value);
	return 1;
}

static int on_entry(void *data, const char *section, const char *name, const char *value, int line)
{
	struct load_state *state = data;
	struct clientconfig *config = state->config;
	int ok = 0;
	if (state->failed)
		return 0;
	if (!name) /* a section header alone */
		ok = strcmp(section, "cluster") == 0 || strcmp(section, "user") == 0;
	else if (strcmp(section, "cluster") == 0 && strcmp(name, "server") == 0)
		ok = set_value(state, line, config->server, "server", value);
	else if (strcmp(section, "user") == 0 && strcmp(name, "identity") == 0)
		ok = set_value(state, line, config->identity, "identity", value);
	else if (strcmp(section, "user") == 0 && strcmp(name, "key") == 0)
		ok = set_value(state, line, config->key, "key", value);
	else if (!section[0])
		error_set(state->err, EINVAL, "%s:%d: '%s' is outside a section ([cluster] or [user])", state->path,
		          line, name);
	else if (strcmp(section, "cluster") != 0 && strcmp(section, "user") != 0)
		error_set(state->err, EINVAL, "%s:%d: unknown section [%s] (expected [cluster] or [user])", state->path,
		          line, section);
	else
		error_set(state->err, EINVAL, "%s:%d: unknown key '%s' in [%s]", state->path, line, name, section);
	if (!ok)
		state->failed = 1;
	return ok;
}

int clientconfig_load(const char *path, struct clientconfig *ret_config, struct error *err)
{
	struct clientconfig config;
	memset(&config, 0, sizeof(config));
	snprintf(config.path, sizeof(config.path), "%s", path);
	FILE *f = fopen(path, "re");
	if (!f) {
		int e = errno;
		if (e == ENOENT)
			return error_set(
			        err, ENOENT,
			        "%s: no client configuration there. `bramble init` writes one as DATA/admin.conf: "
			        "copy it to ~/.config/bramble/config or pass --config FILE",
			        path);
		return error_set_errno(err, e, "%s: cannot open", path);
	}
	struct stat st;
	if (fstat(fileno(f), &st) == 0 && st.st_size > CLIENTCONFIG_MAX_SIZE) {
		fclose(f);
		return error_set(err, EFBIG, "%s: %lld bytes is larger than the limit of %d", path,
		                 (long long)st.st_size, CLIENTCONFIG_MAX_SIZE);
	}
	struct load_state state = { &config, err, path, 0 };
	int r = ini_parse_file(f, on_entry, &state);
	fclose(f);
	if (state.failed) {
		clientconfig_clear(&config);
		return -EINVAL;
	}
	if (r > 0) {
		clientconfig_clear(&config);
		return error_set(err, EINVAL, "%s:%d: expected 'key = value', '[section]' or a '#' comment", path, r);
	}
	if (r < 0) {
		clientconfig_clear(&config);
		return error_set(err, EIO, "%s: cannot read the file", path);
	}
	const char *missing = !config.server[0]     ? "[cluster] server"
	                      : !config.identity[0] ? "[user] identity"
	                      : !config.key[0]      ? "[user] key"
	                                            : NULL;
	if (missing) {
		clientconfig_clear(&config);
		return error_set(err, EINVAL, "%s: %s is missing", path, missing);
	}
	*ret_config = config;
	clientconfig_clear(&config);
	return 0;
}

void clientconfig_clear(struct clientconfig *config)
{
	explicit_bzero(config->key, sizeof(config->key));
}

int clientconfig_connect(const char *explicit_path, struct client **ret_client, struct error *err)
{
	char path[CLIENTCONFIG_PATH_MAX];
	struct clientconfig config;
	clientconfig_path(explicit_path, path, sizeof(path));
	int r = clientconfig_load(path, &config, err);
	if (r < 0)
		return r;
	if (log_get_level() > LOG_LEVEL_ERROR)
		log_set_level(LOG_LEVEL_ERROR); /* libcoap's retries and ICMP notes are not the user's business */
	r = client_open(config.server, config.identity, config.key, CLIENTCONFIG_TIMEOUT_MS, NULL, ret_client, err);
	clientconfig_clear(&config);
	if (r == -ETIMEDOUT && err) {
		size_t n = strlen(err->message);
		snprintf(err->message + n, sizeof(err->message) - n, " (check the server address in %s)", path);
	}
	return r;
}
