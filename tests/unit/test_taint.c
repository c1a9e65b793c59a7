#include "tools/taint.h"

#include <errno.h>
#include <stdlib.h>

#include "platform/error.h"
#include "tests/unit/unit.h"

static char *print(const cJSON *item)
{
	static char *text;
	free(text);
	text = item ? cJSON_PrintUnformatted(item) : NULL;
	return text ? text : "(none)";
}

TEST(taint_specs_are_kubectls)
{
	struct taint_changes *c = calloc(1, sizeof(*c));
	struct error err = { 0 };
	CHECK(taint_is_spec("dedicated=gpu:NoSchedule"));
	CHECK(taint_is_spec("dedicated-"));
	CHECK(!taint_is_spec("nodes"));
	char *good[] = { "dedicated=gpu:NoSchedule", "spot:PreferNoSchedule", "old:NoExecute-", "legacy-" };
	CHECK_OK(taint_parse(4, good, c, &err));
	CHECK_INT(c->add_count, ==, 2);
	CHECK_STR(c->add[0].key, "dedicated");
	CHECK_STR(c->add[0].value, "gpu");
	CHECK_STR(c->add[0].effect, "NoSchedule");
	CHECK_STR(c->add[1].value, "");
	CHECK_INT(c->remove_count, ==, 2);
	CHECK_STR(c->remove[0].effect, "NoExecute");
	CHECK_STR(c->remove[1].key, "legacy");
	CHECK_STR(c->remove[1].effect, "");
	char *no_effect[] = { "dedicated=gpu" };
	CHECK_INT(taint_parse(1, no_effect, c, &err), ==, -EINVAL);
	CHECK_STR(err.message, "invalid taint spec: dedicated=gpu");
	char *bad_effect[] = { "a=b:Sometimes" };
	CHECK_INT(taint_parse(1, bad_effect, c, &err), ==, -EINVAL);
	CHECK_STR(err.message, "invalid taint effect: Sometimes, unsupported taint effect");
	char *twice[] = { "a=b:NoSchedule", "a=c:NoSchedule" };
	CHECK_INT(taint_parse(2, twice, c, &err), ==, -EINVAL);
	CHECK_CONTAINS(err.message, "duplicated taints");
	char *bad_value[] = { "a=b c:NoSchedule" };
	CHECK_INT(taint_parse(1, bad_value, c, &err), ==, -EINVAL);
	free(c);
}

TEST(taints_merge_as_kubectl_reorganizes_them)
{
	struct taint_changes *c = calloc(1, sizeof(*c));
	struct error err = { 0 };
	cJSON *old = cJSON_Parse("[{\"key\":\"a\",\"value\":\"1\",\"effect\":\"NoSchedule\"},"
	                         "{\"key\":\"b\",\"effect\":\"NoExecute\"}]");
	cJSON *result = NULL;
	enum taint_outcome outcome;
	char *add[] = { "c=3:PreferNoSchedule" };
	CHECK_OK(taint_parse(1, add, c, &err));
	CHECK_OK(taint_apply("pi-1", old, c, false, &result, &outcome, &err));
	CHECK_INT(outcome, ==, TAINT_TAINTED);
	CHECK_STR(print(result), "[{\"key\":\"c\",\"value\":\"3\",\"effect\":\"PreferNoSchedule\"},"
	                         "{\"key\":\"a\",\"value\":\"1\",\"effect\":\"NoSchedule\"},"
	                         "{\"key\":\"b\",\"effect\":\"NoExecute\"}]");
	cJSON_Delete(result);
	char *again[] = { "a=2:NoSchedule" };
	CHECK_OK(taint_parse(1, again, c, &err));
	CHECK_INT(taint_apply("pi-1", old, c, false, &result, &outcome, &err), ==, -EEXIST);
	CHECK_STR(err.message, "node pi-1 already has a taint(s) with same effect(s) and --overwrite is false");
	CHECK_OK(taint_apply("pi-1", old, c, true, &result, &outcome, &err));
	CHECK_INT(outcome, ==, TAINT_MODIFIED);
	CHECK_STR(print(result), "[{\"key\":\"a\",\"value\":\"2\",\"effect\":\"NoSchedule\"},"
	                         "{\"key\":\"b\",\"effect\":\"NoExecute\"}]");
	cJSON_Delete(result);
	char *remove[] = { "a-" };
	CHECK_OK(taint_parse(1, remove, c, &err));
	CHECK_OK(taint_apply("pi-1", old, c, false, &result, &outcome, &err));
	CHECK_INT(outcome, ==, TAINT_UNTAINTED);
	CHECK_STR(print(result), "[{\"key\":\"b\",\"effect\":\"NoExecute\"}]");
	cJSON_Delete(result);
	char *missing[] = { "b:NoSchedule-" };
	CHECK_OK(taint_parse(1, missing, c, &err));
	CHECK_INT(taint_apply("pi-1", old, c, false, &result, &outcome, &err), ==, -ENOENT);
	CHECK_STR(err.message, "taint \"b:NoSchedule\" not found");
	cJSON_Delete(result);
	cJSON_Delete(old);
	free(c);
}
