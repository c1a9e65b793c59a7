/* Kubernetes-shaped objects: kinds, JSON parsing, defaults, validation, merge patch.
 *
 * How schemas are described. Every object shape (a container, a probe, a Deployment's spec)
 * is one `struct schema`: a static table of `struct field` rows plus two optional hooks.
 * A row names a field and gives its type (string, integer, boolean, number, object, array,
 * map, int-or-string, quantity, any); for arrays and maps also the element type; for objects
 * (or arrays/maps of objects) the child schema; and optionally: required, an enum of
 * supported values, a numeric range (or a maximum string length), a syntax rule (DNS label,
 * label map, base64 data, timestamp, port ...) and a default value. A kind's schema is the
 * schema of the whole object: apiVersion, kind, metadata, spec, status, and the top-level
 * fields of kinds without a spec (ConfigMap.data, Event.reason ...).
 *
 * How they are walked. One walker, check_object(), visits an object against its schema:
 * every member must be a row of the table (else "<path>: unknown field"), every row's value
 * must have the row's type and pass its enum, range and rule, required rows must be present,
 * and then the schema's `check` hook applies the rules that involve several fields (a
 * volume has exactly one source, a Deployment's selector matches its template ...). The
 * walk stops at the first problem, reported with its full field path. Recursion follows the
 * static tables, never the input, so its depth is bounded by the deepest schema. A JSON null
 * counts as an absent field, as in Kubernetes.
 *
 * Defaults use the same tables: default_object() runs the schema's `defaults` hook (for
 * defaults that depend on other fields, such as imagePullPolicy on the image tag), then fills
 * every absent row that has a default and descends into present objects and arrays of
 * objects. Values of the wrong type are left alone for validation to report.
 */
#include "core/object.h"

#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>

#include "core/selector.h"
#include "platform/clock.h"
#include "platform/error.h"
#include "platform/memory.h"

enum value_type {
	TYPE_STRING,
	TYPE_INT,
	TYPE_BOOL,
	TYPE_NUMBER,
	TYPE_OBJECT,
	TYPE_ARRAY,
	TYPE_MAP, /* an object whose members are all of the element type: labels, resources */
	TYPE_INT_OR_STRING,
	TYPE_QUANTITY, /* "100m", "64Mi", "2e3" or a JSON number */
	TYPE_ANY,
};

/* Syntax checks beyond the type. On a map they check the map's keys (and values). */
enum rule {
	RULE_NONE,
	RULE_DNS_LABEL,
	RULE_DNS_SUBDOMAIN,
	RULE_QUALIFIED_NAME, /* a label key: [prefix/]name */
	RULE_LABELS,         /* map: label keys and label values */
	RULE_ANNOTATIONS,    /* map: qualified-name keys, bounded total size */
	RULE_CONFIG_KEYS,    /* map: ConfigMap/Secret keys */
	RULE_BASE64_DATA,    /* map: ConfigMap/Secret keys, base64 values */
	RULE_TIME,           /* RFC 3339 */
	RULE_PORT,           /* int-or-string: 1..65535 or a port name */
	RULE_PORT_NAME,      /* IANA service name */
	RULE_PERCENT,        /* int-or-string: integer >= 0 or "N%" */
	RULE_IP,
	RULE_CLUSTER_IP, /* an IP, "None" or "" */
};

struct walk;

struct field {
	const char *name;
	enum value_type type;
	enum value_type element; /* of an array or a map */
	bool required;           /* on an array: present and not empty */
	bool has_min, has_max;
	bool has_default_int, default_object;
	enum rule rule;
	const struct schema *child;
	const char *const *values; /* supported values, NULL-terminated */
	long long min, max;        /* range of a number, maximum length of a string, maximum items of an array */
	const char *default_string;
	long long default_int;
};

struct schema {
	const struct field *fields;
	size_t count;
	int (*check)(struct walk *w, const cJSON *object);
	void (*defaults)(cJSON *object);
	enum rule name_rule; /* kinds only: the syntax of metadata.name */
};

#define F(field_name, field_type, ...)                                                                                 \
	{                                                                                                              \
		.name = field_name, .type = field_type, __VA_ARGS__                                                    \
	}
#define REQUIRED .required = true
#define OF(schema_name) .child = &(schema_name)
#define ONE_OF(list) .values = (list)
#define MIN(v) .has_min = true, .min = (v)
#define MAX(v) .has_max = true, .max = (v)
#define RULE(r) .rule = (r)
#define ELEMENT(t) .element = (t)
#define DEFAULT(s) .default_string = (s)
#define DEFAULT_INT(v) .has_default_int = true, .default_int = (v)
#define DEFAULT_EMPTY .default_object = true
/* Shorthands for the most common rows. */
#define STRING(n, ...) F(n, TYPE_STRING, __VA_ARGS__)
#define INT(n, ...) F(n, TYPE_INT, __VA_ARGS__)
#define BOOL(n) F(n, TYPE_BOOL)
#define TIME(n) F(n, TYPE_STRING, RULE(RULE_TIME))
#define OBJECT(n, s, ...) F(n, TYPE_OBJECT, OF(s), __VA_ARGS__)
#define LIST(n, s, ...) F(n, TYPE_ARRAY, ELEMENT(TYPE_OBJECT), OF(s), __VA_ARGS__)
#define STRINGS(n, ...) F(n, TYPE_ARRAY, ELEMENT(TYPE_STRING), __VA_ARGS__)
#define STRING_MAP(n, ...) F(n, TYPE_MAP, ELEMENT(TYPE_STRING), __VA_ARGS__)
#define QUANTITIES(n) F(n, TYPE_MAP, ELEMENT(TYPE_QUANTITY))
#define SCHEMA(schema_name, check_hook, defaults_hook)                                                                 \
	static const struct schema schema_name = { schema_name##_fields, ARRAY_SIZE(schema_name##_fields), check_hook, \
		                                   defaults_hook, RULE_NONE }

/* ---- the walk: a field path and the error to fill ---- */

#define WALK_PATH_MAX 512

struct walk {
	struct error *err;
	size_t length;
	char path[WALK_PATH_MAX];
};

static size_t __attribute__((format(printf, 2, 3))) walk_push(struct walk *w, const char *fmt, ...)
{
	size_t old = w->length;
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(w->path + old, sizeof(w->path) - old, fmt, ap);
	va_end(ap);
	if (n > 0)
		w->length = old + (size_t)n < sizeof(w->path) ? old + (size_t)n : sizeof(w->path) - 1;
	return old;
}

static size_t walk_field(struct walk *w, const char *name)
{
	return walk_push(w, w->length ? ".%s" : "%s", name);
}

static size_t walk_index(struct walk *w, int index)
{
	return walk_push(w, "[%d]", index);
}

static void walk_pop(struct walk *w, size_t old)
{
	w->length = old;
	w->path[old] = '\0';
}

static int __attribute__((format(printf, 2, 3))) walk_fail(struct walk *w, const char *fmt, ...)
{
	char text[ERROR_MESSAGE_MAX];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	return error_set_field(w->err, EINVAL, w->path, "%s", text);
}

/* Reports a problem with the member `name` of the object at the current path. */
static int __attribute__((format(printf, 3, 4))) walk_fail_at(struct walk *w, const char *name, const char *fmt, ...)
{
	char text[ERROR_MESSAGE_MAX];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	walk_field(w, name);
	return error_set_field(w->err, EINVAL, w->path, "%s", text);
}

/* A value as Kubernetes shows it in "Invalid value: ...", cut short; objects and arrays by
 * their type, as they could be large. */
static const char *describe(const cJSON *v, char *buf, size_t size)
{
	if (cJSON_IsString(v)) {
		size_t n = 0, i;
		const char *s = v->valuestring;
		buf[n++] = '"';
		for (i = 0; s[i] && i < 64 && n + 6 < size; i++)
			buf[n++] = (s[i] == '"' || (unsigned char)s[i] < 0x20) ? '?' : s[i];
		if (s[i] && n + 6 < size)
			n += (size_t)snprintf(buf + n, size - n, "...");
		snprintf(buf + n, size - n, "\"");
	} else if (cJSON_IsNumber(v)) {
		double d = v->valuedouble;
		if (d == floor(d) && fabs(d) < 1e18)
			snprintf(buf, size, "%lld", (long long)d);
		else
			snprintf(buf, size, "%g", d);
	} else {
		snprintf(buf, size, "%s",
		         cJSON_IsBool(v)    ? (cJSON_IsTrue(v) ? "true" : "false")
		         : cJSON_IsNull(v)  ? "null"
		         : cJSON_IsArray(v) ? "\"array\""
		                            : "\"object\"");
	}
	return buf;
}

static int wrong_type(struct walk *w, const cJSON *v, const char *type)
{
	char shown[96];
	return walk_fail(w, "Invalid value: %s: must be of type %s", describe(v, shown, sizeof(shown)), type);
}

static int unsupported(struct walk *w, const char *value, const char *const *values)
{
	char list[ERROR_MESSAGE_MAX / 2];
	size_t n = 0;
	list[0] = '\0';
	for (size_t i = 0; values[i] && n < sizeof(list); i++)
		n += (size_t)snprintf(list + n, sizeof(list) - n, "%s\"%s\"", i ? ", " : "", values[i]);
	return walk_fail(w, "Unsupported value: \"%.64s\": supported values: %s", value, list);
}

static bool one_of(const char *value, const char *const *values)
{
	for (size_t i = 0; values[i]; i++)
		if (strcmp(value, values[i]) == 0)
			return true;
	return false;
}

static const cJSON *member(const cJSON *object, const char *name)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(object, name);
	return cJSON_IsNull(v) ? NULL : v;
}

static const char *string_member(const cJSON *object, const char *name)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(object, name);
	return cJSON_IsString(v) ? v->valuestring : NULL;
}

static bool is_integer(const cJSON *v)
{
	/* 2^53: beyond it a double no longer holds every integer */
	return cJSON_IsNumber(v) && v->valuedouble == floor(v->valuedouble) &&
	       fabs(v->valuedouble) <= 9007199254740992.0;
}

/* ---- syntax of names, keys, values ---- */

