/* See config.h. The table below is the single source of truth for options: loading,
 * defaults, validation and the sample file all read it (Redis's config.c does the same). */
#include "agent/config.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define INI_HANDLER_LINENO 1
#include <ini.h>

#include "agent/node.h"
#include "core/bootstrap.h"
#include "core/ipalloc.h"
#include "platform/error.h"
#include "platform/memory.h"

enum option_type {
	OPTION_STRING,
	OPTION_PATH,
	OPTION_ADDRESS,
	OPTION_ROLES,
	OPTION_LOG_LEVEL,
	OPTION_SWITCH, /* one of two words: off_word (false) or on_word (true) */
	OPTION_COUNT,  /* a whole number within [min, max] */
	OPTION_SIZE,   /* bytes, with an optional K or M suffix, within [min, max] */
};

struct option {
	const char *section;
	const char *key;
	enum option_type type;
	size_t offset;
	const char *default_value;
	const char *help;
	unsigned long min, max;
	const char *off_word, *on_word; /* OPTION_SWITCH */
};

#define FIELD(f) offsetof(struct config, f)

static const struct option options[] = {
	{ .section = "node",
	  .key = "name",
	  .type = OPTION_STRING,
	  .offset = FIELD(node_name),
	  .default_value = "",
	  .help = ("This board's node name: lowercase letters, digits and '-'. Empty: the host name.") },
	{ .section = "node",
	  .key = "roles",
	  .type = OPTION_ROLES,
	  .offset = FIELD(roles),
	  .default_value = "agent",
	  .help = ("What this board does: 'agent' (runs pods), 'server' (hosts the control plane), or\n"
	           "'server, agent' for both.") },
	{ .section = "node",
	  .key = "data-dir",
	  .type = OPTION_PATH,
	  .offset = FIELD(data_dir),
	  .default_value = "/var/lib/bramble",
	  .help = ("Where Bramble keeps its state (store, credentials, images, container logs, and the pod\n"
	           "cache podcache.db: the pods bound here and their ConfigMaps and Secrets, Secrets\n"
	           "encrypted, written only when they change; what the agent runs with no control plane).") },
	{ .section = "server",
	  .key = "listen",
	  .type = OPTION_ADDRESS,
	  .offset = FIELD(listen),
	  .default_value = "0.0.0.0:5684",
	  .help = ("Address and UDP port of the API server (CoAP over DTLS). IPv6: [::]:5684.") },
	{ .section = "server",
	  .key = "credentials",
	  .type = OPTION_PATH,
	  .offset = FIELD(credentials),
	  .default_value = "",
	  .help = ("File of PSK identities the API server accepts, one 'identity key' pair per line,\n"
	           "mode 0600. Empty: <data-dir>/credentials.") },
	{ .section = "server",
	  .key = "debug-plain-listen",
	  .type = OPTION_ADDRESS,
	  .offset = FIELD(debug_plain_listen),
	  .default_value = "",
	  .help = ("For debugging only: also answer unencrypted CoAP on this address, which must be a\n"
	           "loopback address (127.0.0.1:5683). Empty: off.") },
	{ .section = "server",
	  .key = "max-request-body",
	  .type = OPTION_SIZE,
	  .offset = FIELD(max_request_body),
	  .default_value = "1M",
	  .min = 1024,
	  .max = 64ul * 1024 * 1024,
	  .help = ("Largest request body the API server accepts (K and M suffixes); larger ones get 4.13.") },
	{ .section = "server",
	  .key = "max-list-page",
	  .type = OPTION_COUNT,
	  .offset = FIELD(max_list_page),
	  .default_value = "500",
	  .min = 1,
	  .max = 100000,
	  .help = ("Most objects in one list answer; clients page through the rest with 'continue'.") },
	{ .section = "server",
	  .key = "max-watches-per-client",
	  .type = OPTION_COUNT,
	  .offset = FIELD(max_watches_per_client),
	  .default_value = "64",
	  .min = 1,
	  .max = 10000,
	  .help = ("Most watches (CoAP Observe registrations) one client session may hold; more get 4.29.") },
	{ .section = "server",
	  .key = "change-log",
	  .type = OPTION_COUNT,
	  .offset = FIELD(change_log),
	  .default_value = "10000",
	  .min = 100,
	  .max = 10000000,
	  .help = ("Changes kept for watches to resume from; a client further behind must re-list.") },
	{ .section = "server",
	  .key = "store-sync",
	  .type = OPTION_SWITCH,
	  .offset = FIELD(store_sync_full),
	  .default_value = "full",
	  .off_word = "normal",
	  .on_word = "full",
	  .help = ("'full': every acknowledged write survives power loss (an fsync per group of writes).\n"
	           "'normal': it survives a crash of Bramble but maybe not of the board; fewer SD card writes.") },
	{ .section = "server",
	  .key = "node-monitor-grace",
	  .type = OPTION_COUNT,
	  .offset = FIELD(node_monitor_grace),
	  .default_value = "12",
	  .min = 2,
	  .max = 3600,
	  .help = ("Seconds without a heartbeat after which a Node is marked Ready=Unknown and tainted\n"
	           "node.kubernetes.io/unreachable (Kubernetes: 40). Keep it above 2 x the agents'\n"
	           "node-status-interval.") },
	{ .section = "server",
	  .key = "pod-eviction-timeout",
	  .type = OPTION_COUNT,
	  .offset = FIELD(pod_eviction_timeout),
	  .default_value = "5",
	  .min = 1,
	  .max = 86400,
	  .help = ("Seconds a pod stays on an unreachable or not-ready Node before it is evicted and\n"
	           "replaced elsewhere, unless its own tolerations say otherwise: the tolerationSeconds\n"
	           "every pod gets by default (Kubernetes: 300).") },
	{ .section = "server",
	  .key = "node-eviction-rate",
	  .type = OPTION_COUNT,
	  .offset = FIELD(node_eviction_rate),
	  .default_value = "60",
	  .min = 1,
	  .max = 60000,
	  .help = ("Nodes per minute whose pods may start being evicted (Kubernetes: 6).") },
	{ .section = "server",
	  .key = "unhealthy-threshold",
	  .type = OPTION_COUNT,
	  .offset = FIELD(unhealthy_threshold),
	  .default_value = "55",
	  .min = 1,
	  .max = 100,
	  .help = ("When at least this percentage of the Nodes is not Ready at once, nothing is evicted:\n"
	           "the control plane is most likely the one cut off.") },
	{ .section = "server",
	  .key = "job-backoff",
	  .type = OPTION_COUNT,
	  .offset = FIELD(job_backoff),
	  .default_value = "1",
	  .min = 1,
	  .max = 360,
	  .help = ("Seconds before a failed Job pod is replaced; doubles with each failure, at most 6\n"
	           "minutes (Kubernetes: 10).") },
	{ .section = "server",
	  .key = "image-registry-limit",
	  .type = OPTION_SIZE,
	  .offset = FIELD(image_registry_limit),
	  .default_value = "0",
	  .max = 4095ul * 1024 * 1024,
	  .help = ("Most bytes of images the control plane keeps for the cluster (`bramble image push`,\n"
	           "in <data-dir>/registry; K and M suffixes); a push beyond it gets 4.13. 0: no limit.") },
	{ .section = "agent",
	  .key = "server",
	  .type = OPTION_STRING,
	  .offset = FIELD(agent_servers),
	  .default_value = "",
	  .help = ("The control plane this board's agent talks to: one or more coaps://ADDRESS:PORT,\n"
	           "comma-separated, tried in turn. Empty: this board's own API server (roles = server, agent).") },
	{ .section = "agent",
	  .key = "credential",
	  .type = OPTION_PATH,
	  .offset = FIELD(agent_credential),
	  .default_value = "",
	  .help = ("File with this node's 'identity key' line (identity node:<name>), mode 0600.\n"
	           "Empty: <data-dir>/node-credential. Not needed on a server board. Written by the\n"
	           "agent when it joins with a token.") },
	{ .section = "agent",
	  .key = "token",
	  .type = OPTION_STRING,
	  .offset = FIELD(agent_token),
	  .default_value = "",
	  .help = ("A join token from `bramble token create` (<id>.<secret>:sha256:<cluster hash>). When\n"
	           "the credential file does not exist yet, the agent joins the cluster at 'server' with\n"
	           "it: checks the server holds the cluster key the hash names, gets its own credential\n"
	           "and stores it in the credential file, which it uses from then on (the token is not\n"
	           "needed afterwards and may be removed). Empty: no joining.") },
	{ .section = "agent",
	  .key = "labels",
	  .type = OPTION_STRING,
	  .offset = FIELD(labels),
	  .default_value = "",
	  .help = ("Labels of this Node, as the kubelet's --node-labels: key=value,key=value.") },
	{ .section = "agent",
	  .key = "taints",
	  .type = OPTION_STRING,
	  .offset = FIELD(taints),
	  .default_value = "",
	  .help = ("Taints of this Node at registration, as --register-with-taints: key=value:Effect,...") },
	{ .section = "agent",
	  .key = "max-pods",
	  .type = OPTION_COUNT,
	  .offset = FIELD(max_pods),
	  .default_value = "110",
	  .min = 1,
	  .max = 1000,
	  .help = ("Most pods this board runs (the Node's pods capacity).") },
	{ .section = "agent",
	  .key = "reserved-cpu-millicores",
	  .type = OPTION_COUNT,
	  .offset = FIELD(reserved_cpu_millicores),
	  .default_value = "0",
	  .max = 1024000,
	  .help = ("CPU kept back from pods for the system and Bramble, in millicores (1000 = one core).") },
	{ .section = "agent",
	  .key = "reserved-memory",
	  .type = OPTION_SIZE,
	  .offset = FIELD(reserved_memory),
	  .default_value = "0",
	  .max = 4095ul * 1024 * 1024,
	  .help = ("Memory kept back from pods for the system and Bramble (K and M suffixes).") },
	{ .section = "agent",
	  .key = "cgroup-parent",
	  .type = OPTION_STRING,
	  .offset = FIELD(cgroup_parent),
	  .default_value = "bramble",
	  .help = ("The cgroup under which each pod gets pod-<uid>, with one cgroup per container below.") },
	{ .section = "agent",
	  .key = "node-status-interval",
	  .type = OPTION_COUNT,
	  .offset = FIELD(node_status_interval),
	  .default_value = "4",
	  .min = 1,
	  .max = 300,
	  .help = ("Seconds between the Node's heartbeats (kept in memory by the control plane); the\n"
	           "server's node-monitor-grace must be well above it.") },
	{ .section = "agent",
	  .key = "static-pods",
	  .type = OPTION_PATH,
	  .offset = FIELD(static_pods),
	  .default_value = "",
	  .help = ("A directory of pod manifests (*.yaml, *.yml, *.json) run at boot without any control\n"
	           "plane, each as pod <name>-<node name>, and shown as mirror pods when it is reachable.\n"
	           "A bad manifest is logged with its file and field and left out. Changes are picked up\n"
	           "as they happen (inotify) and on SIGHUP.\n"
	           "Static pods may not use ConfigMaps or Secrets. Empty: none.") },
	{ .section = "agent",
	  .key = "state-dir",
	  .type = OPTION_PATH,
	  .offset = FIELD(state_dir),
	  .default_value = "/run/bramble",
	  .help = ("Where running pods keep their namespaces, root filesystems and runtime state\n"
	           "(tmpfs: gone after a reboot, which the agent notices and starts the pods again).\n"
	           "Pods outlive the agent: a restarted agent adopts the containers it finds here.") },
	{ .section = "agent",
	  .key = "image-store-limit",
	  .type = OPTION_SIZE,
	  .offset = FIELD(image_store_limit),
	  .default_value = "0",
	  .max = 4095ul * 1024 * 1024,
	  .help = ("Most bytes of images kept on this board (K and M suffixes); 0: no limit.") },
	{ .section = "agent",
	  .key = "restart-backoff",
	  .type = OPTION_COUNT,
	  .offset = FIELD(restart_backoff),
	  .default_value = "10",
	  .min = 1,
	  .max = 300,
	  .help = ("Seconds before a crashing container is started again the second time; the wait\n"
	           "doubles with each crash up to 300 s (CrashLoopBackOff), as in Kubernetes.") },
	{ .section = "network",
	  .key = "pod-network",
	  .type = OPTION_SWITCH,
	  .offset = FIELD(pod_network),
	  .default_value = "on",
	  .off_word = "off",
	  .on_word = "on",
	  .help = ("'on': pods get an address from this node's pod CIDR on a bridge, Services are\n"
	           "served by the proxy and cluster DNS answers on the bridge. 'off': only hostNetwork\n"
	           "pods get an address (a board that runs another network, or tests).") },
	{ .section = "network",
	  .key = "cluster-cidr",
	  .type = OPTION_STRING,
	  .offset = FIELD(cluster_cidr),
	  .default_value = "10.42.0.0/16",
	  .help = ("Pod addresses of the whole cluster; each node gets a block of it (node-cidr-mask).\n"
	           "The same on every board: the control plane hands it out, agents route and NAT by it.") },
	{ .section = "network",
	  .key = "service-cidr",
	  .type = OPTION_STRING,
	  .offset = FIELD(service_cidr),
	  .default_value = "10.43.0.0/16",
	  .help = ("Virtual addresses of Services (ClusterIPs), /12 to /30; must not overlap cluster-cidr.") },
	{ .section = "network",
	  .key = "node-cidr-mask",
	  .type = OPTION_COUNT,
	  .offset = FIELD(node_cidr_mask),
	  .default_value = "24",
	  .min = 8,
	  .max = 29,
	  .help = ("Prefix length of each node's pod CIDR (24: 253 pods per node, 256 nodes in a /16).") },
	{ .section = "network",
	  .key = "node-port-range",
	  .type = OPTION_STRING,
	  .offset = FIELD(node_port_range),
	  .default_value = "30000-32767",
	  .help = ("Ports NodePort Services are given, as FIRST-LAST.") },
	{ .section = "network",
	  .key = "cluster-domain",
	  .type = OPTION_STRING,
	  .offset = FIELD(cluster_domain),
	  .default_value = "cluster.local",
	  .help = ("The DNS domain of Services: <service>.<namespace>.svc.<cluster-domain>.") },
	{ .section = "network",
	  .key = "bridge",
	  .type = OPTION_STRING,
	  .offset = FIELD(bridge),
	  .default_value = "bramble0",
	  .help = ("The bridge pods are attached to; it holds the first address of the node's pod CIDR,\n"
	           "where cluster DNS answers.") },
	{ .section = "network",
	  .key = "proxy-mode",
	  .type = OPTION_STRING,
	  .offset = FIELD(proxy_mode),
	  .default_value = "auto",
	  .help = ("How Services are served: 'nftables' (in the kernel), 'userspace' (relays in the agent,\n"
	           "for kernels without nf_tables) or 'auto' (nftables when it works).") },
	{ .section = "log",
	  .key = "level",
	  .type = OPTION_LOG_LEVEL,
	  .offset = FIELD(log_level),
	  .default_value = "info",
	  .help = ("error, warn, info or debug.") },
	{ .section = "log",
	  .key = "target",
	  .type = OPTION_SWITCH,
	  .offset = FIELD(log_syslog),
	  .default_value = "stderr",
	  .off_word = "stderr",
	  .on_word = "syslog",
	  .help = ("'stderr' (for systemd's journal or a terminal) or 'syslog'.") },
};

