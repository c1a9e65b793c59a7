/* `bramble init`: create a new one-server cluster on this board.
 *
 * Writes, in the data directory (default /var/lib/bramble, made 0700):
 *   credentials   the identities the API server accepts; today the admin's (0600)
 *   cluster.key   the cluster key (ECDSA P-256, 0600): the server proves with it to joining
 *                 boards that it is the cluster their token names (core/bootstrap.h)
 *   bramble.conf  this board as server and agent, listening on --listen
 *   admin.conf    what a client needs: server URI, identity "admin", its key (0600)
 * and refuses to overwrite an existing cluster unless --force is given.
 */
#include <errno.h>
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/bootstrap.h"
#include "platform/error.h"
#include "platform/file.h"
#include "platform/memory.h"
#include "tools/verbs.h"

#define INIT_KEY_CHARACTERS 32

/* A printable random key (letters and digits), as coap-client -k takes it. */
static int random_key(char out[INIT_KEY_CHARACTERS + 1], struct error *err)
{
	static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
	uint8_t bytes[INIT_KEY_CHARACTERS];
	if (getrandom(bytes, sizeof(bytes), 0) != (ssize_t)sizeof(bytes))
		return error_set_errno(err, errno, "no randomness for the admin key");
	for (size_t i = 0; i < sizeof(bytes); i++)
		out[i] = alphabet[bytes[i] % (sizeof(alphabet) - 1)]; /* 62 symbols: slight bias, ~190 bits */
	out[INIT_KEY_CHARACTERS] = '\0';
	return 0;
}

static void usage(FILE *out)
{
	fputs("usage: bramble init [--data-dir DIR] [--listen ADDRESS:PORT] [--node-name NAME] [--force]\n"
	      "\n"
	      "Creates a new cluster with this board as its server: credentials, the cluster key\n"
	      "(DIR/cluster.key; boards joining with a token check its hash), DIR/bramble.conf\n"
	      "(start it with: bramble agent --config DIR/bramble.conf) and DIR/admin.conf, the\n"
	      "client configuration of the cluster's administrator.\n"
	      "  --data-dir DIR    default /var/lib/bramble\n"
	      "  --listen ADDRESS  where the API server listens, default 0.0.0.0:5684\n"
	      "  --node-name NAME  this board's node name, default its host name\n"
	      "  --force           replace an existing cluster in DIR (its keys are lost)\n",
	      out);
}

int init_main(int argc, char **argv)
{
	static const struct option long_options[] = {
		{ "data-dir", required_argument, NULL, 'd' },
		{ "listen", required_argument, NULL, 'l' },
		{ "node-name", required_argument, NULL, 'n' },
		{ "force", no_argument, NULL, 'f' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *dir = "/var/lib/bramble", *listen = "0.0.0.0:5684", *node = "";
	int force = 0, opt;
	optind = 1;
	while ((opt = getopt_long(argc, argv, "h", long_options, NULL)) != -1) {
		switch (opt) {
		case 'd':
			dir = optarg;
			break;
		case 'l':
			listen = optarg;
			break;
		case 'n':
			node = optarg;
			break;
		case 'f':
			force = 1;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc || dir[0] != '/') {
		fprintf(stderr, "bramble init: %s\n",
		        optind < argc ? "unexpected argument" : "--data-dir must be absolute");
		usage(stderr);
		return 2;
	}
	struct error err = { 0 };
	cleanup_free char *conf = xasprintf("%s/bramble.conf", dir);
	cleanup_free char *admin = xasprintf("%s/admin.conf", dir);
	cleanup_free char *credentials = xasprintf("%s/credentials", dir);
	cleanup_free char *cluster_key_path = xasprintf("%s/cluster.key", dir);
	if (!force && access(conf, F_OK) == 0) {
		fprintf(stderr, "bramble init: %s exists: a cluster is already set up in %s (--force replaces it)\n",
		        conf, dir);
		return 1;
	}
	char key[INIT_KEY_CHARACTERS + 1] = "";
	cleanup_free char *creds_text = NULL, *conf_text = NULL, *server = NULL, *admin_text = NULL;
	char *cluster_key_text = NULL;
	struct bootstrap_cluster_key *cluster_key = NULL;
	if (file_mkdir_p(dir, 0700, &err) < 0 || chmod(dir, 0700) < 0 || random_key(key, &err) < 0)
		goto fail;
	if (force) {
		/* A new cluster starts from an empty store with a new Secret key. */
		static const char *const old[] = { "store.db", "store.db-wal", "store.db-shm", "secret.key",
			                           "cluster.key" };
		for (size_t i = 0; i < ARRAY_SIZE(old); i++) {
			cleanup_free char *path = xasprintf("%s/%s", dir, old[i]);
			unlink(path);
		}
	}
	creds_text = xasprintf("# identity key (bramble init)\nadmin %s\n", key);
	conf_text = xasprintf("# Written by bramble init; every option: bramble agent --print-sample-config\n"
	                      "[node]\nname = %s\nroles = server, agent\ndata-dir = %s\n\n"
	                      "[server]\nlisten = %s\n",
	                      node, dir, listen);
	/* Clients reach a server listening on every address through loopback. */
	const char *port = strrchr(listen, ':');
	server = strncmp(listen, "0.0.0.0", 7) == 0 || listen[0] == ':'
	                 ? xasprintf("coaps://127.0.0.1%s", port ? port : ":5684")
	         : strncmp(listen, "[::]", 4) == 0 ? xasprintf("coaps://[::1]%s", port ? port : ":5684")
	                                           : xasprintf("coaps://%s", listen);
	admin_text = xasprintf("# Bramble client configuration (bramble init)\n"
	                       "[cluster]\nserver = %s\n\n[user]\nidentity = admin\nkey = %s\n",
	                       server, key);
	if (bootstrap_cluster_key_generate(&cluster_key_text, &err) < 0 ||
	    bootstrap_cluster_key_parse(cluster_key_text, &cluster_key, &err) < 0 ||
	    file_write_atomic(cluster_key_path, cluster_key_text, strlen(cluster_key_text), 0600, &err) < 0 ||
	    file_write_atomic(credentials, creds_text, strlen(creds_text), 0600, &err) < 0 ||
	    file_write_atomic(admin, admin_text, strlen(admin_text), 0600, &err) < 0 ||
	    file_write_atomic(conf, conf_text, strlen(conf_text), 0644, &err) < 0)
		goto fail;
	explicit_bzero(key, sizeof(key));
	explicit_bzero(cluster_key_text, strlen(cluster_key_text));
	free(cluster_key_text);
	printf("Created a cluster in %s\n"
	       "  start the server:  bramble agent --config %s\n"
	       "  admin client:      %s (identity admin; keep it secret)\n"
	       "  cluster hash:      %s\n"
	       "  join a board:      bramble token create, then [agent] token = ... in its bramble.conf\n",
	       dir, conf, admin, bootstrap_cluster_key_hash(cluster_key));
	bootstrap_cluster_key_free(cluster_key);
	return 0;
fail:
	explicit_bzero(key, sizeof(key));
	if (cluster_key_text)
		explicit_bzero(cluster_key_text, strlen(cluster_key_text));
	free(cluster_key_text);
	bootstrap_cluster_key_free(cluster_key);
	fprintf(stderr, "bramble init: %s\n", err.message);
	return 1;
}