static bool is_lower_alphanumeric(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

static bool is_alphanumeric(char c)
{
	return is_lower_alphanumeric(c) || (c >= 'A' && c <= 'Z');
}

/* [a-z0-9]([-a-z0-9]*[a-z0-9])? over s[0..length) */
static bool dns_label_part(const char *s, size_t length)
{
	if (length == 0 || !is_lower_alphanumeric(s[0]) || !is_lower_alphanumeric(s[length - 1]))
		return false;
	for (size_t i = 0; i < length; i++)
		if (!is_lower_alphanumeric(s[i]) && s[i] != '-')
			return false;
	return true;
}

bool object_valid_dns_label(const char *s)
{
	return s && strlen(s) <= 63 && dns_label_part(s, strlen(s));
}

bool object_valid_dns_subdomain(const char *s)
{
	/* Kubernetes limits the whole name, not each dot-separated part. */
	if (!s || strlen(s) > 253 || !*s)
		return false;
	for (const char *part = s;;) {
		const char *dot = strchr(part, '.');
		size_t length = dot ? (size_t)(dot - part) : strlen(part);
		if (!dns_label_part(part, length))
			return false;
		if (!dot)
			return true;
		part = dot + 1;
	}
}

/* A DNS-1035 label: a DNS label starting with a letter (Service names). */
static bool valid_dns1035_label(const char *s)
{
	return object_valid_dns_label(s) && s[0] >= 'a' && s[0] <= 'z';
}

static const char DNS_LABEL_TEXT[] =
        "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and "
        "end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is "
        "'[a-z0-9]([-a-z0-9]*[a-z0-9])?')";
static const char DNS_SUBDOMAIN_TEXT[] =
        "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must "
        "start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is "
        "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
static const char DNS1035_TEXT[] =
        "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic "
        "character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for "
        "validation is '[a-z]([-a-z0-9]*[a-z0-9])?')";

/* ([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9] over s[0..length) */
static bool label_characters(const char *s, size_t length)
{
	if (length == 0 || !is_alphanumeric(s[0]) || !is_alphanumeric(s[length - 1]))
		return false;
	for (size_t i = 0; i < length; i++)
		if (!is_alphanumeric(s[i]) && s[i] != '-' && s[i] != '_' && s[i] != '.')
			return false;
	return true;
}

/* NULL when s is a valid qualified name (a label or annotation key), else why not. */
const char *object_label_key_problem(const char *s)
{
	const char *slash = strchr(s, '/');
	const char *name = s;
	if (slash) {
		if (strchr(slash + 1, '/'))
			return "a qualified name must consist of alphanumeric characters, '-', '_' or '.', with an "
			       "optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')";
		if (slash == s)
			return "prefix part must be non-empty";
		char prefix[256];
		size_t length = (size_t)(slash - s);
		if (length > 253)
			return "prefix part must be no more than 253 characters";
		memcpy(prefix, s, length);
		prefix[length] = '\0';
		if (!object_valid_dns_subdomain(prefix))
			return "prefix part a lowercase RFC 1123 subdomain must consist of lower case alphanumeric "
			       "characters, '-' or '.', and must start and end with an alphanumeric character";
		name = slash + 1;
	}
	if (!*name)
		return "name part must be non-empty";
	if (strlen(name) > 63)
		return "name part must be no more than 63 characters";
	if (!label_characters(name, strlen(name)))
		return "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end "
		       "with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc')";
	return NULL;
}

const char *object_label_value_problem(const char *s)
{
	if (strlen(s) > 63)
		return "must be no more than 63 characters";
	if (*s && !label_characters(s, strlen(s)))
		return "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', "
		       "and must start and end with an alphanumeric character";
	return NULL;
}

static bool valid_config_key(const char *s)
{
	if (!*s || strlen(s) > 253 || strcmp(s, ".") == 0 || strcmp(s, "..") == 0)
		return false;
	for (; *s; s++)
		if (!is_alphanumeric(*s) && *s != '-' && *s != '_' && *s != '.')
			return false;
	return true;
}

/* IANA service name: <= 15 characters, [a-z0-9-], a letter somewhere, no "--", no '-' at
 * either end (how a container port is named and referred to). */
static bool valid_port_name(const char *s)
{
	size_t length = strlen(s);
	if (length == 0 || length > 15 || s[0] == '-' || s[length - 1] == '-' || strstr(s, "--"))
		return false;
	bool letter = false;
	for (size_t i = 0; i < length; i++) {
		if (!is_lower_alphanumeric(s[i]) && s[i] != '-')
			return false;
		letter |= s[i] >= 'a' && s[i] <= 'z';
	}
	return letter;
}

/* Go's StdEncoding as Kubernetes decodes []byte: padded, newlines ignored. */
static bool valid_base64(const char *s)
{
	size_t count = 0, padding = 0;
	for (; *s; s++) {
		char c = *s;
		if (c == '\r' || c == '\n')
			continue;
		if (c == '=') {
			padding++;
		} else if (padding || !(is_alphanumeric(c) || c == '+' || c == '/')) {
			return false;
		}
		count++;
	}
	return count % 4 == 0 && padding <= 2;
}

static bool digits(const char **s, size_t count)
{
	for (size_t i = 0; i < count; i++, (*s)++)
		if (**s < '0' || **s > '9')
			return false;
	return true;
}

/* RFC 3339: 2024-05-01T12:00:00Z, with optional fraction and numeric offset. */
static bool valid_time(const char *s)
{
	if (!digits(&s, 4) || *s++ != '-' || !digits(&s, 2) || *s++ != '-' || !digits(&s, 2) ||
	    (*s != 'T' && *s != 't'))
		return false;
	s++;
	if (!digits(&s, 2) || *s++ != ':' || !digits(&s, 2) || *s++ != ':' || !digits(&s, 2))
		return false;
	if (*s == '.') {
		s++;
		if (*s < '0' || *s > '9')
			return false;
		while (*s >= '0' && *s <= '9')
			s++;
	}
	if (*s == 'Z' || *s == 'z')
		return s[1] == '\0';
	if (*s != '+' && *s != '-')
		return false;
	s++;
	return digits(&s, 2) && *s++ == ':' && digits(&s, 2) && *s == '\0';
}

static bool valid_ip(const char *s)
{
	unsigned char address[16];
	return inet_pton(AF_INET, s, address) == 1 || inet_pton(AF_INET6, s, address) == 1;
}

/* Kubernetes' quantity grammar: a signed decimal then an SI or binary suffix or an exponent,
 * i.e. '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$' made precise. Negative values are
 * refused: every quantity Bramble reads is an amount of something. */
static const char QUANTITY_TEXT[] =
        "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'";

static bool valid_quantity(const char *s)
{
	static const char *const suffixes[] = { "",  "n",  "u",  "m",  "k",  "M",  "G",  "T", "P",
		                                "E", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei", NULL };
	if (*s == '+')
		s++;
	size_t number_digits = 0, dots = 0;
	for (; (*s >= '0' && *s <= '9') || *s == '.'; s++) {
		if (*s == '.')
			dots++;
		else
			number_digits++;
	}
	if (number_digits == 0 || dots > 1)
		return false;
	if (one_of(s, suffixes))
		return true;
	if (*s != 'e' && *s != 'E')
		return false;
	s++;
	if (*s == '+' || *s == '-')
		s++;
	if (!*s)
		return false;
	for (; *s; s++)
		if (*s < '0' || *s > '9')
			return false;
	return true;
}

/* ---- the walker ---- */

static int check_object(struct walk *w, const struct schema *schema, const cJSON *object);

static int check_range(struct walk *w, const struct field *f, const cJSON *v)
{
	char shown[96];
	if (f->has_min && v->valuedouble < (double)f->min)
		return walk_fail(w, "Invalid value: %s: must be greater than or equal to %lld",
		                 describe(v, shown, sizeof(shown)), f->min);
	if (f->has_max && v->valuedouble > (double)f->max)
		return walk_fail(w, "Invalid value: %s: must be less than or equal to %lld",
		                 describe(v, shown, sizeof(shown)), f->max);
	return 0;
}

static int check_string(struct walk *w, const struct field *f, const cJSON *v)
{
	const char *s = v->valuestring;
	char shown[96];
	describe(v, shown, sizeof(shown));
	if (f->values && !one_of(s, f->values))
		return unsupported(w, s, f->values);
	if (f->has_max && strlen(s) > (size_t)f->max)
		return walk_fail(w, "Invalid value: %s: must be no more than %lld characters", shown, f->max);
	const char *problem = NULL;
	switch (f->rule) {
	case RULE_DNS_LABEL:
		if (strlen(s) > 63)
			problem = "must be no more than 63 characters";
		else if (!object_valid_dns_label(s))
			problem = DNS_LABEL_TEXT;
		break;
	case RULE_DNS_SUBDOMAIN:
		if (strlen(s) > 253)
			problem = "must be no more than 253 characters";
		else if (!object_valid_dns_subdomain(s))
			problem = DNS_SUBDOMAIN_TEXT;
		break;
	case RULE_QUALIFIED_NAME:
		problem = object_label_key_problem(s);
		break;
	case RULE_TIME:
		if (!valid_time(s))
			problem = "must be an RFC 3339 time such as \"2006-01-02T15:04:05Z\"";
		break;
	case RULE_PORT:
	case RULE_PORT_NAME:
		if (!valid_port_name(s))
			problem =
			        "must be a port name: no more than 15 lower case alphanumeric characters or '-', with "
			        "at least one letter, not starting or ending with '-' nor containing '--'";
		break;
	case RULE_PERCENT: {
		size_t length = strlen(s);
		const char *p = s;
		if (length < 2 || s[length - 1] != '%' || !digits(&p, length - 1))
			problem = "a valid percent string must be a numeric string followed by an ending '%' (e.g. "
			          "'1%',  "
			          "or '93%')";
		break;
	}
	case RULE_IP:
		if (!valid_ip(s))
			problem = "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)";
		break;
	case RULE_CLUSTER_IP:
		if (*s && strcmp(s, "None") != 0 && !valid_ip(s))
			problem = "must be empty, 'None', or a valid IP address";
		break;
	default:
		break;
	}
	return problem ? walk_fail(w, "Invalid value: %s: %s", shown, problem) : 0;
}

/* The rules that look at a whole map (keys and values together). */
static int check_map_rule(struct walk *w, enum rule rule, const cJSON *map)
{
	const cJSON *item;
	size_t total = 0;
	cJSON_ArrayForEach(item, map)
	{
		const char *key = item->string, *problem = NULL;
		switch (rule) {
		case RULE_LABELS:
			problem = object_label_key_problem(key);
			if (problem)
				return walk_fail(w, "Invalid value: \"%.64s\": %s", key, problem);
			if (cJSON_IsString(item) && (problem = object_label_value_problem(item->valuestring)))
				return walk_fail(w, "Invalid value: \"%.64s\": %s", item->valuestring, problem);
			break;
		case RULE_ANNOTATIONS:
			if ((problem = object_label_key_problem(key)))
				return walk_fail(w, "Invalid value: \"%.64s\": %s", key, problem);
			total += strlen(key) + (cJSON_IsString(item) ? strlen(item->valuestring) : 0);
			if (total > 256 * 1024)
				return walk_fail(w, "Too long: must have at most 262144 bytes");
			break;
		case RULE_CONFIG_KEYS:
		case RULE_BASE64_DATA:
			if (!valid_config_key(key)) {
				size_t old = walk_push(w, "[%.64s]", key);
				int r = walk_fail(
				        w,
				        "Invalid value: \"%.64s\": a valid config key must consist of alphanumeric "
				        "characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or "
				        "'key-name', regex used for validation is '[-._a-zA-Z0-9]+')",
				        key);
				walk_pop(w, old);
				return r;
			}
			/* The value is not echoed: it may be a secret. */
			if (rule == RULE_BASE64_DATA && cJSON_IsString(item) && !valid_base64(item->valuestring)) {
				walk_push(w, "[%.64s]", key);
				return walk_fail(w, "Invalid value: \"<value omitted>\": must be valid base64");
			}
			break;
		default:
			break;
		}
	}
	return 0;
}

static int check_value(struct walk *w, const struct field *f, enum value_type type, const cJSON *v)
{
	char shown[96];
	switch (type) {
	case TYPE_STRING:
		return cJSON_IsString(v) ? check_string(w, f, v) : wrong_type(w, v, "string");
	case TYPE_INT:
		return is_integer(v) ? check_range(w, f, v) : wrong_type(w, v, "integer");
	case TYPE_NUMBER:
		return cJSON_IsNumber(v) ? check_range(w, f, v) : wrong_type(w, v, "number");
	case TYPE_BOOL:
		return cJSON_IsBool(v) ? 0 : wrong_type(w, v, "boolean");
	case TYPE_OBJECT:
		if (!cJSON_IsObject(v))
			return wrong_type(w, v, "object");
		return f->child ? check_object(w, f->child, v) : 0;
	case TYPE_ARRAY: {
		if (!cJSON_IsArray(v))
			return wrong_type(w, v, "array");
		int count = cJSON_GetArraySize(v);
		if (f->required && count == 0)
			return walk_fail(w, "Required value");
		if (f->has_max && count > f->max)
			return walk_fail(w, "Too many: %d: must have at most %lld items", count, f->max);
		struct field element = *f;
		element.has_max = false;
		const cJSON *item;
		int index = 0, r;
		cJSON_ArrayForEach(item, v)
		{
			size_t old = walk_index(w, index++);
			if ((r = check_value(w, &element, f->element, item)) < 0)
				return r;
			walk_pop(w, old);
		}
		return 0;
	}
	case TYPE_MAP: {
		if (!cJSON_IsObject(v))
			return wrong_type(w, v, "object");
		int r = check_map_rule(w, f->rule, v);
		if (r < 0)
			return r;
		struct field element = *f;
		element.rule = RULE_NONE;
		const cJSON *item;
		cJSON_ArrayForEach(item, v)
		{
			size_t old = walk_push(w, "[%.64s]", item->string);
			if ((r = check_value(w, &element, f->element, item)) < 0)
				return r;
			walk_pop(w, old);
		}
		return 0;
	}
	case TYPE_INT_OR_STRING:
		if (cJSON_IsString(v))
			return check_string(w, f, v);
		if (!is_integer(v))
			return wrong_type(w, v, "integer or string");
		if (f->rule == RULE_PORT && (v->valuedouble < 1 || v->valuedouble > 65535))
			return walk_fail(w, "Invalid value: %s: must be between 1 and 65535, inclusive",
			                 describe(v, shown, sizeof(shown)));
		if (f->rule == RULE_PERCENT && v->valuedouble < 0)
			return walk_fail(w, "Invalid value: %s: must be greater than or equal to 0",
			                 describe(v, shown, sizeof(shown)));
		return check_range(w, f, v);
	case TYPE_QUANTITY:
		if (cJSON_IsNumber(v))
			return v->valuedouble >= 0
			               ? 0
			               : walk_fail(w, "Invalid value: %s: must be greater than or equal to 0",
			                           describe(v, shown, sizeof(shown)));
		if (!cJSON_IsString(v))
			return wrong_type(w, v, "quantity");
		if (v->valuestring[0] == '-')
			return walk_fail(w, "Invalid value: %s: must be greater than or equal to 0",
			                 describe(v, shown, sizeof(shown)));
		if (!valid_quantity(v->valuestring))
			return walk_fail(w, "Invalid value: %s: %s", describe(v, shown, sizeof(shown)), QUANTITY_TEXT);
		return 0;
	case TYPE_ANY:
		return 0;
	}
	return 0;
}

static const struct field *find_field(const struct schema *schema, const char *name, size_t *ret_index)
{
	for (size_t i = 0; i < schema->count; i++)
		if (strcmp(schema->fields[i].name, name) == 0) {
			*ret_index = i;
			return &schema->fields[i];
		}
	return NULL;
}

static int check_object(struct walk *w, const struct schema *schema, const cJSON *object)
{
	/* Every member must be known, and known once: with duplicates, what is validated and
	 * what a later reader sees could differ. */
	uint64_t seen = 0;
	const cJSON *item;
	int r;
	cJSON_ArrayForEach(item, object)
	{
		size_t index = 0;
		if (!find_field(schema, item->string, &index)) {
			walk_push(w, w->length ? ".%.96s" : "%.96s", item->string);
			return walk_fail(w, "unknown field");
		}
		if (index < 64 && (seen & (UINT64_C(1) << index))) {
			walk_field(w, item->string);
			return walk_fail(w, "duplicate field");
		}
		if (index < 64)
			seen |= UINT64_C(1) << index;
	}
	for (size_t i = 0; i < schema->count; i++) {
		const struct field *f = &schema->fields[i];
		const cJSON *v = member(object, f->name);
		if (!v) {
			if (f->required)
				return walk_fail_at(w, f->name, "Required value");
			continue;
		}
		size_t old = walk_field(w, f->name);
		if ((r = check_value(w, f, f->type, v)) < 0)
			return r;
		walk_pop(w, old);
	}
	return schema->check ? schema->check(w, object) : 0;
}

/* ---- defaults ---- */

static void set_member(cJSON *object, const char *name, cJSON *value)
{
	cJSON *old = cJSON_GetObjectItemCaseSensitive(object, name);
	if (old)
		cJSON_ReplaceItemInObjectCaseSensitive(object, name, value);
	else
		cJSON_AddItemToObject(object, name, value);
}

/* Absent as Kubernetes' defaulting sees it: missing, null, or an empty string. */
static bool unset(const cJSON *v)
{
	return !v || cJSON_IsNull(v) || (cJSON_IsString(v) && !v->valuestring[0]);
}

static void default_string(cJSON *object, const char *name, const char *value)
{
	if (cJSON_IsObject(object) && unset(cJSON_GetObjectItemCaseSensitive(object, name)))
		set_member(object, name, cJSON_CreateString(value));
}

static void default_object(const struct schema *schema, cJSON *object)
{
	if (schema->defaults)
		schema->defaults(object);
	for (size_t i = 0; i < schema->count; i++) {
		const struct field *f = &schema->fields[i];
		cJSON *v = cJSON_GetObjectItemCaseSensitive(object, f->name);
		if (!v || cJSON_IsNull(v) || (f->default_string && unset(v))) {
			cJSON *value = f->default_string    ? cJSON_CreateString(f->default_string)
			               : f->has_default_int ? cJSON_CreateNumber((double)f->default_int)
			               : f->default_object  ? cJSON_CreateObject()
			                                    : NULL;
			if (!value)
				continue;
			set_member(object, f->name, value);
			v = value;
		}
		if (!f->child)
			continue;
		if (f->type == TYPE_OBJECT && cJSON_IsObject(v)) {
			default_object(f->child, v);
		} else if (f->type == TYPE_ARRAY && cJSON_IsArray(v)) {
			cJSON *item;
			cJSON_ArrayForEach(item, v)
			{
				if (cJSON_IsObject(item))
					default_object(f->child, item);
			}
		}
	}
}

/* ---- the hooks: rules and defaults that involve more than one field ---- */

/* How many of the named members are present. */
static int count_present(const cJSON *object, const char *const *names, const char **ret_last)
{
	int count = 0;
	for (size_t i = 0; names[i]; i++)
		if (member(object, names[i])) {
			count++;
			*ret_last = names[i];
		}
	return count;
}

static int exactly_one(struct walk *w, const cJSON *object, const char *const *names, const char *what)
{
	const char *last = NULL;
	int count = count_present(object, names, &last);
	if (count == 0)
		return walk_fail(w, "Required value: must specify %s", what);
	if (count > 1)
		return walk_fail_at(w, last, "Forbidden: may not specify more than 1 %s", what);
	return 0;
}

static int check_handler(struct walk *w, const cJSON *handler)
{
	static const char *const types[] = { "exec", "httpGet", "tcpSocket", "sleep", NULL };
	return exactly_one(w, handler, types, "handler type");
}

static int check_volume(struct walk *w, const cJSON *volume)
{
	static const char *const sources[] = { "emptyDir", "hostPath", "configMap", "secret", NULL };
	return exactly_one(w, volume, sources, "volume type");
}

static int check_env_var(struct walk *w, const cJSON *env)
{
	const char *value = string_member(env, "value");
	const cJSON *from = member(env, "valueFrom");
	if (value && *value && from)
		return walk_fail_at(w, "valueFrom",
		                    "Invalid value: \"\": may not be specified when `value` is not empty");
	if (!from)
		return 0;
	static const char *const sources[] = { "fieldRef", "resourceFieldRef", "configMapKeyRef", "secretKeyRef",
		                               NULL };
	size_t old = walk_field(w, "valueFrom");
	int r = exactly_one(w, from, sources,
	                    "one of: `fieldRef`, `resourceFieldRef`, `configMapKeyRef` or `secretKeyRef`");
	walk_pop(w, old);
	return r;
}

static int check_env_from(struct walk *w, const cJSON *source)
{
	static const char *const sources[] = { "configMapRef", "secretRef", NULL };
	return exactly_one(w, source, sources, "one of: `configMapRef` or `secretRef`");
}

static int check_toleration(struct walk *w, const cJSON *toleration)
{
	const char *key = string_member(toleration, "key");
	const char *operation = string_member(toleration, "operator");
	const char *value = string_member(toleration, "value");
	const char *effect = string_member(toleration, "effect");
	bool exists = operation && strcmp(operation, "Exists") == 0;
	if ((!key || !*key) && !exists)
		return walk_fail_at(w, "operator",
		                    "Invalid value: \"%s\": operator must be Exists when `key` is empty, which means "
		                    "\"match all values and all keys\"",
		                    operation ? operation : "");
	if (exists && value && *value)
		return walk_fail_at(w, "operator",
		                    "Invalid value: \"%.64s\": value must be empty when `operator` is 'Exists'", value);
	if (member(toleration, "tolerationSeconds") && (!effect || strcmp(effect, "NoExecute") != 0))
		return walk_fail_at(w, "effect",
		                    "Invalid value: \"%s\": effect must be 'NoExecute' when `tolerationSeconds` is set",
		                    effect ? effect : "");
	return 0;
}

static int check_selector_requirement(struct walk *w, const cJSON *requirement)
{
	const char *operation = string_member(requirement, "operator");
	const cJSON *values = member(requirement, "values");
	int count = cJSON_IsArray(values) ? cJSON_GetArraySize(values) : 0;
	if (!operation)
		return 0;
	if ((strcmp(operation, "In") == 0 || strcmp(operation, "NotIn") == 0) && count == 0)
		return walk_fail_at(w, "values",
		                    "Required value: must be specified when `operator` is 'In' or 'NotIn'");
	if ((strcmp(operation, "Exists") == 0 || strcmp(operation, "DoesNotExist") == 0) && count > 0)
		return walk_fail_at(w, "values",
		                    "Forbidden: may not be specified when `operator` is 'Exists' or 'DoesNotExist'");
	if ((strcmp(operation, "Gt") == 0 || strcmp(operation, "Lt") == 0) && count != 1)
		return walk_fail_at(w, "values",
		                    "Required value: must be specified single value when `operator` is 'Lt' or 'Gt'");
	return 0;
}

/* The LabelSelector rules live in core/selector.c, which is also what matches with it. */
static int check_label_selector(struct walk *w, const cJSON *selector)
{
	struct selector *parsed = NULL;
	int r = selector_from_json(selector, w->path, &parsed, w->err);
	selector_free(parsed);
	return r;
}

static int check_owner_references(struct walk *w, const cJSON *metadata)
{
	const cJSON *references = member(metadata, "ownerReferences"), *reference;
	int controllers = 0;
	cJSON_ArrayForEach(reference, references)
	{
		if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(reference, "controller")) && ++controllers > 1)
			return walk_fail_at(
			        w, "ownerReferences",
			        "Invalid value: \"array\": Only one reference can have Controller set to true");
	}
	return 0;
}

