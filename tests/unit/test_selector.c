#include "core/selector.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "platform/error.h"
#include "platform/memory.h"
#include "tests/unit/unit.h"

static cJSON *labels_of(const char *text)
{
	cJSON *labels = cJSON_Parse(text);
	if (!labels)
		unit_fail(__FILE__, __LINE__, "bad test JSON: %s", text);
	return labels;
}

/* Whether the label query selects the labels (JSON text). */
static bool label_match(const char *query, const char *labels_text)
{
	struct selector *selector = NULL;
	struct error err = { 0 };
	if (selector_parse_labels(query, &selector, &err) < 0)
		unit_fail(__FILE__, __LINE__, "parse \"%s\": %s", query, err.message);
	cJSON *labels = labels_of(labels_text);
	bool matches = selector_matches_labels(selector, labels);
	/* the object form reads metadata.labels */
	cJSON *object = cJSON_CreateObject();
	cJSON_AddItemToObject(cJSON_AddObjectToObject(object, "metadata"), "labels", labels);
	CHECK(selector_matches(selector, object) == matches);
	cJSON_Delete(object);
	selector_free(selector);
	return matches;
}

static struct error label_error(const char *query)
{
	struct selector *selector = NULL;
	struct error err = { 0 };
	CHECK_INT(selector_parse_labels(query, &selector, &err), ==, -EINVAL);
	CHECK(!selector);
	return err;
}

TEST(empty_selector_matches_everything)
{
	struct selector *selector = NULL;
	struct error err = { 0 };
	CHECK_OK(selector_parse_labels("", &selector, &err));
	CHECK(selector_is_empty(selector));
	CHECK(selector_matches_labels(selector, NULL));
	cJSON *labels = labels_of("{\"a\": \"b\"}");
	CHECK(selector_matches_labels(selector, labels));
	cJSON_Delete(labels);
	selector_free(selector);
	CHECK_OK(selector_parse_labels("  ", &selector, &err));
	CHECK(selector_is_empty(selector));
	selector_free(selector);
	CHECK_OK(selector_parse_fields("", &selector, &err));
	CHECK(selector_is_empty(selector));
	selector_free(selector);
	CHECK(selector_is_empty(NULL));
	CHECK(selector_matches(NULL, NULL));
	selector_free(NULL);
}

TEST(equality_terms)
{
	const char *labels = "{\"app\": \"web\", \"tier\": \"front\", \"empty\": \"\"}";
	CHECK(label_match("app=web", labels));
	CHECK(label_match("app==web", labels));
	CHECK(label_match(" app = web , tier == front ", labels));
	CHECK(!label_match("app=api", labels));
	CHECK(!label_match("app=web,tier=back", labels));
	CHECK(label_match("app!=api", labels));
	CHECK(!label_match("app!=web", labels));
	CHECK(label_match("missing!=x", labels)); /* != selects objects without the label */
	CHECK(!label_match("missing=x", labels));
	CHECK(label_match("empty=", labels));
	CHECK(!label_match("app=", labels));
	CHECK(!label_match("missing=", labels));
	CHECK(label_match("example.com/role!=db", labels));
}

TEST(set_terms)
{
	const char *labels = "{\"env\": \"prod\", \"app\": \"web\"}";
	CHECK(label_match("env in (prod,staging)", labels));
	CHECK(label_match("env in ( prod , staging )", labels));
	CHECK(label_match("env in (prod)", labels));
	CHECK(!label_match("env in (dev,staging)", labels));
	CHECK(!label_match("missing in (x)", labels));
	CHECK(label_match("env notin (dev,staging)", labels));
	CHECK(!label_match("env notin (prod)", labels));
	CHECK(label_match("missing notin (x)", labels));
	CHECK(label_match("app=web,env in (prod,staging),!canary,app", labels));
	CHECK(label_match("in in (x), notin", "{\"in\": \"x\", \"notin\": \"1\"}"));
}

TEST(existence_terms)
{
	const char *labels = "{\"app\": \"web\", \"canary\": \"\"}";
	CHECK(label_match("app", labels));
	CHECK(label_match("canary", labels));
	CHECK(!label_match("track", labels));
	CHECK(label_match("!track", labels));
	CHECK(!label_match("!canary", labels));
	CHECK(label_match("! track", labels));
	CHECK(!label_match("app", "{}"));
	CHECK(label_match("!app", "{}"));
}

