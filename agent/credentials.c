#include "agent/credentials.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "core/transport.h"
#include "platform/error.h"
#include "platform/file.h"
#include "platform/memory.h"

static int printable(const char *s)
{
	for (; *s; s++)
		if (*s <= ' ' || *s > '~')
			return 0;
	return 1;
}

int credentials_load(const char *path, struct credentials *ret_credentials, struct error *err)
{
	struct stat st;
	if (stat(path, &st) < 0)
		return error_set_errno(err, errno, "credentials file %s", path);
	if (st.st_mode & 077)
		return error_set(err, EPERM, "credentials file %s is readable by others (mode %04o); run: chmod 600 %s",
		                 path, (unsigned)(st.st_mode & 07777), path);
	cleanup_free char *data = NULL;
	int r = file_read(path, CREDENTIALS_MAX_FILE, &data, NULL, err);
	if (r < 0)
		return r;

	struct credentials c = { 0 };
	int line = 0;
	char *save = NULL;
	for (char *text = strtok_r(data, "\n", &save); text; text = strtok_r(NULL, "\n", &save)) {
		line++;
		char *identity = text + strspn(text, " \t");
		if (*identity == '#' || *identity == '\0' || *identity == '\r')
			continue;
		char *end = identity + strcspn(identity, " \t");
		char *key = end + strspn(end, " \t");
		char *key_end = key + strcspn(key, " \t\r");
		*end = '\0';
		if (*key_end)
			*key_end++ = '\0';
		key_end += strspn(key_end, " \t\r");
		const char *problem = NULL;
		if (*key == '\0')
			problem = "expected 'identity key'";
		else if (*key_end != '\0' && *key_end != '#')
			problem = "unexpected text after the key";
		else if (strlen(identity) > TRANSPORT_PSK_IDENTITY_MAX || !printable(identity))
			problem = "identity must be printable, without spaces, at most 128 bytes";
		else if (strlen(key) < CREDENTIALS_KEY_MIN || strlen(key) > TRANSPORT_PSK_KEY_MAX || !printable(key))
			problem = "key must be 16 to 64 printable characters";
		else if (c.count == CREDENTIALS_MAX_ENTRIES)
			problem = "too many identities (limit 1024)";
		if (problem) {
			credentials_free(&c);
			return error_set(err, EINVAL, "%s:%d: %s", path, line, problem);
		}
		for (size_t i = 0; i < c.count; i++) {
			if (strcmp(c.entries[i].identity, identity) == 0) {
				credentials_free(&c);
				return error_set(err, EINVAL, "%s:%d: identity '%s' appears twice", path, line,
				                 identity);
			}
		}
		c.entries = xrealloc(c.entries, (c.count + 1) * sizeof(*c.entries));
		c.entries[c.count].identity = xstrdup(identity);
		c.entries[c.count].key = xstrdup(key);
		c.count++;
	}
	*ret_credentials = c;
	return 0;
}

void credentials_free(struct credentials *credentials)
{
	if (!credentials)
		return;
	for (size_t i = 0; i < credentials->count; i++) {
		free(credentials->entries[i].identity);
		explicit_bzero(credentials->entries[i].key, strlen(credentials->entries[i].key));
		free(credentials->entries[i].key);
	}
	free(credentials->entries);
	credentials->entries = NULL;
	credentials->count = 0;
}

int credentials_psk_lookup(const char *identity, uint8_t *key, void *data)
{
	const struct credentials *c = data;
	for (size_t i = 0; i < c->count; i++) {
		if (strcmp(c->entries[i].identity, identity) == 0) {
			size_t len = strlen(c->entries[i].key);
			memcpy(key, c->entries[i].key, len);
			return (int)len;
		}
	}
	return -ENOENT;
}

int credentials_add(struct credentials *credentials, const char *identity, const char *key, struct error *err)
{
	for (size_t i = 0; i < credentials->count; i++) {
		if (strcmp(credentials->entries[i].identity, identity) == 0) {
			/* The board's own kubelet identity wins over a line in the file. */
			explicit_bzero(credentials->entries[i].key, strlen(credentials->entries[i].key));
			free(credentials->entries[i].key);
			credentials->entries[i].key = xstrdup(key);
			return 0;
		}
	}
	if (credentials->count == CREDENTIALS_MAX_ENTRIES)
		return error_set(err, ENOSPC, "too many identities (limit %d)", CREDENTIALS_MAX_ENTRIES);
	credentials->entries = xrealloc(credentials->entries, (credentials->count + 1) * sizeof(*credentials->entries));
	credentials->entries[credentials->count].identity = xstrdup(identity);
	credentials->entries[credentials->count].key = xstrdup(key);
	credentials->count++;
	return 0;
}

int credentials_load_own(const char *path, char **ret_identity, char **ret_key, struct error *err)
{
	struct credentials file;
	int r = credentials_load(path, &file, err);
	if (r < 0)
		return r;
	if (file.count != 1) {
		credentials_free(&file);
		return error_set(err, EINVAL, "%s: expected one 'identity key' line, found %zu", path, file.count);
	}
	*ret_identity = xstrdup(file.entries[0].identity);
	*ret_key = xstrdup(file.entries[0].key);
	credentials_free(&file);
	return 0;
}

int credentials_store_own(const char *path, const char *identity, const char *key, const char *comment,
                          struct error *err)
{
	if (!printable(identity) || !printable(key) || strlen(key) < CREDENTIALS_KEY_MIN ||
	    strlen(key) > TRANSPORT_PSK_KEY_MAX || strlen(identity) > TRANSPORT_PSK_IDENTITY_MAX)
		return error_set(err, EINVAL, "not a credential: identity '%.40s', or a key of %zu characters",
		                 identity, strlen(key));
	cleanup_free char *text = xasprintf("# %s\n%s %s\n", comment, identity, key);
	int r = file_write_atomic(path, text, strlen(text), 0600, err);
	explicit_bzero(text, strlen(text));
	return r;
}
