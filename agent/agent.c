/* `bramble agent`: the daemon every board runs.
 *
 * Start-up: read bramble.conf -> set up logging -> one event loop -> if the board has the
 * server role, open the API endpoint (CoAP over DTLS, identities from the credentials
 * file) -> run until SIGTERM/SIGINT. SIGHUP re-reads the configuration and applies what
 * can change without a restart (log level and target, the server's credentials file, the
 * agent's own credential); the rest is reported as needing one.
 *
 * A server board opens its store (DATA/store.db, Secrets encrypted with DATA/secret.key)
 * and serves the API (core/apiserver.c), and lets boards join with tokens, proving itself
 * with the cluster key DATA/cluster.key (core/bootstrap.c). A board with the agent role runs
 * the kubelet (agent/kubelet.c), which talks to the control plane over CoAP like any other
 * board: on a server board, to its own API server on the same loop, with an identity made up
 * at start; elsewhere with the credential in [agent] credential, which the agent first gets
 * by joining with [agent] token when the file does not exist yet (agent/join.c). SIGHUP also
 * re-reads that file: a rotated credential (bramble agent --rotate-credential) is switched to
 * at once, without touching the pods.
 * Beside it, unless [network] pod-network is off, the board's share of the cluster network
 * (agent/network.c: pod addresses, routes, the Service proxy, cluster DNS), started before
 * the kubelet and stopped after it, once the pods are gone.
 */
#include "agent/agent.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent/build_info.h"
#include "agent/config.h"
#include "agent/credentials.h"
#include "agent/join.h"
#include "agent/kubelet.h"
#include "agent/network.h"
#include "core/apiserver.h"
#include "core/registry.h"
#include "core/bootstrap.h"
#include "core/store.h"
#include "core/transport.h"
#include "platform/file.h"
#include "platform/error.h"
#include "platform/log.h"
#include "platform/loop.h"
#include "platform/memory.h"

#define JOIN_TIMEOUT_MS 5000

struct agent {
	struct config config;
	struct loop *loop;
	struct store *store;
	struct apiserver *apiserver;
	struct registry *registry; /* images pushed to the control plane: DATA/registry */
	struct bootstrap *bootstrap;
	struct bootstrap_cluster_key *cluster_key;
	struct transport *transport;
	struct credentials credentials;
	char *version_json;
	struct kubelet *kubelet;
	struct network *network;
	char *node_identity, *node_key;           /* the kubelet's credential */
	uint8_t cache_key[STORE_SECRET_KEY_SIZE]; /* a server board's pod cache key input */
	bool have_cache_key;
	char *servers[LINK_MAX_SERVERS];
};

/* The key that encrypts Secrets in the store: 32 random bytes in DATA/secret.key (0600),
 * made on first start. Losing it loses the Secrets; it never leaves the board. */
static int load_secret_key(const char *data_dir, uint8_t key[STORE_SECRET_KEY_SIZE], struct error *err)
{
	cleanup_free char *path = xasprintf("%s/secret.key", data_dir);
	struct stat st;
	if (stat(path, &st) == 0) {
		if (st.st_mode & 077)
			return error_set(err, EPERM, "%s is readable by others (mode %04o); run: chmod 600 %s", path,
			                 (unsigned)(st.st_mode & 07777), path);
		cleanup_free char *data = NULL;
		size_t size = 0;
		int r = file_read(path, 64, &data, &size, err);
		if (r < 0)
			return r;
		if (size != STORE_SECRET_KEY_SIZE)
			return error_set(err, EINVAL, "%s is %zu bytes, not %d: restore it from a backup", path, size,
			                 STORE_SECRET_KEY_SIZE);
		memcpy(key, data, STORE_SECRET_KEY_SIZE);
		return 0;
	}
	if (errno != ENOENT)
		return error_set_errno(err, errno, "stat %s", path);
	if (getrandom(key, STORE_SECRET_KEY_SIZE, 0) != STORE_SECRET_KEY_SIZE)
		return error_set_errno(err, errno, "no randomness for %s", path);
	log_info("created %s: back it up, Secrets cannot be read without it", path);
	return file_write_atomic(path, key, STORE_SECRET_KEY_SIZE, 0600, err);
}

/* The cluster key (core/bootstrap.h): DATA/cluster.key, made by `bramble init`, or here
 * for a cluster made before there were cluster keys. */