TEST(label_query_errors_name_the_term_and_what_was_expected)
{
	struct error err = label_error("app=web,tier in prod");
	CHECK_CONTAINS(err.message, "\"tier in prod\"");
	CHECK_CONTAINS(err.message, "expected: '('");
	CHECK(label_match("app==", "{\"app\": \"\"}"));
	err = label_error("app=web,");
	CHECK_CONTAINS(err.message, "expected: !, identifier");
	err = label_error(",app");
	CHECK_CONTAINS(err.message, "found ','");
	err = label_error("app < 3");
	CHECK_CONTAINS(err.message, "expected: in, notin, =, ==, !=");
	err = label_error("env in ()");
	CHECK_CONTAINS(err.message, "values set can't be empty");
	err = label_error("env in (a b)");
	CHECK_CONTAINS(err.message, "expected: ',' or ')'");
	err = label_error("env in (a,b");
	CHECK_CONTAINS(err.message, "found end of string");
	err = label_error("bad key=x");
	CHECK_CONTAINS(err.message, "expected: in, notin, =, ==, !=");
	err = label_error("-app=x");
	CHECK_CONTAINS(err.message, "invalid key");
	err = label_error("Example.com/app=x");
	CHECK_CONTAINS(err.message, "prefix part");
	err = label_error("app=-web");
	CHECK_CONTAINS(err.message, "invalid value");
	err = label_error("app=web=x");
	CHECK_CONTAINS(err.message, "expected: ',' or end of string");
	err = label_error("!app=web");
	CHECK_CONTAINS(err.message, "expected: ',' or end of string");
	err = label_error("app=web)");
	CHECK_CONTAINS(err.message, "found ')'");
	err = label_error("(app)");
	CHECK_CONTAINS(err.message, "found '('");
	char long_value[100];
	memset(long_value, 'v', 64);
	long_value[64] = '\0';
	char query[200];
	snprintf(query, sizeof(query), "app=%s", long_value);
	err = label_error(query);
	CHECK_CONTAINS(err.message, "no more than 63 characters");
}

TEST(label_query_is_bounded)
{
	char query[SELECTOR_MAX_TERMS * 8 + 16] = "";
	for (int i = 0; i < SELECTOR_MAX_TERMS; i++)
		sprintf(query + strlen(query), "%sk%d", i ? "," : "", i);
	struct selector *selector = NULL;
	struct error err = { 0 };
	CHECK_OK(selector_parse_labels(query, &selector, &err));
	selector_free(selector);
	strcat(query, ",one-more");
	err = label_error(query);
	CHECK_CONTAINS(err.message, "more than 32 terms");
	char *huge = xmalloc(100000);
	memset(huge, 'a', 99999);
	huge[99999] = '\0';
	err = label_error(huge);
	CHECK_CONTAINS(err.message, "longer than");
	free(huge);
	/* many values in one set */
	char set[1024] = "k in (";
	for (int i = 0; i < 65; i++)
		sprintf(set + strlen(set), "%sv%d", i ? "," : "", i);
	strcat(set, ")");
	err = label_error(set);
	CHECK_CONTAINS(err.message, "too many values");
}

/* ---- field selectors ---- */

static cJSON *pod(const char *name, const char *node, const char *phase)
{
	cJSON *p = cJSON_CreateObject();
	cJSON *metadata = cJSON_AddObjectToObject(p, "metadata");
	cJSON_AddStringToObject(metadata, "name", name);
	cJSON_AddStringToObject(metadata, "namespace", "shop");
	cJSON *spec = cJSON_AddObjectToObject(p, "spec");
	if (node)
		cJSON_AddStringToObject(spec, "nodeName", node);
	cJSON *status = cJSON_AddObjectToObject(p, "status");
	cJSON_AddStringToObject(status, "phase", phase);
	return p;
}

static bool field_match(const char *query, const cJSON *object)
{
	struct selector *selector = NULL;
	struct error err = { 0 };
	if (selector_parse_fields(query, &selector, &err) < 0)
		unit_fail(__FILE__, __LINE__, "parse \"%s\": %s", query, err.message);
	bool matches = selector_matches(selector, object);
	selector_free(selector);
	return matches;
}

TEST(field_selectors_match_named_fields)
{
	cJSON *bound = pod("web-1", "pi-1", "Running"), *pending = pod("web-2", NULL, "Pending");
	CHECK(field_match("spec.nodeName=pi-1", bound));
	CHECK(!field_match("spec.nodeName=pi-2", bound));
	CHECK(field_match("spec.nodeName==pi-1,status.phase!=Succeeded", bound));
	CHECK(!field_match("spec.nodeName=pi-1,status.phase=Pending", bound));
	/* an absent field reads as "": how the scheduler finds unscheduled pods */
	CHECK(field_match("spec.nodeName=", pending));
	CHECK(!field_match("spec.nodeName=", bound));
	CHECK(field_match("spec.nodeName!=", bound));
	CHECK(field_match("metadata.name=web-2,metadata.namespace=shop", pending));
	CHECK(field_match("metadata.name!=web-1", pending));
	cJSON *event =
	        cJSON_Parse("{\"involvedObject\": {\"kind\": \"Pod\", \"name\": \"web-1\"}, \"type\": \"Warning\","
	                    " \"reason\": \"BackOff\"}");
	CHECK(field_match("involvedObject.kind=Pod,involvedObject.name=web-1,type=Warning,reason=BackOff", event));
	CHECK(!field_match("type=Normal", event));
	cJSON_Delete(event);
	cJSON_Delete(bound);
	cJSON_Delete(pending);
}

