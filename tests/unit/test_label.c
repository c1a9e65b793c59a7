#include "tools/label.h"

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

TEST(arguments_split_into_resources_and_changes)
{
	CHECK(label_is_change("app=web"));
	CHECK(label_is_change("app-"));
	CHECK(label_is_change("app="));
	CHECK(!label_is_change("pods"));
	CHECK(!label_is_change("deploy/web"));
	CHECK(!label_is_change("-"));
}

TEST(changes_are_checked_as_kubernetes_does)
{
	struct label_changes c;
	struct error err = { 0 };
	char *good[] = { "app=web", "tier-", "example.com/team=blue" };
	CHECK_OK(label_parse(3, good, false, &c, &err));
	CHECK_INT(c.count, ==, 3);
	CHECK_STR(c.items[1].key, "tier");
	CHECK(c.items[1].value == NULL);
	CHECK_STR(c.items[2].key, "example.com/team");
	char *bad_value[] = { "app=has space" };
	CHECK_INT(label_parse(1, bad_value, false, &c, &err), ==, -EINVAL);
	CHECK_CONTAINS(err.message, "invalid label value");
	CHECK_OK(label_parse(1, bad_value, true, &c, &err)); /* any annotation value */
	char *bad_key[] = { "-x=1" };
	CHECK_INT(label_parse(1, bad_key, false, &c, &err), ==, -EINVAL);
	char *both[] = { "app=web", "app-" };
	CHECK_INT(label_parse(2, both, false, &c, &err), ==, -EINVAL);
	CHECK_CONTAINS(err.message, "can not both modify and remove a label app");
	CHECK_INT(label_parse(0, NULL, false, &c, &err), ==, -EINVAL);
	CHECK_STR(err.message, "at least one label update is required");
}

TEST(overwrite_rules_are_kubectls)
{
	cJSON *labels = cJSON_Parse("{\"app\":\"web\",\"tier\":\"front\"}");
	struct label_changes c;
	struct error err = { 0 };
	cJSON *patch;
	bool removed_only;
	const char *missing;
	char *change[] = { "app=db" };
	CHECK_OK(label_parse(1, change, false, &c, &err));
	CHECK_INT(label_compute(labels, &c, false, false, &patch, &removed_only, &missing, &err), ==, -EEXIST);
	CHECK_STR(err.message, "'app' already has a value (web), and --overwrite is false");
	CHECK_INT(label_compute(labels, &c, false, true, &patch, &removed_only, &missing, &err), ==, -EEXIST);
	CHECK_STR(err.message,
	          "--overwrite is false but found the following declared annotation(s): 'app' already has a "
	          "value (web)");
	CHECK_OK(label_compute(labels, &c, true, false, &patch, &removed_only, &missing, &err));
	CHECK_STR(print(patch), "{\"app\":\"db\"}");
	CHECK(!removed_only);
	cJSON_Delete(patch);
	char *same[] = { "app=web" }; /* the same value needs no --overwrite, and changes nothing */
	CHECK_OK(label_parse(1, same, false, &c, &err));
	CHECK_OK(label_compute(labels, &c, false, false, &patch, &removed_only, &missing, &err));
	CHECK(patch == NULL);
	char *remove[] = { "tier-", "gone-" };
	CHECK_OK(label_parse(2, remove, false, &c, &err));
	CHECK_OK(label_compute(labels, &c, false, false, &patch, &removed_only, &missing, &err));
	CHECK_STR(print(patch), "{\"tier\":null}");
	CHECK(removed_only);
	CHECK_STR(missing, "gone");
	cJSON_Delete(patch);
	CHECK_OK(label_compute(NULL, &c, false, false, &patch, &removed_only, &missing, &err)); /* no labels */
	CHECK(patch == NULL);
	cJSON_Delete(labels);
}