static int load_cluster_key(const char *data_dir, struct bootstrap_cluster_key **ret_key, struct error *err)
{
	cleanup_free char *path = xasprintf("%s/cluster.key", data_dir);
	cleanup_free char *text = NULL;
	struct stat st;
	int r;
	if (stat(path, &st) == 0) {
		if (st.st_mode & 077)
			return error_set(err, EPERM, "%s is readable by others (mode %04o); run: chmod 600 %s", path,
			                 (unsigned)(st.st_mode & 07777), path);
		r = file_read(path, 4096, &text, NULL, err);
	} else if (errno == ENOENT) {
		r = bootstrap_cluster_key_generate(&text, err);
		if (r == 0)
			r = file_write_atomic(path, text, strlen(text), 0600, err);
		if (r == 0)
			log_info("created the cluster key %s", path);
	} else {
		return error_set_errno(err, errno, "stat %s", path);
	}
	if (r == 0)
		r = bootstrap_cluster_key_parse(text, ret_key, err);
	if (text)
		explicit_bzero(text, strlen(text));
	return r < 0 ? error_prefix(err, "%s", path) : 0;
}

static int start_server(struct agent *agent, struct error *err)
{
	const struct config *config = &agent->config;
	int r = file_mkdir_p(config->data_dir, 0700, err);
	if (r < 0)
		return r;
	r = credentials_load(config->credentials, &agent->credentials, err);
	if (r < 0)
		return r;
	if (agent->credentials.count == 0)
		return error_set(err, EINVAL, "%s lists no identities: nobody could use the API", config->credentials);

	uint8_t key[STORE_SECRET_KEY_SIZE];
	r = load_secret_key(config->data_dir, key, err);
	if (r < 0)
		return r;
	cleanup_free char *store_path = xasprintf("%s/store.db", config->data_dir);
	struct store_options store_options = {
		.path = store_path,
		.secret_key = key,
		.change_log_limit = config->change_log,
		.durable = config->store_sync_full,
	};
	r = store_open(&store_options, &agent->store, err);
	memcpy(agent->cache_key, key, sizeof(key));
	agent->have_cache_key = true;
	explicit_bzero(key, sizeof(key));
	if (r < 0)
		return r;

	r = load_cluster_key(config->data_dir, &agent->cluster_key, err);
	if (r < 0)
		return r;
	r = transport_new(agent->loop, &agent->transport, err);
	if (r < 0)
		return r;

	struct bootstrap_options bootstrap_options = {
		.transport = agent->transport,
		.store = agent->store,
		.cluster_key = agent->cluster_key,
		.fallback = credentials_psk_lookup,
		.fallback_data = &agent->credentials,
	};
	r = bootstrap_new(&bootstrap_options, &agent->bootstrap, err);
	if (r < 0)
		return r;
	transport_set_psk_lookup(agent->transport, bootstrap_psk_lookup, agent->bootstrap);

	struct build_info info;
	build_info_collect(&info);
	agent->version_json = build_info_json(&info);
	cleanup_free char *registry_dir = xasprintf("%s/registry", config->data_dir);
	struct registry_options registry_options = {
		.dir = registry_dir,
		.limit_bytes = config->image_registry_limit,
		.loop = agent->loop,
	};
	r = registry_open(&registry_options, &agent->registry, err);
	if (r < 0)
		return r;
	struct apiserver_options api_options = {
		.registry = agent->registry,
		.max_body_bytes = config->max_request_body,
		.max_list_page = config->max_list_page,
		.max_watches_per_client = config->max_watches_per_client,
		.version_json = agent->version_json,
		.controllers = {
			.node_grace_ms = (uint64_t)config->node_monitor_grace * 1000,
			.eviction_delay_ms = (uint64_t)config->pod_eviction_timeout * 1000,
			.eviction_rate = (double)config->node_eviction_rate / 60.0,
			.unhealthy_percent = (unsigned)config->unhealthy_threshold,
			.job_backoff_ms = (uint64_t)config->job_backoff * 1000,
			.network = {
				.cluster_cidr = config->cluster_cidr,
				.service_cidr = config->service_cidr,
				.node_cidr_mask = (unsigned)config->node_cidr_mask,
				.node_port_min = (unsigned)config->node_port_min,
				.node_port_max = (unsigned)config->node_port_max,
			},
		},
		.on_identity = bootstrap_on_identity,
		.on_identity_data = agent->bootstrap,
	};
	r = apiserver_new(agent->transport, agent->store, &api_options, &agent->apiserver, err);
	if (r < 0)
		return r;
	r = apiserver_bootstrap(agent->apiserver, err);
	if (r < 0)
		return r;
	log_info("cluster hash %s (boards joining with a token check it)",
	         bootstrap_cluster_key_hash(agent->cluster_key));

	r = transport_listen_dtls(agent->transport, config->listen, err);
	if (r < 0)
		return r;
	log_info("API server listening on coaps://%s (%zu identities, store %s at revision %llu)", config->listen,
	         agent->credentials.count, store_path, (unsigned long long)store_revision(agent->store));
	if (config->debug_plain_listen[0]) {
		r = transport_listen_plain_loopback(agent->transport, config->debug_plain_listen, err);
		if (r < 0)
			return r;
		log_warnx("debug: unencrypted CoAP on %s, with admin rights", config->debug_plain_listen);
	}
	return 0;
}

