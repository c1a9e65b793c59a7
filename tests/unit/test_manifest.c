#include "tools/manifest.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "platform/buffer.h"
#include "platform/error.h"
#include "tests/unit/unit.h"

static int parse(const char *source, const char *text, struct manifest *m, struct error *err)
{
	return manifest_parse(source, text, strlen(text), m, err);
}

static const cJSON *at(const cJSON *object, const char *a, const char *b)
{
	const cJSON *x = cJSON_GetObjectItemCaseSensitive(object, a);
	return b ? cJSON_GetObjectItemCaseSensitive(x, b) : x;
}

TEST(multi_document_yaml)
{
	const char *text = "# web\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n"
	                   "---\n# nothing here\n---\napiVersion: v1\nkind: Service\nmetadata:\n  name: web\n"
	                   "spec:\n  ports:\n  - port: 80\n    targetPort: 8080\n...\n";
	struct manifest m = { 0 };
	struct error err = { 0 };
	CHECK_OK(parse("web.yaml", text, &m, &err));
	CHECK_INT(m.count, ==, 2);
	CHECK_STR(cJSON_GetStringValue(at(m.documents[0].object, "kind", NULL)), "Deployment");
	CHECK_INT(m.documents[0].index, ==, 1);
	CHECK_INT(m.documents[0].line, ==, 2);
	CHECK_STR(m.documents[1].source, "web.yaml");
	CHECK_INT(m.documents[1].index, ==, 3);
	const cJSON *port = cJSON_GetArrayItem(at(m.documents[1].object, "spec", "ports"), 0);
	CHECK(cJSON_IsNumber(cJSON_GetObjectItem(port, "port")));
	CHECK_INT(cJSON_GetObjectItem(port, "targetPort")->valueint, ==, 8080);
	manifest_free(&m);
}

TEST(scalars_are_typed_as_kubernetes_does)
{
	const char *text = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: t}\n"
	                   "spec:\n  a: true\n  b: \"true\"\n  c: 3\n  d: '3'\n  e: 1.5\n  f: ~\n  g: null\n  h:\n"
	                   "  i: 0644\n  j: 0x1F\n  k: yes\n  l: Off\n  m: 3.10\n  n: 1e3\n  o: 12abc\n  p: !!str 42\n"
	                   "  q: -7\n  r: |\n    line one\n    line two\n  s: 1.2.3\n  t: 08\n";
	struct manifest m = { 0 };
	struct error err = { 0 };
	CHECK_OK(parse("t.yaml", text, &m, &err));
	const cJSON *spec = at(m.documents[0].object, "spec", NULL);
	CHECK(cJSON_IsTrue(cJSON_GetObjectItem(spec, "a")));
	CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(spec, "b")), "true");
	CHECK(cJSON_IsNumber(cJSON_GetObjectItem(spec, "c")));
	CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(spec, "d")), "3");
	CHECK(cJSON_GetObjectItem(spec, "e")->valuedouble == 1.5);
	CHECK(cJSON_IsNull(cJSON_GetObjectItem(spec, "f")));
	CHECK(cJSON_IsNull(cJSON_GetObjectItem(spec, "g")));
	CHECK(cJSON_IsNull(cJSON_GetObjectItem(spec, "h")));
	CHECK_INT(cJSON_GetObjectItem(spec, "i")->valueint, ==, 420);
	CHECK_INT(cJSON_GetObjectItem(spec, "j")->valueint, ==, 31);
	CHECK(cJSON_IsTrue(cJSON_GetObjectItem(spec, "k")));
	CHECK(cJSON_IsFalse(cJSON_GetObjectItem(spec, "l")));
	CHECK(cJSON_GetObjectItem(spec, "m")->valuedouble == 3.1);
	CHECK_INT(cJSON_GetObjectItem(spec, "n")->valueint, ==, 1000);
	CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(spec, "o")), "12abc");
	CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(spec, "p")), "42");
	CHECK_INT(cJSON_GetObjectItem(spec, "q")->valueint, ==, -7);
	CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(spec, "r")), "line one\nline two\n");
	CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(spec, "s")), "1.2.3");
	CHECK_INT(cJSON_GetObjectItem(spec, "t")->valueint, ==, 8); /* go-yaml reads it as a float */
	manifest_free(&m);
}