struct load_state {
	struct config *config;
	FILE *errors;
	const char *path;
	int error_count;
	unsigned char seen[ARRAY_SIZE(options)];
	int lines[ARRAY_SIZE(options)];
};

static void report(struct load_state *state, int line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void report(struct load_state *state, int line, const char *fmt, ...)
{
	state->error_count++;
	if (!state->errors || state->error_count > CONFIG_MAX_ERRORS)
		return;
	if (line > 0)
		fprintf(state->errors, "%s:%d: ", state->path, line);
	else
		fprintf(state->errors, "%s: ", state->path);
	va_list ap;
	va_start(ap, fmt);
	vfprintf(state->errors, fmt, ap);
	va_end(ap);
	fputc('\n', state->errors);
}

static int parse_roles(const char *value, int *ret_roles, struct error *err)
{
	int roles = 0;
	char buf[64];
	if (strlen(value) >= sizeof(buf))
		return error_set(err, EINVAL, "roles: too long");
	strcpy(buf, value);
	char *save = NULL;
	for (char *word = strtok_r(buf, ", \t", &save); word; word = strtok_r(NULL, ", \t", &save)) {
		if (strcmp(word, "agent") == 0)
			roles |= CONFIG_ROLE_AGENT;
		else if (strcmp(word, "server") == 0)
			roles |= CONFIG_ROLE_SERVER;
		else
			return error_set(err, EINVAL, "unknown role '%s' (expected 'agent' and/or 'server')", word);
	}
	if (!roles)
		return error_set(err, EINVAL, "at least one role is needed: 'agent', 'server' or 'server, agent'");
	*ret_roles = roles;
	return 0;
}

static int valid_node_name(const char *s)
{
	size_t n = strlen(s);
	if (n == 0)
		return 1; /* the host name is used */
	if (n > 63 || s[0] == '-' || s[n - 1] == '-')
		return 0;
	for (const char *p = s; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-'))
			return 0;
	return 1;
}

/* "coaps://192.0.2.1:5684, coaps://192.0.2.2" */
static int check_servers(const char *value, struct error *err)
{
	size_t count = 0;
	for (const char *p = value; *p;) {
		p += strspn(p, " \t,");
		size_t n = strcspn(p, ",");
		while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\t'))
			n--;
		if (n == 0)
			break;
		if (strncmp(p, "coaps://", 8) != 0 || n == 8)
			return error_set(err, EINVAL, "'%.*s' is not a server address: write coaps://192.0.2.1:5684",
			                 (int)n, p);
		if (++count > 8)
			return error_set(err, EINVAL, "more than 8 servers");
		p += strcspn(p, ",");
	}
	return 0;
}

/* "30000-32767" */
static int parse_port_range(const char *value, unsigned long *ret_min, unsigned long *ret_max, struct error *err)
{
	char *end;
	unsigned long low = strtoul(value, &end, 10), high = 0;
	bool ok = end != value && *end == '-' && value[0] != '-';
	if (ok) {
		const char *second = end + 1;
		high = strtoul(second, &end, 10);
		ok = end != second && *end == '\0' && second[0] != '-';
	}
	if (!ok || low < 1 || high > 65535 || low > high)
		return error_set(err, EINVAL, "'%s' is not a port range: write FIRST-LAST, within 1-65535", value);
	*ret_min = low;
	*ret_max = high;
	return 0;
}

/* Parses one value into the config; the error message names what is wrong with it. */
static int option_set(const struct option *o, struct config *config, const char *value, struct error *err)
{
	void *field = (char *)config + o->offset;
	switch (o->type) {
	case OPTION_STRING:
		if (o->offset == FIELD(labels) && node_check_labels(value, err) < 0)
			return -EINVAL;
		if (o->offset == FIELD(taints) && node_check_taints(value, err) < 0)
			return -EINVAL;
		if (o->offset == FIELD(agent_servers) && check_servers(value, err) < 0)
			return -EINVAL;
		if (o->offset == FIELD(agent_token) && value[0]) {
			struct bootstrap_token token;
			if (bootstrap_token_parse(value, true, &token, err) < 0)
				return -EINVAL;
			explicit_bzero(&token, sizeof(token));
		}
		if ((o->offset == FIELD(cluster_cidr) || o->offset == FIELD(service_cidr)) &&
		    ipalloc_parse_cidr(value, &(uint32_t){ 0 }, &(unsigned){ 0 }, err) < 0)
			return -EINVAL;
		if (o->offset == FIELD(node_port_range) &&
		    parse_port_range(value, &config->node_port_min, &config->node_port_max, err) < 0)
			return -EINVAL;
		if (o->offset == FIELD(proxy_mode) && strcmp(value, "auto") != 0 && strcmp(value, "nftables") != 0 &&
		    strcmp(value, "userspace") != 0)
			return error_set(err, EINVAL, "unknown proxy mode '%s' (auto, nftables, userspace)", value);
		if ((o->offset == FIELD(bridge) &&
		     (value[0] == '\0' || strlen(value) > 15 || strchr(value, '/') || strchr(value, ' '))))
			return error_set(err, EINVAL, "'%s' is not a link name: 1 to 15 characters, no '/' or space",
			                 value);
		if (o->offset == FIELD(node_name) && !valid_node_name(value))
			return error_set(err, EINVAL,
			                 "'%s' is not a valid node name: up to 63 lowercase letters, digits "
			                 "and '-', starting and ending with a letter or digit",
			                 value);
		break;
	case OPTION_PATH:
		if (value[0] != '\0' && value[0] != '/')
			return error_set(err, EINVAL, "'%s' must be an absolute path", value);
		break;
	case OPTION_ADDRESS:
		if (value[0] != '\0' && strspn(value, "0123456789abcdefABCDEF.:[]") != strlen(value))
			return error_set(err, EINVAL, "'%s' is not an address: write 192.0.2.1:5684 or [::1]:5684",
			                 value);
		break;
	case OPTION_ROLES:
		return parse_roles(value, field, err);
	case OPTION_LOG_LEVEL:
		if (log_level_from_name(value, field) < 0)
			return error_set(err, EINVAL, "unknown log level '%s' (error, warn, info, debug)", value);
		return 0;
	case OPTION_COUNT:
	case OPTION_SIZE: {
		char *end;
		errno = 0;
		unsigned long n = strtoul(value, &end, 10);
		if (errno || end == value || value[0] == '-')
			return error_set(err, EINVAL, "'%s' is not a whole number", value);
		if (o->type == OPTION_SIZE && (*end == 'K' || *end == 'k'))
			n *= 1024, end++;
		else if (o->type == OPTION_SIZE && *end == 'M')
			n *= 1024 * 1024, end++;
		if (*end != '\0')
			return error_set(err, EINVAL, "'%s': unexpected '%s'%s", value, end,
			                 o->type == OPTION_SIZE ? " (sizes take K or M)" : "");
		if (n < o->min || n > o->max)
			return error_set(err, EINVAL, "%lu is out of range (%lu to %lu)", n, o->min, o->max);
		*(unsigned long *)field = n;
		return 0;
	}
	case OPTION_SWITCH:
		if (strcmp(value, o->off_word) != 0 && strcmp(value, o->on_word) != 0)
			return error_set(err, EINVAL, "unknown value '%s' (%s, %s)", value, o->off_word, o->on_word);
		*(bool *)field = strcmp(value, o->on_word) == 0;
		return 0;
	}
	char **s = field;
	free(*s);
	*s = xstrdup(value);
	return 0;
}

static int on_ini_entry(void *user, const char *section, const char *key, const char *value, int line)
{
	struct load_state *state = user;
	if (!key)
		return 1; /* a section header alone */
	int section_known = 0;
	for (size_t i = 0; i < ARRAY_SIZE(options); i++) {
		if (strcmp(options[i].section, section) != 0)
			continue;
		section_known = 1;
		if (strcmp(options[i].key, key) != 0)
			continue;
		if (state->seen[i])
			report(state, line, "%s.%s is set twice", section, key);
		state->seen[i] = 1;
		state->lines[i] = line;
		struct error err;
		if (option_set(&options[i], state->config, value, &err) < 0)
			report(state, line, "%s.%s: %s", section, key, err.message);
		return 1;
	}
	if (section[0] == '\0')
		report(state, line,
		       "'%s' is outside any section; put it under [node], [server], [agent], [network] or [log]", key);
	else if (!section_known)
		report(state, line, "unknown section [%s]", section);
	else
		report(state, line, "unknown key '%s' in [%s]", key, section);
	return 1;
}

void config_defaults(struct config *config)
{
	memset(config, 0, sizeof(*config));
	for (size_t i = 0; i < ARRAY_SIZE(options); i++) {
		int r = option_set(&options[i], config, options[i].default_value, NULL);
		(void)r; /* defaults are valid by construction; test_config checks it */
	}
}

static void resolve_derived(struct config *config)
{
	if (config->node_name[0] == '\0') {
		char host[256] = "";
		gethostname(host, sizeof(host) - 1);
		for (char *p = host; *p; p++)
			if (*p >= 'A' && *p <= 'Z')
				*p = (char)(*p - 'A' + 'a');
		free(config->node_name);
		config->node_name = xstrdup(host[0] ? host : "bramble");
	}
	if (config->credentials[0] == '\0') {
		free(config->credentials);
		config->credentials = xasprintf("%s/credentials", config->data_dir);
	}
	if (config->agent_credential[0] == '\0') {
		free(config->agent_credential);
		config->agent_credential = xasprintf("%s/node-credential", config->data_dir);
	}
}

/* The network options as a whole (overlapping CIDRs, a mask that does not fit), reported at
 * the line of the last of them the file sets. */
static void check_network(struct load_state *state)
{
	const struct config *config = state->config;
	struct ipalloc_config network = {
		.cluster_cidr = config->cluster_cidr,
		.service_cidr = config->service_cidr,
		.node_cidr_mask = (unsigned)config->node_cidr_mask,
		.node_port_min = (unsigned)config->node_port_min,
		.node_port_max = (unsigned)config->node_port_max,
	};
	struct error err;
	if (ipalloc_check_config(&network, &err) == 0)
		return;
	int line = 0;
	for (size_t i = 0; i < ARRAY_SIZE(options); i++)
		if (strcmp(options[i].section, "network") == 0 && state->lines[i] > line)
			line = state->lines[i];
	report(state, line, "network: %s", err.message);
}

int config_load(const char *path, struct config *config, FILE *errors)
{
	config_defaults(config);
	config->path = xstrdup(path);
	struct load_state state = { .config = config, .errors = errors, .path = path };
	FILE *f = fopen(path, "re");
	if (!f) {
		if (errors)
			fprintf(errors, "%s: cannot open: %s\n", path, strerror(errno));
		return -ENOENT;
	}
	fseek(f, 0, SEEK_END);
	long size = ftell(f);
	rewind(f);
	if (size > CONFIG_MAX_SIZE) {
		report(&state, 0, "%ld bytes is larger than the limit of %d", size, CONFIG_MAX_SIZE);
		fclose(f);
		return -EFBIG;
	}
	int r = ini_parse_file(f, on_ini_entry, &state);
	fclose(f);
	if (r > 0)
		report(&state, r, "expected 'key = value', '[section]' or a '#' comment");
	else if (r < 0)
		report(&state, 0, "cannot read the file");
	if (state.error_count == 0)
		check_network(&state);
	if (state.error_count > CONFIG_MAX_ERRORS && errors)
		fprintf(errors, "%s: %d more errors not shown\n", path, state.error_count - CONFIG_MAX_ERRORS);
	resolve_derived(config);
	return state.error_count ? -EINVAL : 0;
}

void config_free(struct config *config)
{
	if (!config)
		return;
	free(config->path);
	for (size_t i = 0; i < ARRAY_SIZE(options); i++) {
		enum option_type t = options[i].type;
		if (t == OPTION_STRING || t == OPTION_PATH || t == OPTION_ADDRESS)
			free(*(char **)((char *)config + options[i].offset));
	}
	memset(config, 0, sizeof(*config));
}

void config_write_sample(FILE *out)
{
	fputs("# bramble.conf: the configuration of one Bramble board.\n"
	      "# Lines are 'key = value' under a [section]; '#' starts a comment. Every option is\n"
	      "# listed with its default; check a file with: bramble agent --check-config FILE\n",
	      out);
	const char *section = "";
	for (size_t i = 0; i < ARRAY_SIZE(options); i++) {
		const struct option *o = &options[i];
		if (strcmp(section, o->section) != 0) {
			section = o->section;
			fprintf(out, "\n[%s]\n", section);
		}
		fputs("\n# ", out);
		for (const char *p = o->help; *p; p++) {
			fputc(*p, out);
			if (*p == '\n')
				fputs("# ", out);
		}
		if (o->default_value[0])
			fprintf(out, "\n%s = %s\n", o->key, o->default_value);
		else
			fprintf(out, "\n%s =\n", o->key);
	}
}