static bool stop_requested(void)
{
	sigset_t pending;
	return sigpending(&pending) == 0 && (sigismember(&pending, SIGTERM) || sigismember(&pending, SIGINT));
}

/* Joins with [agent] token: tries the servers in turn while none answers (back-off up to
 * 30 s, until SIGTERM), stops at the first refusal, which says why. */
static int join_with_token(struct agent *agent, struct error *err)
{
	const struct config *config = &agent->config;
	int r = file_mkdir_p(config->data_dir, 0700, err);
	if (r < 0)
		return r;
	unsigned wait_s = 1;
	for (size_t attempt = 0;; attempt++) {
		const char *server = agent->servers[attempt % LINK_MAX_SERVERS];
		if (!server) {
			attempt = (size_t)-1;
			continue;
		}
		cleanup_free char *identity = NULL;
		char *key = NULL;
		log_info("joining the cluster at %s as node %s", server, config->node_name);
		r = join_cluster(server, config->agent_token, config->node_name, JOIN_TIMEOUT_MS, &identity, &key, err);
		if (r == 0) {
			cleanup_free char *comment = xasprintf("node credential issued by the cluster when %s joined; "
			                                       "rotate: bramble agent --rotate-credential",
			                                       config->node_name);
			r = credentials_store_own(config->agent_credential, identity, key, comment, err);
			explicit_bzero(key, strlen(key));
			free(key);
			if (r < 0)
				return error_prefix(err, "storing the credential");
			log_info("joined as %s; credential stored in %s (the token is no longer needed)", identity,
			         config->agent_credential);
			return 0;
		}
		/* A refusal says why; anything else is the network (not up yet at boot, say). */
		if (r == -EACCES || r == -EKEYREJECTED || r == -EBADMSG || r == -EPERM || r == -EEXIST ||
		    r == -ENOTSUP || r == -EPROTO || r == -EINVAL || r == -ENOENT)
			return error_prefix(err, "cannot join");
		log_warnx("%s; trying again in %u s", err->message, wait_s);
		for (unsigned i = 0; i < wait_s * 10 && !stop_requested(); i++)
			usleep(100 * 1000);
		if (stop_requested())
			return error_set(err, EINTR, "stopped while joining");
		wait_s = wait_s * 2 > 30 ? 30 : wait_s * 2;
	}
}

/* The kubelet's credential: on a server board an identity of its own made up at start
 * (never written anywhere); elsewhere the 'identity key' line of [agent] credential. */
static int node_credential(struct agent *agent, struct error *err)
{
	const struct config *config = &agent->config;
	if (agent->transport) {
		char key[33];
		uint8_t bytes[sizeof(key) - 1];
		static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
		if (getrandom(bytes, sizeof(bytes), 0) != (ssize_t)sizeof(bytes))
			return error_set_errno(err, errno, "no randomness for the node's key");
		for (size_t i = 0; i < sizeof(bytes); i++)
			key[i] = alphabet[bytes[i] % (sizeof(alphabet) - 1)];
		key[sizeof(key) - 1] = '\0';
		agent->node_identity = xasprintf("node:%s", config->node_name);
		agent->node_key = xstrdup(key);
		return credentials_add(&agent->credentials, agent->node_identity, agent->node_key, err);
	}
	struct stat st;
	if (config->agent_token[0] && stat(config->agent_credential, &st) < 0 && errno == ENOENT) {
		int r = join_with_token(agent, err);
		if (r < 0)
			return r;
	} else if (config->agent_token[0]) {
		log_info("%s exists: this board has joined, [agent] token is not used (it may be removed)",
		         config->agent_credential);
	}
	int r = credentials_load_own(config->agent_credential, &agent->node_identity, &agent->node_key, err);
	if (r == -ENOENT && !config->agent_token[0])
		return error_set(
		        err, ENOENT,
		        "[agent] credential %s does not exist: set [agent] token to a join token (bramble token "
		        "create, on the cluster's admin machine) so the board joins and gets one",
		        config->agent_credential);
	if (r < 0)
		return error_prefix(err, "[agent] credential");
	char name[64];
	unsigned long generation;
	if (bootstrap_node_identity(agent->node_identity, name, &generation) == 0 &&
	    strcmp(name, config->node_name) != 0)
		return error_set(
		        err, EINVAL,
		        "[agent] credential %s is node %s's (%s), but this board is node %s: fix [node] name, or "
		        "remove the file and join again with a token",
		        config->agent_credential, name, agent->node_identity, config->node_name);
	return 0;
}