TEST(tab_error_names_file_document_and_line)
{
	const char *text =
	        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n---\napiVersion: v1\nkind: ConfigMap\n"
	        "metadata:\n\tname: b\n";
	struct manifest m = { 0 };
	struct error err = { 0 };
	CHECK_INT(parse("deploy.yaml", text, &m, &err), ==, -EINVAL);
	CHECK_CONTAINS(err.message, "deploy.yaml: document 2, line 9: ");
	CHECK_CONTAINS(err.message, "found character that cannot start any token");
	CHECK_CONTAINS(err.message, "(a tab?");
	manifest_free(&m);
}

TEST(not_a_manifest)
{
	struct manifest m = { 0 };
	struct error err = { 0 };
	CHECK_INT(parse("list.yaml", "- a\n- b\n", &m, &err), ==, -EINVAL);
	CHECK_CONTAINS(err.message, "list.yaml: document 1, line 1: not a Kubernetes object");
	manifest_free(&m);
	CHECK_INT(parse("x.yaml", "apiVersion: v1\nkind: Pod\n---\nhello: world\n", &m, &err), ==, -EINVAL);
	CHECK_CONTAINS(err.message, "x.yaml: document 2, line 3: not a Kubernetes object: apiVersion is missing");
	manifest_free(&m);
	CHECK_INT(parse("d.yaml", "apiVersion: v1\nkind: Pod\nkind: Service\n", &m, &err), ==, -EINVAL);
	CHECK_CONTAINS(err.message, "line 3: key \"kind\" is already defined");
	manifest_free(&m);
	CHECK_INT(parse("u.yaml", "apiVersion: v1\nkind: [\n", &m, &err), ==, -EINVAL);
	CHECK_CONTAINS(err.message, "u.yaml: document 1, line ");
	manifest_free(&m);
}

TEST(json_documents)
{
	const char *text =
	        "{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"a\"},\"data\":{\"x\":\"1\"}}\n"
	        "{\"apiVersion\":\"v1\",\"kind\":\"Secret\",\"metadata\":{\"name\":\"b\"}}\n";
	struct manifest m = { 0 };
	struct error err = { 0 };
	CHECK_OK(parse("a.json", text, &m, &err));
	CHECK_INT(m.count, ==, 2);
	CHECK_STR(cJSON_GetStringValue(at(m.documents[1].object, "kind", NULL)), "Secret");
	CHECK_INT(m.documents[1].line, ==, 2);
	manifest_free(&m);
	CHECK_INT(parse("b.json", "{\"apiVersion\":\"v1\",\n\"kind\": }", &m, &err), ==, -EINVAL);
	CHECK_CONTAINS(err.message, "b.json: document 1, line 2: invalid JSON");
	manifest_free(&m);
}

