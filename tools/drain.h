/* `bramble cordon`, `uncordon` and `drain`: which pods a drain deletes, as kubectl decides
 * it (k8s.io/kubectl/pkg/drain's filters). */
#ifndef BRAMBLE_TOOLS_DRAIN_H
#define BRAMBLE_TOOLS_DRAIN_H

#include <stdbool.h>

#include <cjson/cJSON.h>

struct drain_options {
	bool force;             /* delete pods no controller manages (and those of a missing DaemonSet) */
	bool ignore_daemonsets; /* leave DaemonSet-managed pods (else they fail the drain) */
	bool delete_emptydir;   /* delete pods with emptyDir volumes (else they fail the drain) */
};

enum drain_verdict {
	DRAIN_DELETE,      /* delete it */
	DRAIN_DELETE_WARN, /* delete it, with a warning (why: *ret_reason) */
	DRAIN_SKIP,        /* leave it silently (a mirror pod) */
	DRAIN_SKIP_WARN,   /* leave it, with a warning */
	DRAIN_REFUSE,      /* the drain fails (why: *ret_reason) */
};

/* The verdict on one pod of the node; daemonset_exists: whether the DaemonSet that
 * controls it (if one does) still exists. *ret_reason is kubectl's text ("DaemonSet-managed
 * Pods (use --ignore-daemonsets to ignore)", ...). */
enum drain_verdict drain_judge(const cJSON *pod, bool daemonset_exists, const struct drain_options *options,
                               const char **ret_reason);

#endif