TEST(required_value_is_the_one_value_a_selector_allows)
{
	const struct {
		const char *query, *value;
	} cases[] = {
		{ "spec.nodeName=pi-1", "pi-1" },
		{ "status.phase!=Succeeded,spec.nodeName==pi-2", "pi-2" },
		{ "spec.nodeName=", "" }, /* unscheduled pods */
		{ "spec.nodeName!=pi-1", NULL },
		{ "status.phase=Running", NULL },
		{ "", NULL },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct selector *selector = NULL;
		struct error err = { 0 };
		CHECK_INT(selector_parse_fields(cases[i].query, &selector, &err), ==, 0);
		const char *value = selector_required_value(selector, "spec.nodeName");
		if (cases[i].value)
			CHECK_STR(value ? value : "(none)", cases[i].value);
		else
			CHECK(value == NULL);
		selector_free(selector);
	}
	struct selector *labels = NULL;
	struct error err = { 0 };
	CHECK_INT(selector_parse_labels("app in (web),tier in (a,b)", &labels, &err), ==, 0);
	CHECK_STR(selector_required_value(labels, "app"), "web");
	CHECK(selector_required_value(labels, "tier") == NULL);
	selector_free(labels);
	CHECK(selector_required_value(NULL, "spec.nodeName") == NULL);
}

TEST(field_selector_values_may_be_escaped)
{
	cJSON *p = pod("a,b=c\\d", NULL, "Running");
	CHECK(field_match("metadata.name=a\\,b\\=c\\\\d", p));
	cJSON_Delete(p);
	struct selector *selector = NULL;
	struct error err = { 0 };
	CHECK_INT(selector_parse_fields("metadata.name=a=b", &selector, &err), ==, -EINVAL);
	CHECK_INT(selector_parse_fields("metadata.name=a\\x", &selector, &err), ==, -EINVAL);
}

TEST(field_selector_errors)
{
	struct selector *selector = NULL;
	struct error err = { 0 };
	CHECK_INT(selector_parse_fields("spec.hostNetwork=true", &selector, &err), ==, -EINVAL);
	CHECK_CONTAINS(err.message, "field label not supported: \"spec.hostNetwork\"");
	CHECK_CONTAINS(err.message,
	               "metadata.name, metadata.namespace, spec.nodeName, status.phase, spec.schedulerName, "
	               "involvedObject.name, involvedObject.kind, type, reason");
	CHECK_INT(selector_parse_fields("spec.nodeName", &selector, &err), ==, -EINVAL);
	CHECK_CONTAINS(err.message, "expected one of =, ==, !=");
	CHECK_INT(selector_parse_fields("spec.nodeName in (a)", &selector, &err), ==, -EINVAL);
	CHECK(!selector);
	char query[SELECTOR_MAX_TERMS * 20 + 40] = "";
	for (int i = 0; i <= SELECTOR_MAX_TERMS; i++)
		sprintf(query + strlen(query), "%stype=t%d", i ? "," : "", i);
	CHECK_INT(selector_parse_fields(query, &selector, &err), ==, -EINVAL);
	CHECK_CONTAINS(err.message, "more than 32 terms");
}

/* ---- LabelSelector objects ---- */

static struct error json_error(const char *text)
{
	cJSON *json = cJSON_Parse(text);
	CHECK(json);
	struct selector *selector = NULL;
	struct error err = { 0 };
	CHECK_INT(selector_from_json(json, "spec.selector", &selector, &err), ==, -EINVAL);
	CHECK(!selector);
	cJSON_Delete(json);
	return err;
}

static bool json_match(const char *selector_text, const char *labels_text)
{
	cJSON *json = cJSON_Parse(selector_text);
	struct selector *selector = NULL;
	struct error err = { 0 };
	if (selector_from_json(json, "spec.selector", &selector, &err) < 0)
		unit_fail(__FILE__, __LINE__, "%s", err.message);
	cJSON *labels = labels_of(labels_text);
	bool matches = selector_matches_labels(selector, labels);
	cJSON_Delete(labels);
	cJSON_Delete(json);
	selector_free(selector);
	return matches;
}