/* Names of the array's objects unique; reported at <array>[i].name. */
static int check_unique_names(struct walk *w, const cJSON *array, const char *array_name, const cJSON *also,
                              const char *also_name)
{
	const cJSON *lists[2] = { also, array };
	const char *list_names[2] = { also_name, array_name };
	for (int l = 0; l < 2; l++) {
		int index = 0;
		const cJSON *item;
		cJSON_ArrayForEach(item, lists[l])
		{
			const char *name = string_member(item, "name");
			for (int m = 0; name && m <= l; m++) {
				const cJSON *other;
				cJSON_ArrayForEach(other, lists[m])
				{
					if (other == item)
						break;
					const char *other_name = string_member(other, "name");
					if (other_name && strcmp(name, other_name) == 0) {
						walk_field(w, list_names[l]);
						walk_index(w, index);
						return walk_fail_at(w, "name", "Duplicate value: \"%s\"", name);
					}
				}
			}
			index++;
		}
	}
	return 0;
}

static bool has_named(const cJSON *array, const char *name)
{
	const cJSON *item;
	cJSON_ArrayForEach(item, array)
	{
		const char *n = string_member(item, "name");
		if (n && strcmp(n, name) == 0)
			return true;
	}
	return false;
}

static int check_pod_spec(struct walk *w, const cJSON *spec)
{
	const cJSON *containers = member(spec, "containers"), *init = member(spec, "initContainers");
	const cJSON *volumes = member(spec, "volumes");
	int r;
	const char *dns_policy = string_member(spec, "dnsPolicy");
	const cJSON *nameservers = member(member(spec, "dnsConfig"), "nameservers");
	if (dns_policy && strcmp(dns_policy, "None") == 0 && cJSON_GetArraySize(nameservers) == 0)
		return walk_fail_at(w, "dnsConfig",
		                    "Required value: must provide `dnsConfig` when `dnsPolicy` is None, with at least "
		                    "one nameserver");
	if (cJSON_GetArraySize(nameservers) > 3) {
		walk_field(w, "dnsConfig");
		return walk_fail_at(w, "nameservers", "Invalid value: must not have more than 3 nameservers");
	}
	if ((r = check_unique_names(w, containers, "containers", init, "initContainers")) < 0 ||
	    (r = check_unique_names(w, volumes, "volumes", NULL, NULL)) < 0)
		return r;
	const cJSON *lists[2] = { init, containers };
	const char *list_names[2] = { "initContainers", "containers" };
	for (int l = 0; l < 2; l++) {
		const cJSON *container;
		int index = 0;
		cJSON_ArrayForEach(container, lists[l])
		{
			const cJSON *mount;
			int mount_index = 0;
			cJSON_ArrayForEach(mount, member(container, "volumeMounts"))
			{
				const char *name = string_member(mount, "name");
				if (name && !has_named(volumes, name)) {
					walk_field(w, list_names[l]);
					walk_index(w, index);
					walk_field(w, "volumeMounts");
					walk_index(w, mount_index);
					return walk_fail_at(w, "name", "Not found: \"%.64s\"", name);
				}
				mount_index++;
			}
			index++;
		}
	}
	return 0;
}

/* The workload rules: selector present and matching the template, and the restart policies
 * the controller can live with. */
static int check_template(struct walk *w, const cJSON *spec, const char *kind_word, bool selector_required,
                          const char *const *restart_policies)
{
	const cJSON *selector = member(spec, "selector");
	const cJSON *template = member(spec, "template");
	const cJSON *labels = member(member(template, "metadata"), "labels");
	const cJSON *pod_spec = member(template, "spec");
	if (!selector && selector_required)
		return walk_fail_at(w, "selector", "Required value");
	if (!template)
		return walk_fail_at(w, "template", "Required value");
	if (selector) {
		struct selector *parsed = NULL;
		size_t old = walk_field(w, "selector");
		int r = selector_from_json(selector, w->path, &parsed, w->err);
		if (r < 0)
			return r;
		bool empty = selector_is_empty(parsed);
		bool matches = selector_matches_labels(parsed, labels);
		selector_free(parsed);
		if (empty && selector_required)
			return walk_fail(w, "Invalid value: \"object\": empty selector is invalid for %s", kind_word);
		walk_pop(w, old);
		if (!matches) {
			char *text = labels ? cJSON_PrintUnformatted(labels) : xstrdup("null");
			walk_field(w, "template.metadata.labels");
			r = walk_fail(w, "Invalid value: %.128s: `selector` does not match template `labels`", text);
			free(text);
			return r;
		}
	}
	if (!pod_spec)
		return walk_fail_at(w, "template.spec", "Required value");
	const char *restart = string_member(pod_spec, "restartPolicy");
	if (!restart) {
		char list[128] = "";
		for (size_t i = 0, n = 0; restart_policies[i]; i++)
			n += (size_t)snprintf(list + n, sizeof(list) - n, "%s\"%s\"", i ? ", " : "",
			                      restart_policies[i]);
		return walk_fail_at(w, "template.spec.restartPolicy", "Required value: valid values: %s", list);
	}
	if (!one_of(restart, restart_policies)) {
		walk_field(w, "template.spec.restartPolicy");
		return unsupported(w, restart, restart_policies);
	}
	return 0;
}

static const char *const ALWAYS[] = { "Always", NULL };
static const char *const ON_FAILURE_OR_NEVER[] = { "OnFailure", "Never", NULL };

/* Parses an int-or-percent already validated: 25 or "25%" -> 25, *ret_percent set. */
static long long int_or_percent(const cJSON *v, bool *ret_percent)
{
	*ret_percent = cJSON_IsString(v);
	if (cJSON_IsString(v))
		return strtoll(v->valuestring, NULL, 10);
	return cJSON_IsNumber(v) ? (long long)v->valuedouble : 0;
}

static int check_rolling_update(struct walk *w, const cJSON *strategy, const char *no_rolling_type)
{
	const char *type = string_member(strategy, "type");
	const cJSON *rolling = member(strategy, "rollingUpdate");
	if (type && strcmp(type, no_rolling_type) == 0 && rolling)
		return walk_fail_at(w, "rollingUpdate", "Forbidden: may not be specified when strategy `type` is '%s'",
		                    no_rolling_type);
	if (!rolling)
		return 0;
	bool surge_percent = false, unavailable_percent = false;
	const cJSON *surge = member(rolling, "maxSurge"), *unavailable = member(rolling, "maxUnavailable");
	long long surge_value = int_or_percent(surge, &surge_percent);
	long long unavailable_value = int_or_percent(unavailable, &unavailable_percent);
	size_t old = walk_field(w, "rollingUpdate");
	char shown[96];
	if (unavailable && unavailable_percent && unavailable_value > 100)
		return walk_fail_at(w, "maxUnavailable", "Invalid value: %s: must not be greater than 100%%",
		                    describe(unavailable, shown, sizeof(shown)));
	if (surge_value == 0 && unavailable && unavailable_value == 0)
		return walk_fail_at(w, "maxUnavailable", "Invalid value: %s: may not be 0 when `maxSurge` is 0",
		                    describe(unavailable, shown, sizeof(shown)));
	walk_pop(w, old);
	return 0;
}

