/* The board as a Kubernetes Node: the object the agent registers (POST /api/v1/nodes), the
 * status it keeps up to date (PUT .../nodes/{name}/status) and the heartbeats in between.
 * See the design comment in node.c.
 */
#ifndef BRAMBLE_AGENT_NODE_H
#define BRAMBLE_AGENT_NODE_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include <cjson/cJSON.h>

struct board_facts;
struct error;

#define NODE_DEFAULT_MAX_PODS 110
#define NODE_DEFAULT_MEMORY_PRESSURE_BYTES (100ULL * 1024 * 1024) /* the kubelet's memory.available<100Mi */
#define NODE_DEFAULT_DISK_PRESSURE_PERCENT 10                     /* nodefs.available<10% */
#define NODE_DEFAULT_PID_PRESSURE_PERCENT 90                      /* threads in use > 90% of pid_max */
#define NODE_DEFAULT_PORT 5684                                    /* CoAPS */
#define NODE_KUBERNETES_VERSION "v1.30.0"                         /* the API surface Bramble follows */
#define NODE_LABELS_MAX 64
#define NODE_TAINTS_MAX 32
#define NODE_MODEL_LABEL "node.bramble.io/model"
#define NODE_ARM_VARIANT_LABEL "node.bramble.io/arm-variant"

/* Zero means the default everywhere, so `struct node_options o = { .name = "pi-1" };` works. */
struct node_options {
	const char *name; /* NULL or "": the host name, lowercased */
	/* As the kubelet's --node-labels and --register-with-taints take them: comma-separated
	 * "key=value" labels; "key=value:Effect" or "key:Effect" taints. NULL or "": none. */
	const char *labels;
	const char *taints;
	unsigned max_pods;                /* 0: NODE_DEFAULT_MAX_PODS */
	uint64_t reserved_cpu_millicores; /* kept back from allocatable for the system and Bramble */
	uint64_t reserved_memory_bytes;
	uint64_t reserved_ephemeral_bytes;
	uint64_t memory_pressure_bytes; /* 0: NODE_DEFAULT_MEMORY_PRESSURE_BYTES */
	unsigned disk_pressure_percent; /* 0: NODE_DEFAULT_DISK_PRESSURE_PERCENT */
	unsigned pid_pressure_percent;  /* 0: NODE_DEFAULT_PID_PRESSURE_PERCENT */
	unsigned port;                  /* daemonEndpoints.kubeletEndpoint.Port; 0: NODE_DEFAULT_PORT */
	const char *version;            /* Bramble's; NULL: BRAMBLE_VERSION */
	const char *not_ready_message;  /* NULL: Ready; else Ready=False (KubeletNotReady) with it */
};

/* A complete v1 Node (apiVersion, kind, metadata with labels, spec with taints, status) for
 * registration. Bad labels, taints or a bad node name: -EINVAL with err->field naming the
 * option ("labels", "taints", "name"). The caller frees *ret_node. */
int node_build(const struct board_facts *facts, const struct node_options *options, cJSON **ret_node,
               struct error *err);

/* The node's status from fresh facts at `now`. Each condition's lastTransitionTime is kept
 * from old_status (may be NULL) when its status did not change. Never NULL; caller frees. */
cJSON *node_update_status(const cJSON *old_status, const struct board_facts *facts, const struct node_options *options,
                          time_t now);

/* Sets every condition's lastHeartbeatTime to now and changes nothing else: the update the
 * control plane answers from memory. -EINVAL when node_status has no conditions. */
int node_heartbeat(cJSON *node_status, time_t now);

/* True when two statuses differ only in heartbeat times (a heartbeat suffices). */
bool node_status_equal(const cJSON *a, const cJSON *b);

/* Checks an options.labels / options.taints list as node_build would (for --check-config). */
int node_check_labels(const char *list, struct error *err);
int node_check_taints(const char *list, struct error *err);

/* The model as a label value: every run of characters outside [A-Za-z0-9._-] becomes one
 * '_', then cut to 63 and trimmed to start and end alphanumeric.
 * "Raspberry Pi 4 Model B Rev 1.4" -> "Raspberry_Pi_4_Model_B_Rev_1.4"; "" when nothing is left. */
void node_model_label(const char *model, char buf[64]);

#endif
