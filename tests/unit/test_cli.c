#include "tools/cli.h"

#include <errno.h>
#include <stdlib.h>

#include "core/object.h"
#include "platform/buffer.h"
#include "platform/error.h"
#include "tests/unit/unit.h"

TEST(durations_as_kubectl_takes_them)
{
	int64_t ms = -1;
	struct error err = { 0 };
	CHECK_OK(cli_parse_duration("30s", &ms, &err));
	CHECK_INT(ms, ==, 30000);
	CHECK_OK(cli_parse_duration("1h30m", &ms, &err));
	CHECK_INT(ms, ==, 5400000);
	CHECK_OK(cli_parse_duration("250ms", &ms, &err));
	CHECK_INT(ms, ==, 250);
	CHECK_OK(cli_parse_duration("0", &ms, &err));
	CHECK_INT(ms, ==, 0);
	CHECK_OK(cli_parse_duration("90", &ms, &err)); /* a bare number: seconds */
	CHECK_INT(ms, ==, 90000);
	CHECK_INT(cli_parse_duration("5x", &ms, &err), ==, -EINVAL);
	CHECK_CONTAINS(err.message, "invalid duration \"5x\"");
	CHECK_INT(cli_parse_duration("", &ms, &err), ==, -EINVAL);
	CHECK_INT(cli_parse_duration("-5s", &ms, &err), ==, -EINVAL);
	CHECK_INT(cli_parse_duration("99999999999h", &ms, &err), ==, -ERANGE);
}

TEST(human_durations_are_kubectls)
{
	char buf[32];
	static const struct {
		long long seconds;
		const char *text;
	} cases[] = { { 0, "0s" },           { 119, "119s" },           { 125, "2m5s" },      { 600, "10m" },
		      { 7200, "120m" },      { 3 * 3600 + 60, "3h1m" }, { 30 * 3600, "30h" }, { 50 * 3600, "2d2h" },
		      { 10 * 86400, "10d" }, { 800 * 86400, "2y70d" } };
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		cli_human_duration(cases[i].seconds, buf, sizeof(buf));
		CHECK_STR(buf, cases[i].text);
	}
	cli_age(NULL, 0, buf, sizeof(buf));
	CHECK_STR(buf, "<unknown>");
	cli_age("2024-01-01T00:00:00Z", 1704067200 + 65, buf, sizeof(buf));
	CHECK_STR(buf, "65s");
}

TEST(label_maps_are_sorted)
{
	cJSON *labels = cJSON_Parse("{\"tier\":\"frontend\",\"app\":\"web\"}");
	struct buffer b = BUFFER_INIT;
	cli_format_map(labels, ",", &b);
	CHECK_STR(b.data, "app=web,tier=frontend");
	buffer_reset(&b);
	cli_format_map(NULL, ",", &b);
	CHECK_STR(b.data, "<none>");
	buffer_free(&b);
	cJSON_Delete(labels);
}

TEST(query_values_are_percent_encoded)
{
	struct buffer b = BUFFER_INIT;
	buffer_append_string(&b, "/api/v1/pods");
	cli_query(&b, "labelSelector", "app=web,tier in (a b)");
	cli_query(&b, "limit", "500");
	CHECK_STR(b.data, "/api/v1/pods?labelSelector=app%3Dweb,tier%20in%20(a%20b)&limit=500");
	buffer_free(&b);
}

TEST(document_targets_name_file_and_document)
{
	struct manifest m = { 0 };
	struct error err = { 0 };
	const char *text = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n  namespace: team\n---\n"
	                   "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: team\n---\n"
	                   "apiVersion: extensions/v1beta1\nkind: Deployment\nmetadata:\n  name: old\n---\n"
	                   "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  labels: {}\n";
	CHECK_OK(manifest_parse("app.yaml", text, strlen(text), &m, &err));
	struct cli_target t;
	CHECK_OK(cli_document_target(&m.documents[0], NULL, &t, &err));
	CHECK_STR(t.namespace, "team");
	CHECK_STR(t.name, "a");
	CHECK_INT(cli_document_target(&m.documents[0], "other", &t, &err), ==, -EINVAL);
	CHECK_CONTAINS(err.message, "app.yaml: document 1: the namespace from the provided object \"team\"");
	CHECK_OK(cli_document_target(&m.documents[1], "other", &t, &err));
	CHECK(t.namespace == NULL); /* cluster-scoped */
	CHECK_INT(cli_document_target(&m.documents[2], NULL, &t, &err), ==, -ENOENT);
	CHECK_STR(err.message, "app.yaml: document 3: no matches for kind \"Deployment\" in version "
	                       "\"extensions/v1beta1\" (Bramble serves Deployment as apps/v1)");
	CHECK_INT(cli_document_target(&m.documents[3], NULL, &t, &err), ==, -EINVAL);
	CHECK_STR(err.message, "app.yaml: document 4: metadata.name: Required value");
	manifest_free(&m);
}