static int check_deployment_spec(struct walk *w, const cJSON *spec)
{
	int r = check_template(w, spec, "deployment", true, ALWAYS);
	if (r < 0)
		return r;
	const cJSON *strategy = member(spec, "strategy");
	if (!strategy)
		return 0;
	size_t old = walk_field(w, "strategy");
	if ((r = check_rolling_update(w, strategy, "Recreate")) < 0)
		return r;
	walk_pop(w, old);
	return 0;
}

static int check_replicaset_spec(struct walk *w, const cJSON *spec)
{
	return check_template(w, spec, "replicaset", true, ALWAYS);
}

static int check_daemonset_spec(struct walk *w, const cJSON *spec)
{
	int r = check_template(w, spec, "daemonset", true, ALWAYS);
	if (r < 0)
		return r;
	const cJSON *strategy = member(spec, "updateStrategy");
	if (!strategy)
		return 0;
	size_t old = walk_field(w, "updateStrategy");
	if ((r = check_rolling_update(w, strategy, "OnDelete")) < 0)
		return r;
	walk_pop(w, old);
	return 0;
}

static int check_job_spec(struct walk *w, const cJSON *spec)
{
	return check_template(w, spec, "job", false, ON_FAILURE_OR_NEVER);
}

static int check_service_spec(struct walk *w, const cJSON *spec)
{
	const char *type = string_member(spec, "type");
	if (type && (strcmp(type, "LoadBalancer") == 0 || strcmp(type, "ExternalName") == 0))
		return walk_fail_at(
		        w, "type",
		        "Unsupported value: \"%s\": not supported by Bramble; supported values: \"ClusterIP\", "
		        "\"NodePort\"",
		        type);
	const cJSON *ports = member(spec, "ports"), *port;
	const char *cluster_ip = string_member(spec, "clusterIP");
	bool headless = cluster_ip && strcmp(cluster_ip, "None") == 0;
	if (!headless && cJSON_GetArraySize(ports) == 0)
		return walk_fail_at(w, "ports", "Required value");
	if (headless && type && strcmp(type, "NodePort") == 0)
		return walk_fail_at(w, "clusterIP",
		                    "Invalid value: \"None\": may not be set to 'None' for NodePort services");
	int index = 0, count = cJSON_GetArraySize(ports);
	cJSON_ArrayForEach(port, ports)
	{
		const char *name = string_member(port, "name");
		size_t old = walk_field(w, "ports");
		walk_index(w, index++);
		if (count > 1 && (!name || !*name))
			return walk_fail_at(w, "name", "Required value");
		if (member(port, "nodePort") && cJSON_GetObjectItemCaseSensitive(port, "nodePort")->valuedouble != 0 &&
		    (!type || strcmp(type, "NodePort") != 0))
			return walk_fail_at(w, "nodePort", "Forbidden: may not be used when `type` is '%s'",
			                    type ? type : "ClusterIP");
		walk_pop(w, old);
	}
	return check_unique_names(w, ports, "ports", NULL, NULL);
}

static int check_hpa_spec(struct walk *w, const cJSON *spec)
{
	const cJSON *min = member(spec, "minReplicas"), *max = member(spec, "maxReplicas");
	if (cJSON_IsNumber(min) && cJSON_IsNumber(max) && max->valuedouble < min->valuedouble)
		return walk_fail_at(w, "maxReplicas",
		                    "Invalid value: %lld: must be greater than or equal to `minReplicas`",
		                    (long long)max->valuedouble);
	return 0;
}

static int check_metric_target(struct walk *w, const cJSON *target)
{
	const char *type = string_member(target, "type");
	if (type && strcmp(type, "Utilization") == 0 && !member(target, "averageUtilization"))
		return walk_fail_at(w, "averageUtilization",
		                    "Required value: must set either a target value or averageValue");
	if (type && strcmp(type, "AverageValue") == 0 && !member(target, "averageValue"))
		return walk_fail_at(w, "averageValue",
		                    "Required value: must set either a target value or averageValue");
	if (type && strcmp(type, "Value") == 0 && !member(target, "value"))
		return walk_fail_at(w, "value", "Required value: must set either a target value or averageValue");
	return 0;
}

static int check_configmap(struct walk *w, const cJSON *configmap)
{
	const cJSON *data = member(configmap, "data"), *item;
	cJSON_ArrayForEach(item, member(configmap, "binaryData"))
	{
		if (cJSON_GetObjectItemCaseSensitive(data, item->string)) {
			walk_push(w, "binaryData[%.64s]", item->string);
			return walk_fail(w, "Invalid value: \"%.64s\": duplicate of key present in data", item->string);
		}
	}
	return 0;
}

static int check_secret(struct walk *w, const cJSON *secret)
{
	const cJSON *item;
	cJSON_ArrayForEach(item, member(secret, "stringData"))
	{
		if (!valid_config_key(item->string)) {
			walk_push(w, "stringData[%.64s]", item->string);
			return walk_fail(w,
			                 "Invalid value: \"%.64s\": a valid config key must consist of alphanumeric "
			                 "characters, '-', '_' or '.'",
			                 item->string);
		}
	}
	return 0;
}

static void default_pull_policy(cJSON *container)
{
	const char *image = string_member(container, "image");
	if (!image)
		return;
	/* The tag follows the last ':' after the last '/' (a registry may have a port). */
	const char *slash = strrchr(image, '/');
	const char *colon = strrchr(slash ? slash : image, ':');
	bool digest = strchr(image, '@') != NULL;
	bool latest = !digest && (!colon || strcmp(colon, ":latest") == 0);
	default_string(container, "imagePullPolicy", latest ? "Always" : "IfNotPresent");
}

static void default_restart_policy(cJSON *pod_spec)
{
	default_string(pod_spec, "restartPolicy", "Always");
}

static void default_pod(cJSON *pod)
{
	default_restart_policy(cJSON_GetObjectItemCaseSensitive(pod, "spec"));
}

/* Deployments, ReplicaSets and DaemonSets restart their pods always; a Job's template keeps
 * what it says (the Job rules then require OnFailure or Never). */
static void default_template_restart_policy(cJSON *spec)
{
	default_restart_policy(
	        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(spec, "template"), "spec"));
}

static void default_rolling_update(cJSON *strategy)
{
	default_string(strategy, "type", "RollingUpdate");
	const char *type = string_member(strategy, "type");
	if (type && strcmp(type, "RollingUpdate") == 0 && !member(strategy, "rollingUpdate"))
		set_member(strategy, "rollingUpdate", cJSON_CreateObject());
}

static void default_job_spec(cJSON *spec)
{
	/* A work-queue Job (parallelism without completions) keeps completions unset. */
	if (!member(spec, "completions") && !member(spec, "parallelism"))
		set_member(spec, "completions", cJSON_CreateNumber(1));
}

static char *base64_encode(const char *s)
{
	static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t length = strlen(s), n = 0;
	char *out = xmalloc((length + 2) / 3 * 4 + 1);
	for (size_t i = 0; i < length; i += 3) {
		uint32_t group = (uint32_t)(unsigned char)s[i] << 16;
		if (i + 1 < length)
			group |= (uint32_t)(unsigned char)s[i + 1] << 8;
		if (i + 2 < length)
			group |= (uint32_t)(unsigned char)s[i + 2];
		out[n++] = alphabet[(group >> 18) & 63];
		out[n++] = alphabet[(group >> 12) & 63];
		out[n++] = i + 1 < length ? alphabet[(group >> 6) & 63] : '=';
		out[n++] = i + 2 < length ? alphabet[group & 63] : '=';
	}
	out[n] = '\0';
	return out;
}

/* stringData is write-only in Kubernetes: its entries replace those of data, encoded, and it
 * is never stored. Anything malformed is left for validation to report. */
static void default_secret(cJSON *secret)
{
	cJSON *string_data = cJSON_GetObjectItemCaseSensitive(secret, "stringData");
	cJSON *data = cJSON_GetObjectItemCaseSensitive(secret, "data");
	const cJSON *item;
	if (!cJSON_IsObject(string_data) || (data && !cJSON_IsNull(data) && !cJSON_IsObject(data)))
		return;
	cJSON_ArrayForEach(item, string_data)
	{
		if (!cJSON_IsString(item) || !valid_config_key(item->string))
			return;
	}
	if (!cJSON_IsObject(data)) {
		data = cJSON_CreateObject();
		set_member(secret, "data", data);
	}
	cJSON_ArrayForEach(item, string_data)
	{
		char *encoded = base64_encode(item->valuestring);
		set_member(data, item->string, cJSON_CreateString(encoded));
		free(encoded);
	}
	cJSON_DeleteItemFromObjectCaseSensitive(secret, "stringData");
}

static void default_service_port(cJSON *port)
{
	const cJSON *number = member(port, "port");
	if (cJSON_IsNumber(number) && unset(cJSON_GetObjectItemCaseSensitive(port, "targetPort")))
		set_member(port, "targetPort", cJSON_CreateNumber(number->valuedouble));
}

/* ---- the schemas ---- */

static const char *const PROTOCOLS[] = { "TCP", "UDP", "SCTP", NULL };
static const char *const PULL_POLICIES[] = { "Always", "IfNotPresent", "Never", NULL };
static const char *const RESTART_POLICIES[] = { "Always", "OnFailure", "Never", NULL };
static const char *const DNS_POLICIES[] = { "ClusterFirst", "ClusterFirstWithHostNet", "Default", "None", NULL };
static const char *const TOLERATION_OPERATORS[] = { "Exists", "Equal", NULL };
static const char *const TAINT_EFFECTS[] = { "NoSchedule", "PreferNoSchedule", "NoExecute", NULL };
static const char *const LABEL_OPERATORS[] = { "In", "NotIn", "Exists", "DoesNotExist", NULL };
static const char *const NODE_OPERATORS[] = { "In", "NotIn", "Exists", "DoesNotExist", "Gt", "Lt", NULL };
static const char *const SCHEMES[] = { "HTTP", "HTTPS", NULL };
static const char *const MESSAGE_POLICIES[] = { "File", "FallbackToLogsOnError", NULL };
static const char *const HOST_PATH_TYPES[] = {
	"", "DirectoryOrCreate", "Directory", "FileOrCreate", "File", "Socket", "CharDevice", "BlockDevice", NULL
};
static const char *const STORAGE_MEDIA[] = { "", "Memory", NULL };
static const char *const CONDITION_STATUSES[] = { "True", "False", "Unknown", NULL };
static const char *const POD_PHASES[] = { "Pending", "Running", "Succeeded", "Failed", "Unknown", NULL };
static const char *const QOS_CLASSES[] = { "Guaranteed", "Burstable", "BestEffort", NULL };
static const char *const DEPLOYMENT_STRATEGIES[] = { "RollingUpdate", "Recreate", NULL };
static const char *const DAEMONSET_STRATEGIES[] = { "RollingUpdate", "OnDelete", NULL };
static const char *const COMPLETION_MODES[] = { "NonIndexed", "Indexed", NULL };
static const char *const SERVICE_TYPES[] = { "ClusterIP", "NodePort", "LoadBalancer", "ExternalName", NULL };
static const char *const SESSION_AFFINITIES[] = { "None", "ClientIP", NULL };
static const char *const TRAFFIC_POLICIES[] = { "Cluster", "Local", NULL };
static const char *const IP_FAMILIES[] = { "IPv4", "IPv6", NULL };
static const char *const IP_FAMILY_POLICIES[] = { "SingleStack", "PreferDualStack", "RequireDualStack", NULL };
static const char *const EVENT_TYPES[] = { "Normal", "Warning", NULL };
static const char *const NAMESPACE_PHASES[] = { "Active", "Terminating", NULL };
static const char *const METRIC_TYPES[] = { "Resource", NULL };
static const char *const METRIC_TARGET_TYPES[] = { "Utilization", "AverageValue", "Value", NULL };
static const char *const SCALING_POLICY_TYPES[] = { "Pods", "Percent", NULL };
static const char *const SELECT_POLICIES[] = { "Max", "Min", "Disabled", NULL };
static const char *const NODE_ADDRESS_TYPES[] = { "Hostname",    "InternalIP",  "ExternalIP",
	                                          "InternalDNS", "ExternalDNS", NULL };
static const char *const SECCOMP_TYPES[] = { "RuntimeDefault", "Unconfined", "Localhost", NULL };
static const char *const FS_GROUP_POLICIES[] = { "OnRootMismatch", "Always", NULL };
static const char *const MOUNT_PROPAGATIONS[] = { "None", "HostToContainer", "Bidirectional", NULL };

/* metadata */
static const struct field owner_reference_fields[] = {
	STRING("apiVersion", REQUIRED), STRING("kind", REQUIRED), STRING("name", REQUIRED),
	STRING("uid", REQUIRED),        BOOL("controller"),       BOOL("blockOwnerDeletion"),
};
SCHEMA(owner_reference, NULL, NULL);