TEST(label_selector_objects_match)
{
	const char *labels = "{\"app\": \"web\", \"env\": \"prod\"}";
	CHECK(json_match("{\"matchLabels\": {\"app\": \"web\"}}", labels));
	CHECK(!json_match("{\"matchLabels\": {\"app\": \"api\"}}", labels));
	CHECK(json_match("{}", labels));
	CHECK(json_match("{\"matchLabels\": {}, \"matchExpressions\": []}", labels));
	CHECK(json_match(
	        "{\"matchExpressions\": [{\"key\": \"env\", \"operator\": \"In\", \"values\": [\"prod\", \"dev\"]}]}",
	        labels));
	CHECK(!json_match(
	        "{\"matchExpressions\": [{\"key\": \"env\", \"operator\": \"NotIn\", \"values\": [\"prod\"]}]}",
	        labels));
	CHECK(json_match("{\"matchExpressions\": [{\"key\": \"app\", \"operator\": \"Exists\"},"
	                 " {\"key\": \"canary\", \"operator\": \"DoesNotExist\", \"values\": []}]}",
	                 labels));
	CHECK(!json_match(
	        "{\"matchLabels\": {\"app\": \"web\"}, \"matchExpressions\": [{\"key\": \"env\", \"operator\": "
	        "\"DoesNotExist\"}]}",
	        labels));
	/* null selects nothing (Kubernetes' nil selector); {} everything */
	struct selector *selector = NULL;
	struct error err = { 0 };
	CHECK_OK(selector_from_json(NULL, "spec.selector", &selector, &err));
	CHECK(!selector_is_empty(selector));
	cJSON *l = labels_of(labels);
	CHECK(!selector_matches_labels(selector, l));
	cJSON_Delete(l);
	selector_free(selector);
}

TEST(label_selector_object_errors_name_the_field)
{
	struct error err =
	        json_error("{\"matchExpressions\": [{\"key\": \"a\", \"operator\": \"In\", \"values\": [\"x\"]},"
	                   " {\"key\": \"b\", \"operator\": \"Equals\", \"values\": [\"x\"]}]}");
	CHECK_STR(err.field, "spec.selector.matchExpressions[1].operator");
	CHECK_STR(err.message, "spec.selector.matchExpressions[1].operator: Unsupported value: \"Equals\": supported "
	                       "values: \"In\", \"NotIn\", \"Exists\", \"DoesNotExist\"");
	err = json_error("{\"matchExpressions\": [{\"key\": \"a\", \"operator\": \"In\"}]}");
	CHECK_STR(err.field, "spec.selector.matchExpressions[0].values");
	CHECK_CONTAINS(err.message, "Required value");
	err = json_error("{\"matchExpressions\": [{\"key\": \"a\", \"operator\": \"Exists\", \"values\": [\"x\"]}]}");
	CHECK_STR(err.field, "spec.selector.matchExpressions[0].values");
	CHECK_CONTAINS(err.message, "Forbidden");
	err = json_error("{\"matchExpressions\": [{\"operator\": \"Exists\"}]}");
	CHECK_STR(err.field, "spec.selector.matchExpressions[0].key");
	CHECK_CONTAINS(err.message, "Required value");
	err = json_error("{\"matchExpressions\": [{\"key\": \"a\"}]}");
	CHECK_STR(err.field, "spec.selector.matchExpressions[0].operator");
	err = json_error("{\"matchExpressions\": [{\"key\": \"a\", \"operator\": \"In\", \"values\": [\"-x\"]}]}");
	CHECK_STR(err.field, "spec.selector.matchExpressions[0].values[0]");
	err = json_error("{\"matchExpressions\": [{\"key\": \"a\", \"operator\": \"In\", \"values\": [1]}]}");
	CHECK_CONTAINS(err.message, "must be of type string");
	err = json_error("{\"matchLabels\": {\"bad key\": \"x\"}}");
	CHECK_STR(err.field, "spec.selector.matchLabels");
	CHECK_CONTAINS(err.message, "name part");
	err = json_error("{\"matchLabels\": {\"a\": 3}}");
	CHECK_CONTAINS(err.message, "must be of type string");
	err = json_error("{\"matchLabels\": []}");
	CHECK_STR(err.field, "spec.selector.matchLabels");
	err = json_error("{\"matchExpressions\": {}}");
	CHECK_STR(err.field, "spec.selector.matchExpressions");
	err = json_error("{\"matchLabel\": {}}");
	CHECK_STR(err.message, "spec.selector.matchLabel: unknown field");
	err = json_error("{\"matchExpressions\": [{\"key\": \"a\", \"operator\": \"Exists\", \"value\": 1}]}");
	CHECK_STR(err.field, "spec.selector.matchExpressions[0].value");
	err = json_error("[]");
	CHECK_STR(err.field, "spec.selector");
	char text[4096] = "{\"matchLabels\": {";
	for (int i = 0; i <= SELECTOR_MAX_TERMS; i++)
		sprintf(text + strlen(text), "%s\"k%d\": \"v\"", i ? "," : "", i);
	strcat(text, "}}");
	err = json_error(text);
	CHECK_CONTAINS(err.message, "at most 32");
}
