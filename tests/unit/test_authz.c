#include "core/authz.h"

#include <errno.h>
#include <stdio.h>

#include "core/object.h"
#include "core/store.h"
#include "platform/error.h"
#include "platform/memory.h"
#include "tests/unit/unit.h"

static const uint8_t key[STORE_SECRET_KEY_SIZE] = { 1, 2, 3 };

/* A store with pods p1 (on pi-1, using ConfigMap c1 and Secret s1) and p2 (on pi-2, using
 * c2 and s2), and the ConfigMaps and Secrets themselves. */
static struct store *fixture(void)
{
	struct store *store;
	cleanup_free char *path = xasprintf("%s/store.db", unit_temp_dir());
	struct store_options options = { .path = path, .secret_key = key };
	struct error err;
	CHECK_OK(store_open(&options, &store, &err));
	for (int i = 1; i <= 2; i++) {
		char text[600], name[8];
		snprintf(text, sizeof(text),
		         "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"p%d\",\"namespace\":"
		         "\"default\"},"
		         "\"spec\":{\"nodeName\":\"pi-%d\",\"volumes\":[{\"name\":\"v\",\"configMap\":{\"name\":\"c%"
		         "d\"}}],"
		         "\"containers\":[{\"name\":\"c\",\"image\":\"i\",\"envFrom\":[{\"secretRef\":{\"name\":\"s%"
		         "d\"}}]}]}}",
		         i, i, i, i);
		cJSON *pod = cJSON_Parse(text);
		snprintf(name, sizeof(name), "p%d", i);
		struct store_request request = { STORE_CREATE, "pods", "default", name, pod, 0 };
		CHECK_OK(store_apply(store, &request, NULL, NULL, &err));
		cJSON_Delete(pod);
	}
	CHECK_OK(store_commit(store, &err));
	return store;
}

static int check(struct store *store, const char *identity, enum authz_verb verb, const char *kind_name,
                 const char *api_version, const char *name, bool status, const char *selector, const cJSON *object)
{
	const struct kind *kind = kind_lookup(api_version, kind_name);
	CHECK(kind != NULL);
	struct authz_request r = { identity, verb,   kind,     kind->namespaced ? "default" : NULL,
		                   name,     status, selector, object };
	struct error err;
	return authz_check(store, &r, &err);
}

static const struct {
	const char *kind, *api_version;
} kinds[] = {
	{ "Namespace", "v1" },       { "Node", "v1" },           { "Pod", "v1" },       { "ReplicaSet", "apps/v1" },
	{ "Deployment", "apps/v1" }, { "DaemonSet", "apps/v1" }, { "Job", "batch/v1" }, { "Service", "v1" },
	{ "Endpoints", "v1" },       { "ConfigMap", "v1" },      { "Secret", "v1" },    { "Event", "v1" },
};

TEST(admin_may_do_everything_strangers_nothing)
{
	struct store *store = fixture();
	for (size_t k = 0; k < ARRAY_SIZE(kinds); k++) {
		for (int verb = AUTHZ_GET; verb <= AUTHZ_DELETE; verb++) {
			const char *name = verb == AUTHZ_LIST || verb == AUTHZ_WATCH ? NULL : "x";
			CHECK_OK(check(store, "admin", verb, kinds[k].kind, kinds[k].api_version, name, false, NULL,
			               NULL));
			CHECK_INT(check(store, "mallory", verb, kinds[k].kind, kinds[k].api_version, name, false, NULL,
			                NULL),
			          ==, -EPERM);
			CHECK_INT(check(store, "node:", verb, kinds[k].kind, kinds[k].api_version, name, false, NULL,
			                NULL),
			          ==, -EPERM);
		}
	}
	store_close(store);
}