static const struct field metadata_fields[] = {
	STRING("name"),
	STRING("generateName"),
	STRING("namespace", RULE(RULE_DNS_LABEL)),
	STRING("uid"),
	STRING("resourceVersion"),
	INT("generation", MIN(0)),
	STRING_MAP("labels", RULE(RULE_LABELS)),
	STRING_MAP("annotations", RULE(RULE_ANNOTATIONS)),
	LIST("ownerReferences", owner_reference),
	TIME("creationTimestamp"),
	TIME("deletionTimestamp"),
	INT("deletionGracePeriodSeconds", MIN(0)),
	STRINGS("finalizers", RULE(RULE_QUALIFIED_NAME)),
};
static int check_metadata(struct walk *w, const cJSON *metadata)
{
	return check_owner_references(w, metadata);
}
SCHEMA(metadata, check_metadata, NULL);

static const struct field label_requirement_fields[] = {
	STRING("key", REQUIRED, RULE(RULE_QUALIFIED_NAME)),
	STRING("operator", REQUIRED, ONE_OF(LABEL_OPERATORS)),
	STRINGS("values"),
};
SCHEMA(label_requirement, NULL, NULL);

static const struct field label_selector_fields[] = {
	STRING_MAP("matchLabels", RULE(RULE_LABELS)),
	LIST("matchExpressions", label_requirement),
};
SCHEMA(label_selector, check_label_selector, NULL);

static const struct field object_reference_fields[] = {
	STRING("kind"),       STRING("namespace"),       STRING("name"),      STRING("uid"),
	STRING("apiVersion"), STRING("resourceVersion"), STRING("fieldPath"),
};
SCHEMA(object_reference, NULL, NULL);

static const struct field local_reference_fields[] = { STRING("name") };
SCHEMA(local_reference, NULL, NULL);

/* One condition shape for every kind: the union of Kubernetes' condition fields. */
static const struct field condition_fields[] = {
	STRING("type", REQUIRED),
	STRING("status", REQUIRED, ONE_OF(CONDITION_STATUSES)),
	INT("observedGeneration", MIN(0)),
	TIME("lastTransitionTime"),
	TIME("lastUpdateTime"),
	TIME("lastProbeTime"),
	TIME("lastHeartbeatTime"),
	STRING("reason"),
	STRING("message"),
};
SCHEMA(condition, NULL, NULL);

/* containers */
static const struct field key_selector_fields[] = {
	STRING("name"),
	STRING("key", REQUIRED),
	BOOL("optional"),
};
SCHEMA(key_selector, NULL, NULL);

static const struct field field_selector_fields[] = {
	STRING("apiVersion"),
	STRING("fieldPath", REQUIRED),
};
SCHEMA(field_selector, NULL, NULL);

static const struct field resource_field_selector_fields[] = {
	STRING("containerName"),
	STRING("resource", REQUIRED),
	F("divisor", TYPE_QUANTITY),
};
SCHEMA(resource_field_selector, NULL, NULL);

static const struct field env_source_fields[] = {
	OBJECT("configMapKeyRef", key_selector),
	OBJECT("secretKeyRef", key_selector),
	OBJECT("fieldRef", field_selector),
	OBJECT("resourceFieldRef", resource_field_selector),
};
SCHEMA(env_source, NULL, NULL);

static const struct field env_var_fields[] = {
	STRING("name", REQUIRED),
	STRING("value"),
	OBJECT("valueFrom", env_source),
};
SCHEMA(env_var, check_env_var, NULL);

static const struct field optional_reference_fields[] = { STRING("name"), BOOL("optional") };
SCHEMA(optional_reference, NULL, NULL);

static const struct field env_from_fields[] = {
	STRING("prefix"),
	OBJECT("configMapRef", optional_reference),
	OBJECT("secretRef", optional_reference),
};
SCHEMA(env_from, check_env_from, NULL);

static const struct field container_port_fields[] = {
	STRING("name", RULE(RULE_PORT_NAME)), INT("containerPort", REQUIRED, MIN(1), MAX(65535)),
	INT("hostPort", MIN(0), MAX(65535)),  STRING("protocol", ONE_OF(PROTOCOLS), DEFAULT("TCP")),
	STRING("hostIP", RULE(RULE_IP)),
};
SCHEMA(container_port, NULL, NULL);

static const struct field resources_fields[] = { QUANTITIES("requests"), QUANTITIES("limits") };
SCHEMA(resources, NULL, NULL);

static const struct field volume_mount_fields[] = {
	STRING("name", REQUIRED),
	STRING("mountPath", REQUIRED),
	BOOL("readOnly"),
	STRING("subPath"),
	STRING("mountPropagation", ONE_OF(MOUNT_PROPAGATIONS)),
};
SCHEMA(volume_mount, NULL, NULL);

static const struct field exec_action_fields[] = { STRINGS("command") };
SCHEMA(exec_action, NULL, NULL);

static const struct field http_header_fields[] = { STRING("name", REQUIRED), STRING("value", REQUIRED) };
SCHEMA(http_header, NULL, NULL);

static const struct field http_get_fields[] = {
	STRING("path", DEFAULT("/")),
	F("port", TYPE_INT_OR_STRING, REQUIRED, RULE(RULE_PORT)),
	STRING("host"),
	STRING("scheme", ONE_OF(SCHEMES), DEFAULT("HTTP")),
	LIST("httpHeaders", http_header),
};
SCHEMA(http_get, NULL, NULL);

static const struct field tcp_socket_fields[] = {
	F("port", TYPE_INT_OR_STRING, REQUIRED, RULE(RULE_PORT)),
	STRING("host"),
};
SCHEMA(tcp_socket, NULL, NULL);

static const struct field sleep_action_fields[] = { INT("seconds", REQUIRED, MIN(0)) };
SCHEMA(sleep_action, NULL, NULL);

static const struct field probe_fields[] = {
	OBJECT("exec", exec_action),
	OBJECT("httpGet", http_get),
	OBJECT("tcpSocket", tcp_socket),
	INT("initialDelaySeconds", MIN(0)),
	INT("timeoutSeconds", MIN(1), DEFAULT_INT(1)),
	INT("periodSeconds", MIN(1), DEFAULT_INT(10)),
	INT("successThreshold", MIN(1), DEFAULT_INT(1)),
	INT("failureThreshold", MIN(1), DEFAULT_INT(3)),
	INT("terminationGracePeriodSeconds", MIN(1)),
};
static int check_probe(struct walk *w, const cJSON *probe)
{
	static const char *const types[] = { "exec", "httpGet", "tcpSocket", NULL };
	return exactly_one(w, probe, types, "handler type");
}
SCHEMA(probe, check_probe, NULL);

static const struct field lifecycle_handler_fields[] = {
	OBJECT("exec", exec_action),
	OBJECT("httpGet", http_get),
	OBJECT("tcpSocket", tcp_socket),
	OBJECT("sleep", sleep_action),
};
SCHEMA(lifecycle_handler, check_handler, NULL);

static const struct field lifecycle_fields[] = {
	OBJECT("postStart", lifecycle_handler),
	OBJECT("preStop", lifecycle_handler),
};
SCHEMA(lifecycle, NULL, NULL);

static const struct field capabilities_fields[] = { STRINGS("add"), STRINGS("drop") };
SCHEMA(capabilities, NULL, NULL);

static const struct field seccomp_profile_fields[] = {
	STRING("type", REQUIRED, ONE_OF(SECCOMP_TYPES)),
	STRING("localhostProfile"),
};
SCHEMA(seccomp_profile, NULL, NULL);

static const struct field container_security_fields[] = {
	INT("runAsUser", MIN(0)),
	INT("runAsGroup", MIN(0)),
	BOOL("runAsNonRoot"),
	BOOL("readOnlyRootFilesystem"),
	BOOL("privileged"),
	BOOL("allowPrivilegeEscalation"),
	OBJECT("capabilities", capabilities),
	OBJECT("seccompProfile", seccomp_profile),
};
SCHEMA(container_security, NULL, NULL);

static const struct field container_fields[] = {
	STRING("name", REQUIRED, RULE(RULE_DNS_LABEL)),
	STRING("image", REQUIRED),
	STRINGS("command"),
	STRINGS("args"),
	STRING("workingDir"),
	LIST("env", env_var),
	LIST("envFrom", env_from),
	LIST("ports", container_port),
	OBJECT("resources", resources),
	LIST("volumeMounts", volume_mount),
	OBJECT("livenessProbe", probe),
	OBJECT("readinessProbe", probe),
	OBJECT("startupProbe", probe),
	OBJECT("lifecycle", lifecycle),
	STRING("imagePullPolicy", ONE_OF(PULL_POLICIES)),
	OBJECT("securityContext", container_security),
	BOOL("stdin"),
	BOOL("stdinOnce"),
	BOOL("tty"),
	STRING("terminationMessagePath", DEFAULT("/dev/termination-log")),
	STRING("terminationMessagePolicy", ONE_OF(MESSAGE_POLICIES), DEFAULT("File")),
};
SCHEMA(container, NULL, default_pull_policy);

/* volumes */
static const struct field empty_dir_fields[] = {
	STRING("medium", ONE_OF(STORAGE_MEDIA)),
	F("sizeLimit", TYPE_QUANTITY),
};
SCHEMA(empty_dir, NULL, NULL);

static const struct field host_path_fields[] = {
	STRING("path", REQUIRED),
	STRING("type", ONE_OF(HOST_PATH_TYPES)),
};
SCHEMA(host_path, NULL, NULL);

static const struct field key_to_path_fields[] = {
	STRING("key", REQUIRED),
	STRING("path", REQUIRED),
	INT("mode", MIN(0), MAX(0777)),
};
SCHEMA(key_to_path, NULL, NULL);

static const struct field configmap_volume_fields[] = {
	STRING("name"),
	LIST("items", key_to_path),
	INT("defaultMode", MIN(0), MAX(0777), DEFAULT_INT(0644)),
	BOOL("optional"),
};
SCHEMA(configmap_volume, NULL, NULL);

static const struct field secret_volume_fields[] = {
	STRING("secretName"),
	LIST("items", key_to_path),
	INT("defaultMode", MIN(0), MAX(0777), DEFAULT_INT(0644)),
	BOOL("optional"),
};
SCHEMA(secret_volume, NULL, NULL);

static const struct field volume_fields[] = {
	STRING("name", REQUIRED, RULE(RULE_DNS_LABEL)), OBJECT("emptyDir", empty_dir),   OBJECT("hostPath", host_path),
	OBJECT("configMap", configmap_volume),          OBJECT("secret", secret_volume),
};
SCHEMA(volume, check_volume, NULL);

/* scheduling */
static const struct field node_requirement_fields[] = {
	STRING("key", REQUIRED),
	STRING("operator", REQUIRED, ONE_OF(NODE_OPERATORS)),
	STRINGS("values"),
};
SCHEMA(node_requirement, check_selector_requirement, NULL);

static const struct field node_selector_term_fields[] = {
	LIST("matchExpressions", node_requirement),
	LIST("matchFields", node_requirement),
};
SCHEMA(node_selector_term, NULL, NULL);

static const struct field node_selector_fields[] = { LIST("nodeSelectorTerms", node_selector_term, REQUIRED) };
SCHEMA(node_selector, NULL, NULL);

static const struct field preferred_node_term_fields[] = {
	INT("weight", REQUIRED, MIN(1), MAX(100)),
	OBJECT("preference", node_selector_term, REQUIRED),
};
SCHEMA(preferred_node_term, NULL, NULL);

static const struct field node_affinity_fields[] = {
	OBJECT("requiredDuringSchedulingIgnoredDuringExecution", node_selector),
	LIST("preferredDuringSchedulingIgnoredDuringExecution", preferred_node_term),
};
SCHEMA(node_affinity, NULL, NULL);

static const struct field pod_affinity_term_fields[] = {
	OBJECT("labelSelector", label_selector),
	OBJECT("namespaceSelector", label_selector),
	STRINGS("namespaces"),
	STRING("topologyKey", REQUIRED, RULE(RULE_QUALIFIED_NAME)),
};
SCHEMA(pod_affinity_term, NULL, NULL);

static const struct field weighted_pod_term_fields[] = {
	INT("weight", REQUIRED, MIN(1), MAX(100)),
	OBJECT("podAffinityTerm", pod_affinity_term, REQUIRED),
};
SCHEMA(weighted_pod_term, NULL, NULL);

static const struct field pod_affinity_fields[] = {
	LIST("requiredDuringSchedulingIgnoredDuringExecution", pod_affinity_term),
	LIST("preferredDuringSchedulingIgnoredDuringExecution", weighted_pod_term),
};
SCHEMA(pod_affinity, NULL, NULL);

static const struct field affinity_fields[] = {
	OBJECT("nodeAffinity", node_affinity),
	OBJECT("podAffinity", pod_affinity),
	OBJECT("podAntiAffinity", pod_affinity),
};
SCHEMA(affinity, NULL, NULL);

static const struct field toleration_fields[] = {
	STRING("key", RULE(RULE_QUALIFIED_NAME)),
	STRING("operator", ONE_OF(TOLERATION_OPERATORS)),
	STRING("value"),
	STRING("effect", ONE_OF(TAINT_EFFECTS)),
	INT("tolerationSeconds"),
};
SCHEMA(toleration, check_toleration, NULL);

