/* The client configuration: which cluster to talk to and as whom.
 *
 *   [cluster]
 *   server = coaps://192.0.2.10:5684
 *   [user]
 *   identity = admin
 *   key = ...
 *
 * Found at --config FILE, else $BRAMBLE_CONFIG, else ~/.config/bramble/config. `bramble
 * init` writes the administrator's as DATA/admin.conf. Errors are "file:line: message".
 */
#ifndef BRAMBLE_TOOLS_CLIENTCONFIG_H
#define BRAMBLE_TOOLS_CLIENTCONFIG_H

#include <stddef.h>

struct error;

#define CLIENTCONFIG_MAX_SIZE (64 * 1024)
#define CLIENTCONFIG_PATH_MAX 1024
#define CLIENTCONFIG_VALUE_MAX 256

struct clientconfig {
	char path[CLIENTCONFIG_PATH_MAX]; /* the file it was read from */
	char server[CLIENTCONFIG_VALUE_MAX];
	char identity[CLIENTCONFIG_VALUE_MAX];
	char key[CLIENTCONFIG_VALUE_MAX];
};

/* The file to read: explicit (--config) if not NULL, else $BRAMBLE_CONFIG, else
 * $HOME/.config/bramble/config. */
void clientconfig_path(const char *explicit_path, char *buf, size_t size);

/* Reads and checks the file: every key known, server/identity/key present. */
int clientconfig_load(const char *path, struct clientconfig *ret_config, struct error *err);

struct client;

#define CLIENTCONFIG_TIMEOUT_MS 5000

/* Loads the configuration (explicit_path as in clientconfig_path) and opens a client to
 * its server; a timeout says which file named the address. Quiets libcoap's warnings. */
int clientconfig_connect(const char *explicit_path, struct client **ret_client, struct error *err);

/* `bramble --config FILE VERB ARGS...`: the global flag before a client verb. */

/* Wipes the key. */
void clientconfig_clear(struct clientconfig *config);

#endif