/* [agent] server, or this board's own API server when empty. */
static int agent_servers(struct agent *agent, struct error *err)
{
	const struct config *config = &agent->config;
	size_t count = 0;
	for (const char *p = config->agent_servers; *p && count < LINK_MAX_SERVERS;) {
		p += strspn(p, " \t,");
		size_t n = strcspn(p, ",");
		while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\t'))
			n--;
		if (n == 0)
			break;
		agent->servers[count++] = xstrndup(p, n);
		p += strcspn(p, ",");
	}
	if (count > 0)
		return 0;
	if (!(config->roles & CONFIG_ROLE_SERVER))
		return error_set(err, EINVAL, "[agent] server is empty: name the control plane (coaps://ADDRESS:PORT)");
	/* Our own listener; a wildcard address is reached on loopback. */
	const char *listen = config->listen;
	const char *port = strrchr(listen, ':');
	if (strncmp(listen, "0.0.0.0", 7) == 0)
		agent->servers[0] = xasprintf("coaps://127.0.0.1%s", port ? port : "");
	else if (strncmp(listen, "[::]", 4) == 0)
		agent->servers[0] = xasprintf("coaps://[::1]%s", port ? port : "");
	else if (listen[0] == ':')
		agent->servers[0] = xasprintf("coaps://127.0.0.1%s", listen);
	else
		agent->servers[0] = xasprintf("coaps://%s", listen);
	return 0;
}

static int start_kubelet(struct agent *agent, struct error *err)
{
	int r = agent_servers(agent, err);
	if (r < 0 || (r = node_credential(agent, err)) < 0)
		return r;
	struct kubelet_options options = {
		.loop = agent->loop,
		.config = &agent->config,
		.identity = agent->node_identity,
		.key = agent->node_key,
		.backoff_initial_ms = agent->config.restart_backoff * 1000,
		.cache_key = agent->have_cache_key ? agent->cache_key : NULL,
		.cache_key_length = agent->have_cache_key ? sizeof(agent->cache_key) : 0,
	};
	for (size_t i = 0; i < LINK_MAX_SERVERS; i++)
		options.servers[i] = agent->servers[i];
	if (agent->config.pod_network) {
		struct network_options network = {
			.loop = agent->loop,
			.config = &agent->config,
			.identity = agent->node_identity,
			.key = agent->node_key,
		};
		memcpy(network.servers, options.servers, sizeof(network.servers));
		if ((r = network_new(&network, &agent->network, err)) < 0)
			return r;
		options.network = agent->network;
	}
	return kubelet_new(&options, &agent->kubelet, err);
}

static void on_stop_signal(struct loop *loop, int signo, void *data)
{
	(void)data;
	log_info("received %s, stopping", strsignal(signo));
	loop_stop(loop);
}