static const struct field pod_security_fields[] = {
	INT("runAsUser", MIN(0)),
	INT("runAsGroup", MIN(0)),
	BOOL("runAsNonRoot"),
	INT("fsGroup", MIN(0)),
	STRING("fsGroupChangePolicy", ONE_OF(FS_GROUP_POLICIES)),
	F("supplementalGroups", TYPE_ARRAY, ELEMENT(TYPE_INT), MIN(0)),
	OBJECT("seccompProfile", seccomp_profile),
};
SCHEMA(pod_security, NULL, NULL);

static const struct field dns_option_fields[] = { STRING("name"), STRING("value") };
SCHEMA(dns_option, NULL, NULL);

static const struct field dns_config_fields[] = {
	STRINGS("nameservers", RULE(RULE_IP)),
	STRINGS("searches"),
	LIST("options", dns_option),
};
SCHEMA(dns_config, NULL, NULL);

static const struct field host_alias_fields[] = { STRING("ip", REQUIRED, RULE(RULE_IP)), STRINGS("hostnames") };
SCHEMA(host_alias, NULL, NULL);

static const struct field pod_spec_fields[] = {
	/* Bounded: names are checked pairwise for uniqueness, and no board runs more. */
	LIST("containers", container, REQUIRED, MAX(64)),
	LIST("initContainers", container, MAX(64)),
	LIST("volumes", volume, MAX(256)),
	STRING("restartPolicy", ONE_OF(RESTART_POLICIES)),
	INT("terminationGracePeriodSeconds", MIN(0), DEFAULT_INT(30)),
	INT("activeDeadlineSeconds", MIN(1)),
	STRING("dnsPolicy", ONE_OF(DNS_POLICIES), DEFAULT("ClusterFirst")),
	OBJECT("dnsConfig", dns_config),
	STRING_MAP("nodeSelector", RULE(RULE_LABELS)),
	STRING("nodeName", RULE(RULE_DNS_SUBDOMAIN)),
	STRING("serviceAccountName", RULE(RULE_DNS_SUBDOMAIN)),
	STRING("serviceAccount", RULE(RULE_DNS_SUBDOMAIN)),
	BOOL("automountServiceAccountToken"),
	BOOL("enableServiceLinks"),
	BOOL("hostNetwork"),
	BOOL("hostPID"),
	BOOL("hostIPC"),
	BOOL("shareProcessNamespace"),
	STRING("hostname", RULE(RULE_DNS_LABEL)),
	STRING("subdomain", RULE(RULE_DNS_LABEL)),
	LIST("hostAliases", host_alias),
	OBJECT("affinity", affinity),
	LIST("tolerations", toleration),
	INT("priority"),
	STRING("priorityClassName"),
	STRING("schedulerName", DEFAULT("default-scheduler")),
	OBJECT("securityContext", pod_security),
	LIST("imagePullSecrets", local_reference),
};
SCHEMA(pod_spec, check_pod_spec, NULL);

static const struct field pod_template_fields[] = {
	OBJECT("metadata", metadata),
	OBJECT("spec", pod_spec),
};
SCHEMA(pod_template, NULL, NULL);

/* pod status */
static const struct field waiting_state_fields[] = { STRING("reason"), STRING("message") };
SCHEMA(waiting_state, NULL, NULL);
static const struct field running_state_fields[] = { TIME("startedAt") };
SCHEMA(running_state, NULL, NULL);
static const struct field terminated_state_fields[] = {
	INT("exitCode", REQUIRED), INT("signal"),      STRING("reason"),      STRING("message"),
	TIME("startedAt"),         TIME("finishedAt"), STRING("containerID"),
};
SCHEMA(terminated_state, NULL, NULL);

static const struct field container_state_fields[] = {
	OBJECT("waiting", waiting_state),
	OBJECT("running", running_state),
	OBJECT("terminated", terminated_state),
};
SCHEMA(container_state, NULL, NULL);

static const struct field container_status_fields[] = {
	STRING("name", REQUIRED),
	OBJECT("state", container_state),
	OBJECT("lastState", container_state),
	BOOL("ready"),
	INT("restartCount", MIN(0)),
	STRING("image"),
	STRING("imageID"),
	STRING("containerID"),
	BOOL("started"),
};
SCHEMA(container_status, NULL, NULL);

static const struct field ip_entry_fields[] = { STRING("ip", REQUIRED, RULE(RULE_IP)) };
SCHEMA(ip_entry, NULL, NULL);

static const struct field pod_status_fields[] = {
	STRING("phase", ONE_OF(POD_PHASES)),
	LIST("conditions", condition),
	STRING("message"),
	STRING("reason"),
	STRING("hostIP", RULE(RULE_IP)),
	LIST("hostIPs", ip_entry),
	STRING("podIP", RULE(RULE_IP)),
	LIST("podIPs", ip_entry),
	TIME("startTime"),
	LIST("containerStatuses", container_status),
	LIST("initContainerStatuses", container_status),
	STRING("qosClass", ONE_OF(QOS_CLASSES)),
	STRING("nominatedNodeName"),
};
SCHEMA(pod_status, NULL, NULL);

/* the top level of every kind */
#define TOP_FIELDS STRING("apiVersion", REQUIRED), STRING("kind", REQUIRED), OBJECT("metadata", metadata, REQUIRED)
#define KIND_SCHEMA(schema_name, check_hook, defaults_hook, rule)                                                      \
	static const struct schema schema_name = { schema_name##_fields, ARRAY_SIZE(schema_name##_fields), check_hook, \
		                                   defaults_hook, rule }

static const struct field pod_kind_fields[] = {
	TOP_FIELDS,
	OBJECT("spec", pod_spec, REQUIRED),
	OBJECT("status", pod_status),
};
KIND_SCHEMA(pod_kind, NULL, default_pod, RULE_DNS_SUBDOMAIN);

/* workloads */
static const struct field deployment_rolling_update_fields[] = {
	F("maxSurge", TYPE_INT_OR_STRING, RULE(RULE_PERCENT), DEFAULT("25%")),
	F("maxUnavailable", TYPE_INT_OR_STRING, RULE(RULE_PERCENT), DEFAULT("25%")),
};
SCHEMA(deployment_rolling_update, NULL, NULL);

static const struct field deployment_strategy_fields[] = {
	STRING("type", ONE_OF(DEPLOYMENT_STRATEGIES)),
	OBJECT("rollingUpdate", deployment_rolling_update),
};
SCHEMA(deployment_strategy, NULL, default_rolling_update);

static const struct field deployment_spec_fields[] = {
	INT("replicas", MIN(0), DEFAULT_INT(1)),
	OBJECT("selector", label_selector),
	OBJECT("template", pod_template),
	OBJECT("strategy", deployment_strategy, DEFAULT_EMPTY),
	INT("minReadySeconds", MIN(0)),
	INT("revisionHistoryLimit", MIN(0), DEFAULT_INT(10)),
	INT("progressDeadlineSeconds", MIN(1), DEFAULT_INT(600)),
	BOOL("paused"),
};
SCHEMA(deployment_spec, check_deployment_spec, default_template_restart_policy);

static const struct field deployment_status_fields[] = {
	INT("observedGeneration", MIN(0)),  INT("replicas", MIN(0)),          INT("updatedReplicas", MIN(0)),
	INT("readyReplicas", MIN(0)),       INT("availableReplicas", MIN(0)), INT("unavailableReplicas", MIN(0)),
	INT("terminatingReplicas", MIN(0)), LIST("conditions", condition),    INT("collisionCount", MIN(0)),
};
SCHEMA(deployment_status, NULL, NULL);

static const struct field deployment_kind_fields[] = {
	TOP_FIELDS,
	OBJECT("spec", deployment_spec, REQUIRED),
	OBJECT("status", deployment_status),
};
KIND_SCHEMA(deployment_kind, NULL, NULL, RULE_DNS_SUBDOMAIN);

static const struct field replicaset_spec_fields[] = {
	INT("replicas", MIN(0), DEFAULT_INT(1)),
	INT("minReadySeconds", MIN(0)),
	OBJECT("selector", label_selector),
	OBJECT("template", pod_template),
};
SCHEMA(replicaset_spec, check_replicaset_spec, default_template_restart_policy);

static const struct field replicaset_status_fields[] = {
	INT("replicas", MIN(0)),          INT("fullyLabeledReplicas", MIN(0)), INT("readyReplicas", MIN(0)),
	INT("availableReplicas", MIN(0)), INT("terminatingReplicas", MIN(0)),  INT("observedGeneration", MIN(0)),
	LIST("conditions", condition),
};
SCHEMA(replicaset_status, NULL, NULL);

static const struct field replicaset_kind_fields[] = {
	TOP_FIELDS,
	OBJECT("spec", replicaset_spec, REQUIRED),
	OBJECT("status", replicaset_status),
};
KIND_SCHEMA(replicaset_kind, NULL, NULL, RULE_DNS_SUBDOMAIN);

static const struct field daemonset_rolling_update_fields[] = {
	F("maxUnavailable", TYPE_INT_OR_STRING, RULE(RULE_PERCENT), DEFAULT_INT(1)),
	F("maxSurge", TYPE_INT_OR_STRING, RULE(RULE_PERCENT), DEFAULT_INT(0)),
};
SCHEMA(daemonset_rolling_update, NULL, NULL);

static const struct field daemonset_strategy_fields[] = {
	STRING("type", ONE_OF(DAEMONSET_STRATEGIES)),
	OBJECT("rollingUpdate", daemonset_rolling_update),
};
SCHEMA(daemonset_strategy, NULL, default_rolling_update);

static const struct field daemonset_spec_fields[] = {
	OBJECT("selector", label_selector),
	OBJECT("template", pod_template),
	OBJECT("updateStrategy", daemonset_strategy, DEFAULT_EMPTY),
	INT("minReadySeconds", MIN(0)),
	INT("revisionHistoryLimit", MIN(0), DEFAULT_INT(10)),
};
SCHEMA(daemonset_spec, check_daemonset_spec, default_template_restart_policy);

static const struct field daemonset_status_fields[] = {
	INT("currentNumberScheduled", MIN(0)), INT("numberMisscheduled", MIN(0)),
	INT("desiredNumberScheduled", MIN(0)), INT("numberReady", MIN(0)),
	INT("observedGeneration", MIN(0)),     INT("updatedNumberScheduled", MIN(0)),
	INT("numberAvailable", MIN(0)),        INT("numberUnavailable", MIN(0)),
	INT("collisionCount", MIN(0)),         LIST("conditions", condition),
};
SCHEMA(daemonset_status, NULL, NULL);

static const struct field daemonset_kind_fields[] = {
	TOP_FIELDS,
	OBJECT("spec", daemonset_spec, REQUIRED),
	OBJECT("status", daemonset_status),
};
KIND_SCHEMA(daemonset_kind, NULL, NULL, RULE_DNS_SUBDOMAIN);

static const struct field job_spec_fields[] = {
	INT("parallelism", MIN(0), DEFAULT_INT(1)),
	INT("completions", MIN(0)),
	INT("backoffLimit", MIN(0), DEFAULT_INT(6)),
	INT("activeDeadlineSeconds", MIN(1)),
	INT("ttlSecondsAfterFinished", MIN(0)),
	STRING("completionMode", ONE_OF(COMPLETION_MODES), DEFAULT("NonIndexed")),
	OBJECT("selector", label_selector),
	BOOL("manualSelector"),
	OBJECT("template", pod_template, REQUIRED),
	BOOL("suspend"),
};
SCHEMA(job_spec, check_job_spec, default_job_spec);

static const struct field uncounted_pods_fields[] = { STRINGS("succeeded"), STRINGS("failed") };
SCHEMA(uncounted_pods, NULL, NULL);

static const struct field job_status_fields[] = {
	INT("active", MIN(0)),
	INT("succeeded", MIN(0)),
	INT("failed", MIN(0)),
	INT("ready", MIN(0)),
	INT("terminating", MIN(0)),
	TIME("startTime"),
	TIME("completionTime"),
	LIST("conditions", condition),
	STRING("completedIndexes"),
	STRING("failedIndexes"),
	OBJECT("uncountedTerminatedPods", uncounted_pods),
};
SCHEMA(job_status, NULL, NULL);

static const struct field job_kind_fields[] = {
	TOP_FIELDS,
	OBJECT("spec", job_spec, REQUIRED),
	OBJECT("status", job_status),
};
KIND_SCHEMA(job_kind, NULL, NULL, RULE_DNS_SUBDOMAIN);

/* services and endpoints */
static const struct field service_port_fields[] = {
	STRING("name", RULE(RULE_DNS_LABEL)),
	INT("port", REQUIRED, MIN(1), MAX(65535)),
	F("targetPort", TYPE_INT_OR_STRING, RULE(RULE_PORT)),
	INT("nodePort", MIN(0), MAX(65535)),
	STRING("protocol", ONE_OF(PROTOCOLS), DEFAULT("TCP")),
	STRING("appProtocol"),
};
SCHEMA(service_port, NULL, default_service_port);

static const struct field client_ip_config_fields[] = { INT("timeoutSeconds", MIN(1), MAX(86400)) };
SCHEMA(client_ip_config, NULL, NULL);
static const struct field session_affinity_config_fields[] = { OBJECT("clientIP", client_ip_config) };
SCHEMA(session_affinity_config, NULL, NULL);