TEST(anchors_expand_and_are_bounded)
{
	const char *text = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  labels: &l {app: web}\n  annotations: *l\n";
	struct manifest m = { 0 };
	struct error err = { 0 };
	CHECK_OK(parse("a.yaml", text, &m, &err));
	CHECK_STR(cJSON_GetStringValue(at(at(m.documents[0].object, "metadata", "annotations"), "app", NULL)), "web");
	manifest_free(&m);
	/* "Billion laughs": every level doubles the previous one. */
	struct buffer b = BUFFER_INIT;
	buffer_append_string(&b, "apiVersion: v1\nkind: ConfigMap\na0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
	for (int i = 1; i < 12; i++)
		buffer_printf(&b, "a%d: &a%d [*a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d]\n", i, i,
		              i - 1, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1);
	CHECK_INT(manifest_parse("laughs.yaml", b.data, b.length, &m, &err), ==, -E2BIG);
	CHECK_CONTAINS(err.message, "laughs.yaml: document 1");
	buffer_free(&b);
	manifest_free(&m);
}

TEST(directory_is_read_sorted)
{
	char path[512];
	const char *dir = unit_temp_dir();
	const char *names[] = { "b.yaml", "a.yml", "c.json", "notes.txt" };
	const char *texts[] = { "apiVersion: v1\nkind: Service\nmetadata: {name: b}\n",
		                "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n",
		                "{\"apiVersion\":\"v1\",\"kind\":\"Secret\",\"metadata\":{\"name\":\"c\"}}",
		                "not yaml: [" };
	for (int i = 0; i < 4; i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		FILE *f = fopen(path, "w");
		CHECK(f != NULL);
		fputs(texts[i], f);
		fclose(f);
	}
	struct manifest m = { 0 };
	struct error err = { 0 };
	CHECK_OK(manifest_read(dir, &m, &err));
	CHECK_INT(m.count, ==, 3);
	CHECK_STR(cJSON_GetStringValue(at(m.documents[0].object, "kind", NULL)), "ConfigMap");
	CHECK_STR(cJSON_GetStringValue(at(m.documents[1].object, "kind", NULL)), "Service");
	CHECK_STR(cJSON_GetStringValue(at(m.documents[2].object, "kind", NULL)), "Secret");
	CHECK_CONTAINS(m.documents[2].source, "/c.json");
	manifest_free(&m);
	CHECK_INT(manifest_read("/nonexistent.yaml", &m, &err), ==, -ENOENT);
	CHECK_CONTAINS(err.message, "/nonexistent.yaml");
}

TEST(yaml_output_round_trips)
{
	const char *json =
	        "{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"web\",\"labels\":"
	        "{\"app\":\"web\"},\"annotations\":{}},\"data\":{\"a\":\"true\",\"b\":\"0644\",\"c\":\"\","
	        "\"d\":\"x: y\",\"e\":\"line\\nnext\",\"f\":\"- dash\",\"g\":\"plain text\",\"h\":\"#x\"},"
	        "\"spec\":{\"n\":3,\"f\":1.5,\"t\":true,\"z\":null,\"list\":[1,\"two\",{\"k\":\"v\",\"w\":[]}],"
	        "\"nested\":[[1,2],[]]}}";
	cJSON *object = cJSON_Parse(json);
	struct buffer out = BUFFER_INIT;
	manifest_write_yaml(object, &out);
	CHECK_CONTAINS(out.data, "metadata:\n  name: web\n  labels:\n    app: web\n  annotations: {}\n");
	CHECK_CONTAINS(out.data, "  a: \"true\"\n  b: \"0644\"\n  c: \"\"\n  d: \"x: y\"\n");
	CHECK_CONTAINS(out.data, "  g: plain text\n");
	CHECK_CONTAINS(out.data, "  list:\n  - 1\n  - two\n  - k: v\n    w: []\n");
	struct manifest m = { 0 };
	struct error err = { 0 };
	if (manifest_parse("out.yaml", out.data, out.length, &m, &err) < 0)
		unit_fail(__FILE__, __LINE__, "%s\n%s", err.message, out.data);
	CHECK_INT(m.count, ==, 1);
	CHECK(cJSON_Compare(object, m.documents[0].object, 1));
	manifest_free(&m);
	buffer_free(&out);
	cJSON_Delete(object);
}

TEST(values_of_any_shape_for_patches)
{
	cJSON *value = NULL;
	struct error err = { 0 };
	const char *yaml = "spec: {replicas: 3}\nmetadata:\n  labels:\n    gone: null\n";
	CHECK_OK(manifest_parse_value("the patch", yaml, strlen(yaml), &value, &err));
	char *text = cJSON_PrintUnformatted(value);
	CHECK_STR(text, "{\"spec\":{\"replicas\":3},\"metadata\":{\"labels\":{\"gone\":null}}}");
	free(text);
	cJSON_Delete(value);
	CHECK_OK(manifest_parse_value("the patch", "[1, 2]", 6, &value, &err)); /* the caller decides what it takes */
	CHECK(cJSON_IsArray(value));
	cJSON_Delete(value);
	CHECK_INT(manifest_parse_value("the patch", "a: 1\n---\nb: 2\n", 14, &value, &err), ==, -EINVAL);
	CHECK_STR(err.message, "the patch: expected one document, found 2");
	CHECK_INT(manifest_parse_value("the patch", "{bad", 4, &value, &err), ==, -EINVAL);
	CHECK_CONTAINS(err.message, "the patch: document 1, line 1: invalid JSON");
}
