#include "tools/rollout.h"

#include <errno.h>
#include <stdlib.h>

#include "platform/error.h"
#include "tests/unit/unit.h"

static cJSON *parse(const char *text)
{
	cJSON *o = cJSON_Parse(text);
	CHECK(o != NULL);
	return o;
}

static const char *status(const char *deployment, long long revision, bool *done, struct error *err)
{
	static char message[ROLLOUT_MESSAGE_MAX];
	cJSON *d = parse(deployment);
	int r = rollout_status(d, revision, message, sizeof(message), done, err);
	cJSON_Delete(d);
	return r < 0 ? NULL : message;
}

TEST(status_follows_kubectls_status_viewer)
{
	bool done;
	struct error err = { 0 };
	CHECK_STR(status("{\"metadata\":{\"name\":\"web\",\"generation\":2},\"spec\":{\"replicas\":3},"
	                 "\"status\":{\"observedGeneration\":1}}",
	                 0, &done, &err),
	          "Waiting for deployment spec update to be observed...");
	CHECK(!done);
	CHECK_STR(status("{\"metadata\":{\"name\":\"web\",\"generation\":2},\"spec\":{\"replicas\":3},"
	                 "\"status\":{\"observedGeneration\":2,\"updatedReplicas\":1,\"replicas\":3}}",
	                 0, &done, &err),
	          "Waiting for deployment \"web\" rollout to finish: 1 out of 3 new replicas have been updated...");
	CHECK_STR(status("{\"metadata\":{\"name\":\"web\",\"generation\":2},\"spec\":{\"replicas\":3},"
	                 "\"status\":{\"observedGeneration\":2,\"updatedReplicas\":3,\"replicas\":4}}",
	                 0, &done, &err),
	          "Waiting for deployment \"web\" rollout to finish: 1 old replicas are pending termination...");
	CHECK_STR(status("{\"metadata\":{\"name\":\"web\",\"generation\":2},\"spec\":{\"replicas\":3},"
	                 "\"status\":{\"observedGeneration\":2,\"updatedReplicas\":3,\"replicas\":3,"
	                 "\"availableReplicas\":2}}",
	                 0, &done, &err),
	          "Waiting for deployment \"web\" rollout to finish: 2 of 3 updated replicas are available...");
	CHECK_STR(status("{\"metadata\":{\"name\":\"web\",\"generation\":2},\"spec\":{\"replicas\":3},"
	                 "\"status\":{\"observedGeneration\":2,\"updatedReplicas\":3,\"replicas\":3,"
	                 "\"availableReplicas\":3}}",
	                 0, &done, &err),
	          "deployment \"web\" successfully rolled out");
	CHECK(done);
	CHECK(status("{\"metadata\":{\"name\":\"web\",\"generation\":1},\"status\":{\"observedGeneration\":1,"
	             "\"conditions\":[{\"type\":\"Progressing\",\"status\":\"False\","
	             "\"reason\":\"ProgressDeadlineExceeded\"}]}}",
	             0, &done, &err) == NULL);
	CHECK_STR(err.message, "deployment \"web\" exceeded its progress deadline");
	CHECK(status("{\"metadata\":{\"name\":\"web\",\"annotations\":{\"deployment.kubernetes.io/revision\":\"2\"}}}",
	             3, &done, &err) == NULL);
	CHECK_STR(err.message, "desired revision (3) is different from the running revision (2)");
}

#define RS(name, revision, image, hash)                                                                                \
	"{\"metadata\":{\"name\":\"" name "\",\"creationTimestamp\":\"2024-01-0" revision "T00:00:00Z\","              \
	"\"annotations\":{\"deployment.kubernetes.io/revision\":\"" revision                                           \
	"\",\"kubernetes.io/change-cause\":\"v" revision                                                               \
	"\"}},\"spec\":{\"template\":{\"metadata\":{\"labels\":{\"app\":\"web\",\"pod-template-hash\":\"" hash "\"}}," \
	"\"spec\":{\"containers\":[{\"name\":\"c\",\"image\":\"" image "\"}]}}}}"

TEST(undo_finds_the_revision_and_copies_its_template)
{
	cJSON *deployment = parse("{\"metadata\":{\"name\":\"web\",\"annotations\":{"
	                          "\"deployment.kubernetes.io/revision\":\"3\",\"kubernetes.io/change-cause\":\"v3\","
	                          "\"kubectl.kubernetes.io/last-applied-configuration\":\"{}\"}},"
	                          "\"spec\":{\"template\":{\"metadata\":{\"labels\":{\"app\":\"web\"}},"
	                          "\"spec\":{\"containers\":[{\"name\":\"c\",\"image\":\"web:3\"}]}}}}");
	cJSON *sets = cJSON_CreateArray();
	cJSON_AddItemToArray(sets, parse(RS("web-1", "1", "web:1", "aaa")));
	cJSON_AddItemToArray(sets, parse(RS("web-3", "3", "web:3", "ccc")));
	cJSON_AddItemToArray(sets, parse(RS("web-2", "2", "web:2", "bbb")));
	struct error err = { 0 };
	const cJSON *rs = NULL;
	CHECK_OK(rollout_find_revision(deployment, sets, 0, &rs, &err));
	CHECK_INT(rollout_revision(rs), ==, 2); /* the one before the newest */
	CHECK_OK(rollout_find_revision(deployment, sets, 1, &rs, &err));
	CHECK_INT(rollout_revision(rs), ==, 1);
	CHECK_INT(rollout_find_revision(deployment, sets, 7, &rs, &err), ==, -ENOENT);
	CHECK_STR(err.message, "unable to find specified revision 7 in history");
	CHECK(rollout_new_replicaset(deployment, sets) == cJSON_GetArrayItem(sets, 1));
	CHECK(rollout_template_equal(
	        cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetArrayItem(sets, 1), "spec"), "template"),
	        cJSON_GetObjectItem(cJSON_GetObjectItem(deployment, "spec"), "template")));
	CHECK_OK(rollout_find_revision(deployment, sets, 0, &rs, &err));
	cJSON *back = rollout_undo(deployment, rs);
	char *text = cJSON_PrintUnformatted(cJSON_GetObjectItem(back, "spec"));
	CHECK_STR(text, "{\"template\":{\"metadata\":{\"labels\":{\"app\":\"web\"}},"
	                "\"spec\":{\"containers\":[{\"name\":\"c\",\"image\":\"web:2\"}]}}}");
	free(text);
	/* The Deployment keeps its own bookkeeping annotations, takes the others from the
	 * ReplicaSet. */
	text = cJSON_PrintUnformatted(cJSON_GetObjectItem(cJSON_GetObjectItem(back, "metadata"), "annotations"));
	CHECK_STR(text,
	          "{\"deployment.kubernetes.io/revision\":\"3\","
	          "\"kubectl.kubernetes.io/last-applied-configuration\":\"{}\",\"kubernetes.io/change-cause\":\"v2\"}");
	free(text);
	cJSON_Delete(back);
	cJSON *alone = cJSON_CreateArray();
	cJSON_AddItemToArray(alone, parse(RS("web-1", "1", "web:1", "aaa")));
	CHECK_INT(rollout_find_revision(deployment, alone, 0, &rs, &err), ==, -ENOENT);
	CHECK_STR(err.message, "no rollout history found for deployment \"web\"");
	cJSON_Delete(alone);
	cJSON_Delete(sets);
	cJSON_Delete(deployment);
}
