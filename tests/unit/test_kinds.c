#include "tools/kinds.h"

#include <errno.h>
#include <stdlib.h>

#include "core/object.h"
#include "platform/error.h"
#include "tests/unit/unit.h"

TEST(kubectl_names_resolve)
{
	static const char *const deployment[] = { "deploy",           "deployment",  "deployments", "Deployment",
		                                  "deployments.apps", "deploy.apps", "DEPLOYMENT" };
	for (size_t i = 0; i < sizeof(deployment) / sizeof(deployment[0]); i++) {
		const struct kind *k = kinds_resolve(deployment[i]);
		CHECK(k != NULL);
		CHECK_STR(k->name, "Deployment");
	}
	CHECK_STR(kinds_resolve("po")->name, "Pod");
	CHECK_STR(kinds_resolve("svc")->name, "Service");
	CHECK_STR(kinds_resolve("cm")->name, "ConfigMap");
	CHECK_STR(kinds_resolve("no")->name, "Node");
	CHECK_STR(kinds_resolve("ev")->name, "Event");
	CHECK_STR(kinds_resolve("secret")->name, "Secret");
	CHECK(kinds_resolve("widgets") == NULL);
	CHECK(kinds_resolve("deployments.batch") == NULL); /* the wrong group */
	CHECK(kinds_resolve("") == NULL);
}

TEST(paths_follow_kubernetes)
{
	char *p = kinds_path(kinds_resolve("deploy"), "default", "web");
	CHECK_STR(p, "/apis/apps/v1/namespaces/default/deployments/web");
	free(p);
	p = kinds_path(kinds_resolve("pods"), NULL, NULL);
	CHECK_STR(p, "/api/v1/pods");
	free(p);
	p = kinds_path(kinds_resolve("nodes"), "default", "pi-1"); /* cluster-scoped: no namespace */
	CHECK_STR(p, "/api/v1/nodes/pi-1");
	free(p);
	char buf[64];
	kinds_resource(kinds_resolve("deploy"), buf, sizeof(buf));
	CHECK_STR(buf, "deployments.apps");
	kinds_type(kinds_resolve("deploy"), buf, sizeof(buf));
	CHECK_STR(buf, "deployment.apps");
	kinds_type(kinds_resolve("cm"), buf, sizeof(buf));
	CHECK_STR(buf, "configmap");
}

TEST(selections_kind_names_and_type_slash_name)
{
	struct kinds_selection *s = calloc(1, sizeof(*s));
	struct error err = { 0 };
	char *list[] = { "pods" };
	CHECK_OK(kinds_select(1, list, s, &err));
	CHECK_STR(s->kind->name, "Pod");
	CHECK_INT(s->count, ==, 0);
	char *named[] = { "cm", "a", "b" };
	CHECK_OK(kinds_select(3, named, s, &err));
	CHECK_INT(s->count, ==, 2);
	CHECK_STR(s->names[1], "b");
	CHECK_STR(s->kinds[1]->name, "ConfigMap");
	char *slashed[] = { "deploy/web", "svc/web" };
	CHECK_OK(kinds_select(2, slashed, s, &err));
	CHECK(s->kind == NULL);
	CHECK_STR(s->kinds[0]->name, "Deployment");
	CHECK_STR(s->kinds[1]->name, "Service");
	CHECK_STR(s->names[1], "web");
	char *mixed[] = { "deploy", "svc/web" };
	CHECK_INT(kinds_select(2, mixed, s, &err), ==, -EINVAL);
	CHECK_CONTAINS(err.message, "no need to specify a resource type");
	char *unknown[] = { "widgets", "w" };
	CHECK_INT(kinds_select(2, unknown, s, &err), ==, -ENOENT);
	CHECK_STR(err.message, "the server doesn't have a resource type \"widgets\"");
	char *unknown_slashed[] = { "widget/w" };
	CHECK_INT(kinds_select(1, unknown_slashed, s, &err), ==, -ENOENT);
	CHECK_CONTAINS(err.message, "\"widget\"");
	char *empty_name[] = { "deploy/" };
	CHECK_INT(kinds_select(1, empty_name, s, &err), ==, -EINVAL);
	CHECK_INT(kinds_select(0, NULL, s, &err), ==, -EINVAL);
	free(s);
}