static const struct field service_spec_fields[] = {
	STRING_MAP("selector", RULE(RULE_LABELS)),
	LIST("ports", service_port, MAX(256)),
	STRING("type", ONE_OF(SERVICE_TYPES), DEFAULT("ClusterIP")),
	STRING("clusterIP", RULE(RULE_CLUSTER_IP)),
	STRINGS("clusterIPs", RULE(RULE_CLUSTER_IP)),
	STRING("sessionAffinity", ONE_OF(SESSION_AFFINITIES), DEFAULT("None")),
	OBJECT("sessionAffinityConfig", session_affinity_config),
	STRING("externalTrafficPolicy", ONE_OF(TRAFFIC_POLICIES)),
	STRING("internalTrafficPolicy", ONE_OF(TRAFFIC_POLICIES)),
	F("ipFamilies", TYPE_ARRAY, ELEMENT(TYPE_STRING), ONE_OF(IP_FAMILIES)),
	STRING("ipFamilyPolicy", ONE_OF(IP_FAMILY_POLICIES)),
	BOOL("publishNotReadyAddresses"),
};
SCHEMA(service_spec, check_service_spec, NULL);

static const struct field load_balancer_status_fields[] = { F("ingress", TYPE_ARRAY, ELEMENT(TYPE_ANY)) };
SCHEMA(load_balancer_status, NULL, NULL);
static const struct field service_status_fields[] = {
	OBJECT("loadBalancer", load_balancer_status),
	LIST("conditions", condition),
};
SCHEMA(service_status, NULL, NULL);

static const struct field service_kind_fields[] = {
	TOP_FIELDS,
	OBJECT("spec", service_spec, REQUIRED),
	OBJECT("status", service_status),
};
KIND_SCHEMA(service_kind, NULL, NULL, RULE_DNS_LABEL);

static const struct field endpoint_address_fields[] = {
	STRING("ip", REQUIRED, RULE(RULE_IP)),
	STRING("hostname", RULE(RULE_DNS_LABEL)),
	STRING("nodeName"),
	OBJECT("targetRef", object_reference),
};
SCHEMA(endpoint_address, NULL, NULL);

static const struct field endpoint_port_fields[] = {
	STRING("name"),
	INT("port", REQUIRED, MIN(1), MAX(65535)),
	STRING("protocol", ONE_OF(PROTOCOLS), DEFAULT("TCP")),
	STRING("appProtocol"),
};
SCHEMA(endpoint_port, NULL, NULL);

static const struct field endpoint_subset_fields[] = {
	LIST("addresses", endpoint_address),
	LIST("notReadyAddresses", endpoint_address),
	LIST("ports", endpoint_port),
};
SCHEMA(endpoint_subset, NULL, NULL);

static const struct field endpoints_kind_fields[] = { TOP_FIELDS, LIST("subsets", endpoint_subset) };
KIND_SCHEMA(endpoints_kind, NULL, NULL, RULE_DNS_SUBDOMAIN);

/* configuration */
static const struct field configmap_kind_fields[] = {
	TOP_FIELDS,
	STRING_MAP("data", RULE(RULE_CONFIG_KEYS)),
	STRING_MAP("binaryData", RULE(RULE_BASE64_DATA)),
	BOOL("immutable"),
};
KIND_SCHEMA(configmap_kind, check_configmap, NULL, RULE_DNS_SUBDOMAIN);

static const struct field secret_kind_fields[] = {
	TOP_FIELDS,
	STRING_MAP("data", RULE(RULE_BASE64_DATA)),
	STRING_MAP("stringData"),
	STRING("type", DEFAULT("Opaque")),
	BOOL("immutable"),
};
KIND_SCHEMA(secret_kind, check_secret, default_secret, RULE_DNS_SUBDOMAIN);

/* events */
static const struct field event_source_fields[] = { STRING("component"), STRING("host") };
SCHEMA(event_source, NULL, NULL);
static const struct field event_series_fields[] = { INT("count", MIN(0)), TIME("lastObservedTime") };
SCHEMA(event_series, NULL, NULL);

static const struct field event_kind_fields[] = {
	TOP_FIELDS,
	OBJECT("involvedObject", object_reference, REQUIRED),
	STRING("reason"),
	STRING("message"),
	OBJECT("source", event_source),
	TIME("firstTimestamp"),
	TIME("lastTimestamp"),
	INT("count", MIN(0)),
	STRING("type", ONE_OF(EVENT_TYPES)),
	TIME("eventTime"),
	OBJECT("series", event_series),
	STRING("action"),
	OBJECT("related", object_reference),
	STRING("reportingComponent"),
	STRING("reportingInstance"),
};
KIND_SCHEMA(event_kind, NULL, NULL, RULE_DNS_SUBDOMAIN);

/* nodes and namespaces */
static const struct field taint_fields[] = {
	STRING("key", REQUIRED, RULE(RULE_QUALIFIED_NAME)),
	STRING("value"),
	STRING("effect", REQUIRED, ONE_OF(TAINT_EFFECTS)),
	TIME("timeAdded"),
};
SCHEMA(taint, NULL, NULL);

static const struct field node_spec_fields[] = {
	STRING("podCIDR"), STRINGS("podCIDRs"), BOOL("unschedulable"), LIST("taints", taint), STRING("providerID"),
};
SCHEMA(node_spec, NULL, NULL);

static const struct field node_address_fields[] = {
	STRING("type", REQUIRED, ONE_OF(NODE_ADDRESS_TYPES)),
	STRING("address", REQUIRED),
};
SCHEMA(node_address, NULL, NULL);

static const struct field daemon_endpoint_fields[] = { INT("Port", REQUIRED, MIN(0), MAX(65535)) };
SCHEMA(daemon_endpoint, NULL, NULL);
static const struct field daemon_endpoints_fields[] = { OBJECT("kubeletEndpoint", daemon_endpoint) };
SCHEMA(daemon_endpoints, NULL, NULL);

static const struct field node_info_fields[] = {
	STRING("architecture"),     STRING("operatingSystem"), STRING("kernelVersion"),
	STRING("osImage"),          STRING("kubeletVersion"),  STRING("machineID"),
	STRING("systemUUID"),       STRING("bootID"),          STRING("containerRuntimeVersion"),
	STRING("kubeProxyVersion"),
};
SCHEMA(node_info, NULL, NULL);

static const struct field container_image_fields[] = { STRINGS("names"), INT("sizeBytes", MIN(0)) };
SCHEMA(container_image, NULL, NULL);

static const struct field node_status_fields[] = {
	QUANTITIES("capacity"),
	QUANTITIES("allocatable"),
	LIST("conditions", condition),
	LIST("addresses", node_address),
	OBJECT("daemonEndpoints", daemon_endpoints),
	OBJECT("nodeInfo", node_info),
	LIST("images", container_image),
};
SCHEMA(node_status, NULL, NULL);

static const struct field node_kind_fields[] = {
	TOP_FIELDS,
	OBJECT("spec", node_spec),
	OBJECT("status", node_status),
};
KIND_SCHEMA(node_kind, NULL, NULL, RULE_DNS_SUBDOMAIN);

static const struct field namespace_spec_fields[] = { STRINGS("finalizers") };
SCHEMA(namespace_spec, NULL, NULL);
static const struct field namespace_status_fields[] = {
	STRING("phase", ONE_OF(NAMESPACE_PHASES)),
	LIST("conditions", condition),
};
SCHEMA(namespace_status, NULL, NULL);

static const struct field namespace_kind_fields[] = {
	TOP_FIELDS,
	OBJECT("spec", namespace_spec),
	OBJECT("status", namespace_status),
};
KIND_SCHEMA(namespace_kind, NULL, NULL, RULE_DNS_LABEL);

/* autoscaling and coordination */
static const struct field scale_target_fields[] = {
	STRING("apiVersion"),
	STRING("kind", REQUIRED),
	STRING("name", REQUIRED),
};
SCHEMA(scale_target, NULL, NULL);

static const struct field metric_target_fields[] = {
	STRING("type", REQUIRED, ONE_OF(METRIC_TARGET_TYPES)),
	INT("averageUtilization", MIN(1)),
	F("averageValue", TYPE_QUANTITY),
	F("value", TYPE_QUANTITY),
};
SCHEMA(metric_target, check_metric_target, NULL);

static const struct field resource_metric_fields[] = {
	STRING("name", REQUIRED),
	OBJECT("target", metric_target, REQUIRED),
};
SCHEMA(resource_metric, NULL, NULL);

static const struct field metric_fields[] = {
	STRING("type", REQUIRED, ONE_OF(METRIC_TYPES)),
	OBJECT("resource", resource_metric, REQUIRED),
};
SCHEMA(metric, NULL, NULL);

static const struct field scaling_policy_fields[] = {
	STRING("type", REQUIRED, ONE_OF(SCALING_POLICY_TYPES)),
	INT("value", REQUIRED, MIN(1)),
	INT("periodSeconds", REQUIRED, MIN(1), MAX(1800)),
};
SCHEMA(scaling_policy, NULL, NULL);

static const struct field scaling_rules_fields[] = {
	INT("stabilizationWindowSeconds", MIN(0), MAX(3600)),
	STRING("selectPolicy", ONE_OF(SELECT_POLICIES)),
	LIST("policies", scaling_policy),
};
SCHEMA(scaling_rules, NULL, NULL);

static const struct field scaling_behavior_fields[] = {
	OBJECT("scaleUp", scaling_rules),
	OBJECT("scaleDown", scaling_rules),
};
SCHEMA(scaling_behavior, NULL, NULL);

static const struct field hpa_spec_fields[] = {
	OBJECT("scaleTargetRef", scale_target, REQUIRED),
	INT("minReplicas", MIN(1), DEFAULT_INT(1)),
	INT("maxReplicas", REQUIRED, MIN(1)),
	LIST("metrics", metric),
	OBJECT("behavior", scaling_behavior),
};
SCHEMA(hpa_spec, check_hpa_spec, NULL);

static const struct field metric_value_fields[] = {
	INT("averageUtilization", MIN(0)),
	F("averageValue", TYPE_QUANTITY),
	F("value", TYPE_QUANTITY),
};
SCHEMA(metric_value, NULL, NULL);
static const struct field resource_metric_status_fields[] = {
	STRING("name", REQUIRED),
	OBJECT("current", metric_value, REQUIRED),
};
SCHEMA(resource_metric_status, NULL, NULL);
static const struct field metric_status_fields[] = {
	STRING("type", REQUIRED, ONE_OF(METRIC_TYPES)),
	OBJECT("resource", resource_metric_status),
};
SCHEMA(metric_status, NULL, NULL);

static const struct field hpa_status_fields[] = {
	INT("observedGeneration", MIN(0)),     TIME("lastScaleTime"),
	INT("currentReplicas", MIN(0)),        INT("desiredReplicas", MIN(0)),
	LIST("currentMetrics", metric_status), LIST("conditions", condition),
};
SCHEMA(hpa_status, NULL, NULL);

static const struct field hpa_kind_fields[] = {
	TOP_FIELDS,
	OBJECT("spec", hpa_spec, REQUIRED),
	OBJECT("status", hpa_status),
};
KIND_SCHEMA(hpa_kind, NULL, NULL, RULE_DNS_SUBDOMAIN);

static const struct field lease_spec_fields[] = {
	STRING("holderIdentity"), INT("leaseDurationSeconds", MIN(1)), TIME("acquireTime"),
	TIME("renewTime"),        INT("leaseTransitions", MIN(0)),
};
SCHEMA(lease_spec, NULL, NULL);

static const struct field lease_kind_fields[] = { TOP_FIELDS, OBJECT("spec", lease_spec) };
KIND_SCHEMA(lease_kind, NULL, NULL, RULE_DNS_SUBDOMAIN);

/* ---- kinds ---- */

static const struct kind kinds[] = {
	{ "Namespace", "", "v1", "v1", "namespaces", "NamespaceList", false, false, &namespace_kind },
	{ "Node", "", "v1", "v1", "nodes", "NodeList", false, true, &node_kind },
	{ "Pod", "", "v1", "v1", "pods", "PodList", true, true, &pod_kind },
	{ "ReplicaSet", "apps", "v1", "apps/v1", "replicasets", "ReplicaSetList", true, true, &replicaset_kind },
	{ "Deployment", "apps", "v1", "apps/v1", "deployments", "DeploymentList", true, true, &deployment_kind },
	{ "DaemonSet", "apps", "v1", "apps/v1", "daemonsets", "DaemonSetList", true, true, &daemonset_kind },
	{ "Job", "batch", "v1", "batch/v1", "jobs", "JobList", true, true, &job_kind },
	{ "Service", "", "v1", "v1", "services", "ServiceList", true, true, &service_kind },
	{ "Endpoints", "", "v1", "v1", "endpoints", "EndpointsList", true, false, &endpoints_kind },
	{ "ConfigMap", "", "v1", "v1", "configmaps", "ConfigMapList", true, false, &configmap_kind },
	{ "Secret", "", "v1", "v1", "secrets", "SecretList", true, false, &secret_kind },
	{ "Event", "", "v1", "v1", "events", "EventList", true, false, &event_kind },
	{ "HorizontalPodAutoscaler", "autoscaling", "v2", "autoscaling/v2", "horizontalpodautoscalers",
	  "HorizontalPodAutoscalerList", true, true, &hpa_kind },
	{ "Lease", "coordination.k8s.io", "v1", "coordination.k8s.io/v1", "leases", "LeaseList", true, false,
	  &lease_kind },
};

const struct kind *kind_lookup(const char *api_version, const char *kind_name)
{
	if (!api_version || !kind_name)
		return NULL;
	for (size_t i = 0; i < ARRAY_SIZE(kinds); i++)
		if (strcmp(kinds[i].api_version, api_version) == 0 && strcmp(kinds[i].name, kind_name) == 0)
			return &kinds[i];
	return NULL;
}