static void on_reload_signal(struct loop *loop, int signo, void *data)
{
	(void)loop;
	(void)signo;
	struct agent *agent = data;
	struct config fresh;
	if (config_load(agent->config.path, &fresh, stderr) < 0) {
		log_warnx("reload: %s has errors, keeping the running configuration", agent->config.path);
		config_free(&fresh);
		return;
	}
	log_set_level(fresh.log_level);
	if (agent->kubelet)
		kubelet_reload(agent->kubelet); /* static pod manifests */
	log_setup("bramble", fresh.log_syslog ? LOG_TARGET_SYSLOG : LOG_TARGET_STDERR, fresh.log_level);
	agent->config.log_level = fresh.log_level;
	agent->config.log_syslog = fresh.log_syslog;
	if (agent->transport) {
		struct credentials creds;
		struct error err;
		if (credentials_load(fresh.credentials, &creds, &err) < 0) {
			log_warnx("reload: %s; keeping the current identities", err.message);
		} else {
			if (agent->node_identity &&
			    credentials_add(&creds, agent->node_identity, agent->node_key, &err) < 0)
				log_warnx("reload: %s", err.message);
			credentials_free(&agent->credentials);
			agent->credentials = creds;
			log_info("reload: %zu identities", creds.count);
		}
	}
	if (agent->kubelet && !agent->transport) {
		char *identity = NULL, *key = NULL;
		struct error err;
		if (credentials_load_own(fresh.agent_credential, &identity, &key, &err) < 0) {
			log_warnx("reload: %s; keeping the current credential", err.message);
		} else if (strcmp(identity, agent->node_identity) != 0 || strcmp(key, agent->node_key) != 0) {
			if (kubelet_set_credential(agent->kubelet, identity, key) < 0) {
				log_warnx("reload: cannot use the credential in %s", fresh.agent_credential);
			} else {
				log_info("reload: switched to credential %s", identity);
				free(agent->node_identity);
				explicit_bzero(agent->node_key, strlen(agent->node_key));
				free(agent->node_key);
				agent->node_identity = identity;
				agent->node_key = key;
				identity = key = NULL;
			}
		}
		free(identity);
		if (key)
			explicit_bzero(key, strlen(key));
		free(key);
	}
	if (strcmp(fresh.listen, agent->config.listen) != 0 || fresh.roles != agent->config.roles ||
	    strcmp(fresh.data_dir, agent->config.data_dir) != 0 || strcmp(fresh.labels, agent->config.labels) != 0 ||
	    strcmp(fresh.taints, agent->config.taints) != 0 ||
	    strcmp(fresh.agent_servers, agent->config.agent_servers) != 0)
		log_warnx("reload: changes to roles, data-dir, listen, server, labels or taints take effect after a "
		          "restart");
	config_free(&fresh);
	log_info("configuration reloaded");
}

/* `bramble agent --rotate-credential`: the next generation of this board's credential,
 * stored in place of the current one; the running agent switches to it on SIGHUP and the
 * current one stays accepted until it has. */
static int rotate_credential(const char *config_path)
{
	struct agent agent;
	memset(&agent, 0, sizeof(agent));
	struct error err = { 0 };
	char *identity = NULL, *key = NULL, *new_identity = NULL, *new_key = NULL;
	int r = config_load(config_path, &agent.config, stderr);
	if (r < 0) {
		config_free(&agent.config);
		return 1;
	}
	log_setup("bramble", LOG_TARGET_STDERR, LOG_LEVEL_ERROR);
	if (!(agent.config.roles & CONFIG_ROLE_AGENT) || (agent.config.roles & CONFIG_ROLE_SERVER)) {
		error_set(&err, EINVAL, "only an agent board that joined with a token has a credential to rotate");
		r = -EINVAL;
		goto out;
	}
	if ((r = agent_servers(&agent, &err)) < 0 ||
	    (r = credentials_load_own(agent.config.agent_credential, &identity, &key, &err)) < 0)
		goto out;
	for (size_t i = 0; i < LINK_MAX_SERVERS && agent.servers[i]; i++) {
		r = join_rotate(agent.servers[i], identity, key, JOIN_TIMEOUT_MS, &new_identity, &new_key, &err);
		if (r != -ETIMEDOUT)
			break;
	}
	if (r < 0)
		goto out;
	r = credentials_store_own(agent.config.agent_credential, new_identity, new_key,
	                          "node credential, rotated with bramble agent --rotate-credential", &err);
	if (r < 0)
		goto out;
	printf("%s stored in %s; %s stays accepted until the agent switches to it: send it SIGHUP "
	       "(systemctl reload bramble)\n",
	       new_identity, agent.config.agent_credential, identity);
out:
	if (r < 0)
		fprintf(stderr, "bramble agent --rotate-credential: %s\n", err.message);
	free(identity);
	free(new_identity);
	if (key)
		explicit_bzero(key, strlen(key));
	if (new_key)
		explicit_bzero(new_key, strlen(new_key));
	free(key);
	free(new_key);
	for (size_t i = 0; i < LINK_MAX_SERVERS; i++)
		free(agent.servers[i]);
	config_free(&agent.config);
	return r < 0 ? 1 : 0;
}

