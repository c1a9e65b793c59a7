#include "tools/drain.h"

#include "tests/unit/unit.h"

static enum drain_verdict judge(const char *pod_json, bool ds_exists, struct drain_options o, const char **reason)
{
	cJSON *pod = cJSON_Parse(pod_json);
	CHECK(pod != NULL);
	enum drain_verdict v = drain_judge(pod, ds_exists, &o, reason);
	cJSON_Delete(pod);
	return v;
}

#define OWNED(kind)                                                                                                    \
	"{\"metadata\":{\"name\":\"p\",\"namespace\":\"n\",\"ownerReferences\":[{\"kind\":\"" kind                     \
	"\",\"name\":\"o\","                                                                                           \
	"\"uid\":\"u\",\"controller\":true}]},\"spec\":{}}"

TEST(pods_are_judged_as_kubectl_drain_does)
{
	const char *reason;
	struct drain_options none = { 0 }, force = { .force = true }, ignore = { .ignore_daemonsets = true },
	                     emptydir = { .delete_emptydir = true };
	CHECK_INT(judge(OWNED("ReplicaSet"), true, none, &reason), ==, DRAIN_DELETE);
	CHECK_INT(
	        judge("{\"metadata\":{\"annotations\":{\"kubernetes.io/config.mirror\":\"x\"}}}", true, none, &reason),
	        ==, DRAIN_SKIP);
	CHECK_INT(judge(OWNED("DaemonSet"), true, none, &reason), ==, DRAIN_REFUSE);
	CHECK_STR(reason, "DaemonSet-managed Pods (use --ignore-daemonsets to ignore)");
	CHECK_INT(judge(OWNED("DaemonSet"), true, ignore, &reason), ==, DRAIN_SKIP_WARN);
	CHECK_STR(reason, "ignoring DaemonSet-managed Pods");
	CHECK_INT(judge(OWNED("DaemonSet"), false, none, &reason), ==, DRAIN_REFUSE);
	CHECK_INT(judge(OWNED("DaemonSet"), false, force, &reason), ==, DRAIN_DELETE_WARN);
	CHECK_INT(judge("{\"metadata\":{\"name\":\"p\"},\"spec\":{}}", true, none, &reason), ==, DRAIN_REFUSE);
	CHECK_STR(reason, "Pods declare no controller (use --force to override)");
	CHECK_INT(judge("{\"metadata\":{\"name\":\"p\"},\"spec\":{}}", true, force, &reason), ==, DRAIN_DELETE_WARN);
	CHECK_INT(judge("{\"metadata\":{},\"status\":{\"phase\":\"Succeeded\"}}", true, none, &reason), ==,
	          DRAIN_DELETE);
	const char *with_emptydir =
	        "{\"metadata\":{\"ownerReferences\":[{\"kind\":\"ReplicaSet\",\"controller\":true}]},"
	        "\"spec\":{\"volumes\":[{\"name\":\"scratch\",\"emptyDir\":{}}]}}";
	CHECK_INT(judge(with_emptydir, true, none, &reason), ==, DRAIN_REFUSE);
	CHECK_STR(reason, "Pods with local storage (use --delete-emptydir-data to override)");
	CHECK_INT(judge(with_emptydir, true, emptydir, &reason), ==, DRAIN_DELETE_WARN);
}