/* What node:pi-1 may do to each kind, verb by verb: the whole matrix, allowed cells listed. */
TEST(node_matrix)
{
	struct store *store = fixture();
	cJSON *own_pod = cJSON_Parse("{\"spec\":{\"nodeName\":\"pi-1\"}}");
	cJSON *other_pod = cJSON_Parse("{\"spec\":{\"nodeName\":\"pi-2\"}}");
	const char *me = "node:pi-1";
	for (size_t k = 0; k < ARRAY_SIZE(kinds); k++) {
		const char *kind = kinds[k].kind, *av = kinds[k].api_version;
		bool is_node = strcmp(kind, "Node") == 0, is_pod = strcmp(kind, "Pod") == 0;
		bool is_config = strcmp(kind, "ConfigMap") == 0 || strcmp(kind, "Secret") == 0;
		bool is_event = strcmp(kind, "Event") == 0;
		const char *own_name = is_node ? "pi-1" : is_pod ? "p1" : strcmp(kind, "Secret") == 0 ? "s1" : "c1";
		const char *other_name = is_node ? "pi-2" : is_pod ? "p2" : strcmp(kind, "Secret") == 0 ? "s2" : "c2";
		const cJSON *own_object = is_pod ? own_pod : NULL, *other_object = is_pod ? other_pod : NULL;
		const char *own_selector = is_node ? "metadata.name=pi-1" : "spec.nodeName=pi-1";
		/* Nodes, Services and Endpoints: every node reads them all (routes, proxy, DNS) */
		bool readable = is_node || strcmp(kind, "Service") == 0 || strcmp(kind, "Endpoints") == 0;

		/* get */
		CHECK_INT(check(store, me, AUTHZ_GET, kind, av, own_name, false, NULL, own_object), ==,
		          readable || is_pod || is_config ? 0 : -EPERM);
		CHECK_INT(check(store, me, AUTHZ_GET, kind, av, other_name, false, NULL, other_object), ==,
		          readable ? 0 : -EPERM);
		/* list and watch: pods only with the node's own selector */
		for (int verb = AUTHZ_LIST; verb <= AUTHZ_WATCH; verb++) {
			CHECK_INT(check(store, me, verb, kind, av, NULL, false, own_selector, NULL), ==,
			          readable || is_pod ? 0 : -EPERM);
			CHECK_INT(check(store, me, verb, kind, av, NULL, false, NULL, NULL), ==, readable ? 0 : -EPERM);
			CHECK_INT(check(store, me, verb, kind, av, NULL, false, "spec.nodeName=pi-2", NULL), ==,
			          readable ? 0 : -EPERM);
		}
		/* create: its own Node, Events */
		CHECK_INT(check(store, me, AUTHZ_CREATE, kind, av, own_name, false, NULL, own_object), ==,
		          is_node || is_event ? 0 : -EPERM);
		/* update: its own Node (and status), its pods' status only */
		CHECK_INT(check(store, me, AUTHZ_UPDATE, kind, av, own_name, false, NULL, own_object), ==,
		          is_node ? 0 : -EPERM);
		CHECK_INT(check(store, me, AUTHZ_UPDATE, kind, av, own_name, true, NULL, own_object), ==,
		          is_node || is_pod ? 0 : -EPERM);
		CHECK_INT(check(store, me, AUTHZ_UPDATE, kind, av, other_name, true, NULL, other_object), ==, -EPERM);
		/* delete: its own pods only */
		CHECK_INT(check(store, me, AUTHZ_DELETE, kind, av, own_name, false, NULL, own_object), ==,
		          is_pod ? 0 : -EPERM);
		CHECK_INT(check(store, me, AUTHZ_DELETE, kind, av, other_name, false, NULL, other_object), ==, -EPERM);
	}
	cJSON_Delete(own_pod);
	cJSON_Delete(other_pod);
	store_close(store);
}

TEST(denial_says_who_what_and_why)
{
	struct store *store = fixture();
	const struct kind *secret = kind_lookup("v1", "Secret");
	struct authz_request r = { "node:pi-1", AUTHZ_GET, secret, "default", "s2", false, NULL, NULL };
	struct error err;
	CHECK_INT(authz_check(store, &r, &err), ==, -EPERM);
	CHECK_STR(err.message,
	          "node:pi-1 may not get secrets \"s2\" in namespace default: no pod bound to this node uses it");
	store_close(store);
}

TEST(node_names)
{
	CHECK_STR(authz_node_name("node:pi-1"), "pi-1");
	CHECK(authz_node_name("node:") == NULL);
	CHECK(authz_node_name("admin") == NULL);
	CHECK(authz_node_name(NULL) == NULL);
}

TEST(a_node_creates_only_mirror_pods_of_its_own)
{
	struct store *store = fixture();
#define MIRROR_BASE                                                                                                    \
	"{\"metadata\":{\"name\":\"web-pi-1\",\"annotations\":{%s},\"ownerReferences\":[{"                             \
	"\"apiVersion\":\"v1\",\"kind\":\"Node\",\"name\":\"%s\",\"uid\":\"u\"}]},"                                    \
	"\"spec\":{\"nodeName\":\"%s\",\"containers\":[{\"name\":\"c\",\"image\":\"i\"%s}]}}"
	const char *mirror = "\"kubernetes.io/config.mirror\":\"abc\"";
	const char *secret_env = ",\"envFrom\":[{\"secretRef\":{\"name\":\"s1\"}}]";
	struct {
		const char *annotations, *owner, *node, *extra;
		int expected;
		const char *why;
	} cases[] = {
		{ mirror, "pi-1", "pi-1", "", 0, NULL },
		{ "", "pi-1", "pi-1", "", -EPERM, "only mirror pods (annotation" },
		{ mirror, "pi-1", "pi-2", "", -EPERM, "bound to itself" },
		{ mirror, "pi-2", "pi-1", "", -EPERM, "owned only by its own Node" },
		{ mirror, "pi-1", "pi-1", secret_env, -EPERM, "may not use ConfigMaps or Secrets" },
	};
	const struct kind *pod_kind = kind_lookup("v1", "Pod");
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		char text[1024];
		snprintf(text, sizeof(text), MIRROR_BASE, cases[i].annotations, cases[i].owner, cases[i].node,
		         cases[i].extra);
		cJSON *pod = cJSON_Parse(text);
		CHECK(pod != NULL);
		struct authz_request r = { "node:pi-1", AUTHZ_CREATE, pod_kind, "default", NULL, false, NULL, pod };
		struct error err;
		CHECK_INT(authz_check(store, &r, &err), ==, cases[i].expected);
		if (cases[i].why)
			CHECK_CONTAINS(err.message, cases[i].why);
		cJSON_Delete(pod);
	}
	store_close(store);
}