static void usage(FILE *out)
{
	fputs("usage: bramble agent [--config FILE]\n"
	      "       bramble agent --rotate-credential [--config FILE]\n"
	      "       bramble agent --check-config FILE\n"
	      "       bramble agent --print-sample-config\n"
	      "\n"
	      "Runs this board's agent (and the control plane when the board has the server role).\n"
	      "  -c, --config FILE        configuration file (default /boot/bramble.conf if present,\n"
	      "                           else /etc/bramble/bramble.conf)\n"
	      "      --check-config FILE  report every error in FILE as file:line: message, or\n"
	      "                           'configuration OK'; exit status 0 only when OK\n"
	      "      --print-sample-config  print a complete commented configuration\n"
	      "      --rotate-credential  get the next credential of this (joined) board from the\n"
	      "                           control plane and store it; SIGHUP makes the agent use it\n",
	      out);
}

static const char *default_config_path(void)
{
	return access("/boot/bramble.conf", R_OK) == 0 ? "/boot/bramble.conf" : "/etc/bramble/bramble.conf";
}

static int check_config(const char *path)
{
	struct config config;
	int r = config_load(path, &config, stderr);
	config_free(&config);
	if (r < 0)
		return 1;
	printf("%s: configuration OK\n", path);
	return 0;
}

int agent_main(int argc, char **argv)
{
	static const struct option long_options[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "check-config", required_argument, NULL, 'C' },
		{ "print-sample-config", no_argument, NULL, 'S' },
		{ "rotate-credential", no_argument, NULL, 'R' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *config_path = NULL;
	int opt, rotate = 0;
	optind = 1;
	while ((opt = getopt_long(argc, argv, "c:h", long_options, NULL)) != -1) {
		switch (opt) {
		case 'c':
			config_path = optarg;
			break;
		case 'C':
			return check_config(optarg);
		case 'S':
			config_write_sample(stdout);
			return 0;
		case 'R':
			rotate = 1;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "bramble agent: unexpected argument '%s'\n", argv[optind]);
		usage(stderr);
		return 2;
	}
	memory_tune_for_daemon();
	if (!config_path)
		config_path = default_config_path();
	if (rotate)
		return rotate_credential(config_path);

	struct agent agent;
	memset(&agent, 0, sizeof(agent));
	if (config_load(config_path, &agent.config, stderr) < 0) {
		config_free(&agent.config);
		return 1;
	}
	log_setup("bramble", agent.config.log_syslog ? LOG_TARGET_SYSLOG : LOG_TARGET_STDERR, agent.config.log_level);
	signal(SIGPIPE, SIG_IGN);

	struct error err = { 0 };
	int r = loop_new(&agent.loop);
	if (r < 0) {
		error_set_errno(&err, -r, "create the event loop");
		goto out;
	}
	loop_add_signal(agent.loop, SIGTERM, on_stop_signal, &agent);
	loop_add_signal(agent.loop, SIGINT, on_stop_signal, &agent);
	loop_add_signal(agent.loop, SIGHUP, on_reload_signal, &agent);

	if (agent.config.roles & CONFIG_ROLE_SERVER) {
		r = start_server(&agent, &err);
		if (r < 0)
			goto out;
	}
	if (agent.config.roles & CONFIG_ROLE_AGENT) {
		r = start_kubelet(&agent, &err);
		if (r < 0)
			goto out;
	}
	log_info("node %s started (roles:%s%s)", agent.config.node_name,
	         agent.config.roles & CONFIG_ROLE_SERVER ? " server" : "",
	         agent.config.roles & CONFIG_ROLE_AGENT ? " agent" : "");
	r = loop_run(agent.loop);
	if (r < 0)
		error_set_errno(&err, -r, "event loop");
out:
	if (r < 0)
		log_errorx("%s", err.message);
	kubelet_free(agent.kubelet);
	network_free(agent.network); /* after the pods: the bridge goes once they are gone */
	apiserver_free(agent.apiserver);
	registry_free(agent.registry);
	transport_free(agent.transport);
	bootstrap_free(agent.bootstrap);
	bootstrap_cluster_key_free(agent.cluster_key);
	store_close(agent.store);
	credentials_free(&agent.credentials);
	free(agent.version_json);
	free(agent.node_identity);
	if (agent.node_key)
		explicit_bzero(agent.node_key, strlen(agent.node_key));
	free(agent.node_key);
	explicit_bzero(agent.cache_key, sizeof(agent.cache_key));
	for (size_t i = 0; i < LINK_MAX_SERVERS; i++)
		free(agent.servers[i]);
	loop_free(agent.loop);
	config_free(&agent.config);
	return r < 0 ? 1 : 0;
}