const struct kind *kind_by_resource(const char *group, const char *version, const char *resource)
{
	if (!group || !version || !resource)
		return NULL;
	for (size_t i = 0; i < ARRAY_SIZE(kinds); i++)
		if (strcmp(kinds[i].group, group) == 0 && strcmp(kinds[i].version, version) == 0 &&
		    strcmp(kinds[i].resource, resource) == 0)
			return &kinds[i];
	return NULL;
}

size_t kind_count(void)
{
	return ARRAY_SIZE(kinds);
}

const struct kind *kind_at(size_t index)
{
	return index < ARRAY_SIZE(kinds) ? &kinds[index] : NULL;
}

/* ---- parsing ---- */

#define STRINGIFY(x) #x
#define DEPTH_TEXT_OF(x) STRINGIFY(x)
#define DEPTH_TEXT DEPTH_TEXT_OF(OBJECT_MAX_DEPTH)

/* The nesting of the text, measured before cJSON (which recurses per level) sees it; also
 * refuses "\u0000", which a C string would silently cut short. Returns the byte offset of
 * the problem, or `length` when there is none. */
static size_t scan_text(const char *text, size_t length, const char **ret_problem)
{
	size_t depth = 0;
	bool in_string = false;
	for (size_t i = 0; i < length; i++) {
		char c = text[i];
		if (in_string) {
			if (c == '\\') {
				if (i + 5 < length && memcmp(text + i + 1, "u0000", 5) == 0) {
					*ret_problem = "NUL characters are not allowed";
					return i;
				}
				i++;
			} else if (c == '"') {
				in_string = false;
			}
		} else if (c == '"') {
			in_string = true;
		} else if (c == '{' || c == '[') {
			if (++depth > OBJECT_MAX_DEPTH) {
				*ret_problem = "nested deeper than " DEPTH_TEXT " levels";
				return i;
			}
		} else if ((c == '}' || c == ']') && depth > 0) {
			depth--;
		}
	}
	return length;
}

int object_parse(const char *text, size_t length, cJSON **ret_object, struct error *err)
{
	const char *problem = NULL;
	size_t at = scan_text(text, length, &problem);
	if (problem)
		return error_set(err, EINVAL, "invalid JSON at byte %zu: %s", at, problem);
	if (length == 0)
		return error_set(err, EINVAL, "invalid JSON at byte 0: empty body");
	const char *end = NULL;
	cJSON *object = cJSON_ParseWithLengthOpts(text, length, &end, false);
	if (!object) {
		size_t offset = end && end >= text && end <= text + length ? (size_t)(end - text) : 0;
		return error_set(err, EINVAL, "invalid JSON at byte %zu", offset);
	}
	/* cJSON stops after the first value; anything but white space after it is an error. */
	for (const char *p = end; p && p < text + length; p++) {
		if (*p != ' ' && *p != '\t' && *p != '\r' && *p != '\n' && *p != '\0') {
			cJSON_Delete(object);
			return error_set(err, EINVAL, "invalid JSON at byte %zu: data after the top-level value",
			                 (size_t)(p - text));
		}
	}
	if (!cJSON_IsObject(object)) {
		cJSON_Delete(object);
		return error_set(err, EINVAL, "invalid JSON at byte 0: the top level must be an object");
	}
	*ret_object = object;
	return 0;
}

/* ---- defaults and validation of a whole object ---- */

void object_apply_defaults(const struct kind *kind, cJSON *object)
{
	if (kind && cJSON_IsObject(object))
		default_object(kind->schema, object);
}

static int check_identity(struct walk *w, const struct kind *kind, const cJSON *object)
{
	const cJSON *metadata = member(object, "metadata");
	const char *name = string_member(metadata, "name");
	const char *generate_name = string_member(metadata, "generateName");
	const char *namespace = string_member(metadata, "namespace");
	if (!name || !*name) {
		if (!generate_name || !*generate_name)
			return walk_fail_at(w, "metadata.name", "Required value: name or generateName is required");
		name = NULL;
	}
	if (name) {
		const char *problem = NULL;
		size_t limit = kind->schema->name_rule == RULE_DNS_LABEL ? 63 : 253;
		if (strlen(name) > limit)
			problem = limit == 63 ? "must be no more than 63 characters"
			                      : "must be no more than 253 characters";
		else if (strcmp(kind->name, "Service") == 0)
			problem = valid_dns1035_label(name) ? NULL : DNS1035_TEXT;
		else if (kind->schema->name_rule == RULE_DNS_LABEL)
			problem = object_valid_dns_label(name) ? NULL : DNS_LABEL_TEXT;
		else
			problem = object_valid_dns_subdomain(name) ? NULL : DNS_SUBDOMAIN_TEXT;
		if (problem)
			return walk_fail_at(w, "metadata.name", "Invalid value: \"%.64s\": %s", name, problem);
	}
	if (!kind->namespaced && member(metadata, "namespace") && namespace && *namespace)
		return walk_fail_at(w, "metadata.namespace",
		                    "Forbidden: not allowed on this type (%s is cluster-scoped)", kind->name);
	return 0;
}

int object_validate(const struct kind *kind, const cJSON *object, struct error *err)
{
	struct walk w = { .err = err };
	if (!kind)
		return error_set(err, EINVAL, "unknown kind");
	if (!cJSON_IsObject(object))
		return error_set(err, EINVAL, "the object must be a JSON object");
	const char *api_version = string_member(object, "apiVersion");
	const char *kind_name = string_member(object, "kind");
	if (api_version && strcmp(api_version, kind->api_version) != 0)
		return walk_fail_at(&w, "apiVersion", "Invalid value: \"%.64s\": must be \"%s\"", api_version,
		                    kind->api_version);
	if (kind_name && strcmp(kind_name, kind->name) != 0)
		return walk_fail_at(&w, "kind", "Invalid value: \"%.64s\": must be \"%s\"", kind_name, kind->name);
	int r = check_object(&w, kind->schema, object);
	if (r < 0)
		return r;
	return check_identity(&w, kind, object);
}

int object_validate_update(const struct kind *kind, const cJSON *old, const cJSON *new, struct error *err)
{
	static const struct {
		const char *kind, *field;
	} immutable[] = {
		{ "Deployment", "selector" }, { "ReplicaSet", "selector" }, { "DaemonSet", "selector" },
		{ "Job", "selector" },        { "Job", "template" },        { "Job", "completionMode" },
	};
	const cJSON *old_spec = member(old, "spec"), *new_spec = member(new, "spec");
	for (size_t i = 0; i < ARRAY_SIZE(immutable); i++) {
		if (strcmp(kind->name, immutable[i].kind) != 0)
			continue;
		const cJSON *a = member(old_spec, immutable[i].field), *b = member(new_spec, immutable[i].field);
		if (!a && !b)
			continue;
		if (a && b && cJSON_Compare(a, b, true))
			continue;
		char *text = b ? cJSON_PrintUnformatted(b) : xstrdup("null");
		char field[64];
		snprintf(field, sizeof(field), "spec.%s", immutable[i].field);
		int r = error_set_field(err, EINVAL, field, "Invalid value: %.160s%s: field is immutable", text,
		                        strlen(text) > 160 ? "..." : "");
		free(text);
		return r;
	}
	return 0;
}

/* ---- accessors ---- */

const char *object_name(const cJSON *object)
{
	return string_member(cJSON_GetObjectItemCaseSensitive(object, "metadata"), "name");
}

const char *object_namespace(const cJSON *object)
{
	return string_member(cJSON_GetObjectItemCaseSensitive(object, "metadata"), "namespace");
}

const char *object_string_at(const cJSON *object, const char *dotted_path)
{
	char key[256];
	const cJSON *at = object;
	if (!dotted_path)
		return NULL;
	for (const char *part = dotted_path; at;) {
		const char *dot = strchr(part, '.');
		size_t length = dot ? (size_t)(dot - part) : strlen(part);
		if (length >= sizeof(key))
			return NULL;
		memcpy(key, part, length);
		key[length] = '\0';
		at = cJSON_IsObject(at) ? cJSON_GetObjectItemCaseSensitive(at, key) : NULL;
		if (!dot)
			break;
		part = dot + 1;
	}
	return cJSON_IsString(at) ? at->valuestring : NULL;
}

cJSON *object_metadata(cJSON *object)
{
	cJSON *metadata = cJSON_GetObjectItemCaseSensitive(object, "metadata");
	if (!metadata || cJSON_IsNull(metadata)) {
		metadata = cJSON_CreateObject();
		set_member(object, "metadata", metadata);
	}
	/* A metadata of the wrong type is returned as it is, for object_validate to report. */
	return metadata;
}

/* ---- merge patch ---- */

static int merge(cJSON *target, const cJSON *patch, int depth, struct error *err)
{
	if (depth > OBJECT_MAX_DEPTH)
		return error_set(err, EINVAL, "merge patch nested deeper than %d levels", OBJECT_MAX_DEPTH);
	const cJSON *item;
	cJSON_ArrayForEach(item, patch)
	{
		if (cJSON_IsNull(item)) {
			cJSON_DeleteItemFromObjectCaseSensitive(target, item->string);
			continue;
		}
		cJSON *existing = cJSON_GetObjectItemCaseSensitive(target, item->string);
		if (cJSON_IsObject(item)) {
			/* A member that is not an object becomes one; nulls inside the patch are
			 * dropped either way, as RFC 7386 merges into {} in that case. */
			if (!cJSON_IsObject(existing)) {
				existing = cJSON_CreateObject();
				set_member(target, item->string, existing);
			}
			int r = merge(existing, item, depth + 1, err);
			if (r < 0)
				return r;
		} else {
			set_member(target, item->string, cJSON_Duplicate(item, true));
		}
	}
	return 0;
}

int object_merge_patch(cJSON *target, const cJSON *patch, struct error *err)
{
	if (!cJSON_IsObject(patch))
		return error_set(err, EINVAL, "a merge patch must be a JSON object");
	if (!cJSON_IsObject(target))
		return error_set(err, EINVAL, "a merge patch applies to a JSON object");
	return merge(target, patch, 1, err);
}

cJSON *object_event_new(const struct object_event *e)
{
	uint32_t suffix = 0;
	if (getrandom(&suffix, sizeof(suffix), 0) != sizeof(suffix))
		suffix = (uint32_t)clock_monotonic_us();
	char name[300];
	snprintf(name, sizeof(name), "%.200s.%08x", e->name ? e->name : "object", suffix);
	cJSON *event = cJSON_CreateObject();
	cJSON_AddStringToObject(event, "apiVersion", "v1");
	cJSON_AddStringToObject(event, "kind", "Event");
	cJSON *metadata = cJSON_AddObjectToObject(event, "metadata");
	cJSON_AddStringToObject(metadata, "name", name);
	cJSON_AddStringToObject(metadata, "namespace", e->namespace);
	cJSON_AddStringToObject(metadata, "creationTimestamp", e->now);
	cJSON *involved = cJSON_AddObjectToObject(event, "involvedObject");
	const char *const keys[] = { "apiVersion", "kind", "namespace", "name", "uid", "fieldPath" };
	const char *const values[] = { e->api_version, e->kind, e->object_namespace, e->name, e->uid, e->field_path };
	for (size_t i = 0; i < ARRAY_SIZE(keys); i++)
		if (values[i] && values[i][0])
			cJSON_AddStringToObject(involved, keys[i], values[i]);
	cJSON_AddStringToObject(event, "reason", e->reason);
	cJSON_AddStringToObject(event, "message", e->message);
	cJSON_AddStringToObject(event, "type", e->type);
	cJSON_AddNumberToObject(event, "count", 1);
	cJSON_AddStringToObject(event, "firstTimestamp", e->now);
	cJSON_AddStringToObject(event, "lastTimestamp", e->now);
	cJSON *source = cJSON_AddObjectToObject(event, "source");
	cJSON_AddStringToObject(source, "component", e->component);
	if (e->host)
		cJSON_AddStringToObject(source, "host", e->host);
	return event;
}

void object_new_uid(char out[37])
{
	uint8_t b[16];
	if (getrandom(b, sizeof(b), 0) != (ssize_t)sizeof(b))
		for (size_t i = 0; i < sizeof(b); i++)
			b[i] = (uint8_t)(clock_monotonic_us() >> (i % 8));
	b[6] = (uint8_t)((b[6] & 0x0f) | 0x40);
	b[8] = (uint8_t)((b[8] & 0x3f) | 0x80);
	snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1], b[2],
	         b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]);
}

void object_random_suffix(char out[6])
{
	static const char alphabet[] = "bcdfghjklmnpqrstvwxz2456789";
	uint8_t b[5];
	if (getrandom(b, sizeof(b), 0) != (ssize_t)sizeof(b))
		for (size_t i = 0; i < sizeof(b); i++)
			b[i] = (uint8_t)(clock_monotonic_us() >> (3 * i));
	for (int i = 0; i < 5; i++)
		out[i] = alphabet[b[i] % (sizeof(alphabet) - 1)];
	out[5] = '\0';
}

bool object_spec_equal(const cJSON *a, const cJSON *b)
{
	const cJSON *spec_a = cJSON_GetObjectItemCaseSensitive(a, "spec");
	const cJSON *spec_b = cJSON_GetObjectItemCaseSensitive(b, "spec");
	if (!spec_a || !spec_b)
		return !spec_a && !spec_b;
	return cJSON_Compare(spec_a, spec_b, true);
}
