/* The PSK identities the API server accepts, read from a file of `identity key` lines.
 *
 * The file holds secrets, so it must not be readable by group or others (like ssh's keys);
 * a wider mode is refused with the chmod that fixes it. Keys are printable text and used
 * byte for byte as the DTLS pre-shared key, which is what `coap-client -k` sends.
 */
#ifndef BRAMBLE_AGENT_CREDENTIALS_H
#define BRAMBLE_AGENT_CREDENTIALS_H

#include <stddef.h>
#include <stdint.h>

struct error;

#define CREDENTIALS_MAX_ENTRIES 1024
#define CREDENTIALS_MAX_FILE (256 * 1024)
#define CREDENTIALS_KEY_MIN 16

struct credential {
	char *identity;
	char *key;
};

struct credentials {
	struct credential *entries;
	size_t count;
};

int credentials_load(const char *path, struct credentials *ret_credentials, struct error *err);
void credentials_free(struct credentials *credentials);

/* Adds an identity (or replaces its key): the kubelet's own on a server board. */
int credentials_add(struct credentials *credentials, const char *identity, const char *key, struct error *err);

/* A board's own credential: a file of one 'identity key' line (the [agent] credential),
 * read with the same checks as above. */
int credentials_load_own(const char *path, char **ret_identity, char **ret_key, struct error *err);

/* Writes it: atomically (a crash leaves the old file or the new one, never half of one),
 * mode 0600, a comment line first. */
int credentials_store_own(const char *path, const char *identity, const char *key, const char *comment,
                          struct error *err);

/* transport_psk_lookup_fn: copies the key of identity into key; returns its length. */
int credentials_psk_lookup(const char *identity, uint8_t *key, void *data);

#endif
