/* The board's configuration: one INI file, normally bramble.conf on the SD card's boot
 * partition. Every option is one row of the table in config.c (section, key, type, bounds,
 * default, help); configs/bramble.conf documents each one. Unknown sections and keys are
 * errors, reported as `file:line: message` like a compiler would.
 */
#ifndef BRAMBLE_AGENT_CONFIG_H
#define BRAMBLE_AGENT_CONFIG_H

#include <stdbool.h>
#include <stdio.h>

#include "platform/log.h"

#define CONFIG_MAX_SIZE (64 * 1024)
#define CONFIG_MAX_ERRORS 32

enum config_role { CONFIG_ROLE_AGENT = 1, CONFIG_ROLE_SERVER = 2 };

struct config {
	char *path;

	/* [node] */
	char *node_name;
	int roles; /* CONFIG_ROLE_* bits */
	char *data_dir;

	/* [server] */
	char *listen;
	char *credentials;
	char *debug_plain_listen; /* empty: off; loopback only */
	unsigned long max_request_body;
	unsigned long max_list_page;
	unsigned long max_watches_per_client;
	unsigned long change_log;
	bool store_sync_full;
	unsigned long node_monitor_grace;   /* seconds */
	unsigned long pod_eviction_timeout; /* seconds */
	unsigned long node_eviction_rate;   /* nodes per minute */
	unsigned long unhealthy_threshold;  /* percent */
	unsigned long job_backoff;          /* seconds */
	unsigned long image_registry_limit; /* bytes; 0: none */

	/* [agent] */
	char *agent_servers; /* comma-separated coaps:// URIs; "": this board's own API server */
	char *agent_credential;
	char *agent_token; /* a join string, or "" */
	char *labels;
	char *taints;
	unsigned long max_pods;
	unsigned long reserved_cpu_millicores;
	unsigned long reserved_memory;
	char *cgroup_parent;
	unsigned long node_status_interval;
	char *static_pods;
	char *state_dir;
	unsigned long image_store_limit;
	unsigned long restart_backoff; /* seconds */
	/* [network] */
	bool pod_network;
	char *cluster_cidr;
	char *service_cidr;
	unsigned long node_cidr_mask;
	char *node_port_range; /* "30000-32767", parsed into: */
	unsigned long node_port_min, node_port_max;
	char *cluster_domain;
	char *bridge;
	char *proxy_mode;
	/* [log] */
	enum log_level log_level;
	bool log_syslog;
};

/* Fills defaults, then reads path. Every problem found is written to errors (NULL: not
 * printed) as "path:line: message"; returns 0 when there was none, else -EINVAL. */
int config_load(const char *path, struct config *config, FILE *errors);

/* Defaults only: for running without a file. */
void config_defaults(struct config *config);

void config_free(struct config *config);

/* Writes a complete, commented sample configuration (what configs/bramble.conf holds). */
void config_write_sample(FILE *out);

#endif
