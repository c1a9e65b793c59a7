/* Manifest reading: YAML (libyaml's event parser) or JSON (cJSON) into cJSON documents.
 *
 * YAML is turned into JSON the way Kubernetes' decoder (go-yaml v2, YAML 1.1) does it, for
 * what manifests contain: a plain (unquoted, untagged) scalar is null (~, null, empty),
 * a boolean (true/false, yes/no, on/off, y/n in their usual cases), an integer (decimal,
 * 0x hex, 0o or leading-0 octal: `defaultMode: 0644` is 420) or a float; anything else,
 * and every quoted or !!str scalar, is a string. Anchors and aliases are expanded (counted
 * against MANIFEST_MAX_NODES); merge keys (<<) and complex keys are not supported.
 *
 * A file whose first non-blank character is '{' or '[' is JSON: one or more values in a
 * row. Every limit (file size, documents, depth, nodes) fails the file with its name.
 */
#include "tools/manifest.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <yaml.h>

#include "platform/buffer.h"
#include "platform/error.h"
#include "platform/file.h"
#include "platform/memory.h"

#define MANIFEST_MAX_ANCHORS 1000

/* --- scalars ------------------------------------------------------------------------ */

static bool one_of(const char *s, const char *const *words)
{
	for (; *words; words++)
		if (strcmp(s, *words) == 0)
			return true;
	return false;
}

static bool parse_integer(const char *s, double *ret)
{
	const char *p = s;
	bool negative = false;
	if (*p == '+' || *p == '-')
		negative = *p++ == '-';
	if (!*p)
		return false;
	int base = 10;
	if (p[0] == '0' && (p[1] == 'x' || p[1] == 'X')) {
		base = 16;
		p += 2;
	} else if (p[0] == '0' && p[1] == 'o') {
		base = 8;
		p += 2;
	} else if (p[0] == '0' && p[1]) {
		base = 8;
		p += 1;
	}
	if (!*p)
		return false;
	for (const char *q = p; *q; q++)
		if (!(base == 16  ? isxdigit((unsigned char)*q)
		      : base == 8 ? (*q >= '0' && *q <= '7')
		                  : isdigit((unsigned char)*q)))
			return false;
	errno = 0;
	unsigned long long v = strtoull(p, NULL, base);
	if (errno)
		return false;
	*ret = negative ? -(double)v : (double)v;
	return true;
}

static bool parse_float(const char *s, double *ret)
{
	/* [-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)? */
	const char *p = s;
	if (*p == '+' || *p == '-')
		p++;
	size_t digits = 0;
	while (isdigit((unsigned char)*p))
		p++, digits++;
	if (*p == '.') {
		p++;
		while (isdigit((unsigned char)*p))
			p++, digits++;
	}
	if (!digits)
		return false;
	if (*p == 'e' || *p == 'E') {
		p++;
		if (*p == '+' || *p == '-')
			p++;
		if (!isdigit((unsigned char)*p))
			return false;
		while (isdigit((unsigned char)*p))
			p++;
	}
	if (*p)
		return false;
	char *end;
	double v = strtod(s, &end);
	if (*end || !isfinite(v))
		return false;
	*ret = v;
	return true;
}

/* A plain scalar as Kubernetes' YAML decoder types it. */
static cJSON *plain_scalar(const char *s)
{
	static const char *const nulls[] = { "", "~", "null", "Null", "NULL", NULL };
	static const char *const trues[] = { "true", "True", "TRUE", "yes", "Yes", "YES",
		                             "on",   "On",   "ON",   "y",   "Y",   NULL };
	static const char *const falses[] = { "false", "False", "FALSE", "no", "No", "NO",
		                              "off",   "Off",   "OFF",   "n",  "N",  NULL };
	double v;
	if (one_of(s, nulls))
		return cJSON_CreateNull();
	if (one_of(s, trues))
		return cJSON_CreateTrue();
	if (one_of(s, falses))
		return cJSON_CreateFalse();
	if (parse_integer(s, &v) || parse_float(s, &v))
		return cJSON_CreateNumber(v);
	return cJSON_CreateString(s);
}

/* --- YAML ----------------------------------------------------------------------------- */

struct frame {
	cJSON *container;
	bool is_mapping;
	char *key;    /* a mapping's key waiting for its value */
	char *anchor; /* registered when the collection ends */
	size_t key_line;
};

struct anchor {
	char *name;
	cJSON *value;
	size_t nodes;
};

struct yaml_state {
	const char *source;
	int document;
	size_t line; /* of the current event, 1-based */
	struct frame stack[MANIFEST_MAX_DEPTH];
	size_t depth;
	cJSON *root;
	struct anchor anchors[MANIFEST_MAX_ANCHORS];
	size_t anchor_count;
	size_t nodes;
	struct error *err;
};

static int yaml_fail(struct yaml_state *s, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int yaml_fail(struct yaml_state *s, int code, const char *fmt, ...)
{
	char what[ERROR_MESSAGE_MAX];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	return error_set(s->err, code, "%s: document %d, line %zu: %s", s->source, s->document, s->line, what);
}

static size_t count_nodes(const cJSON *item)
{
	size_t n = 1;
	for (const cJSON *child = item->child; child; child = child->next)
		n += count_nodes(child);
	return n;
}

static void free_anchors(struct yaml_state *s)
{
	for (size_t i = 0; i < s->anchor_count; i++) {
		free(s->anchors[i].name);
		cJSON_Delete(s->anchors[i].value);
	}
	s->anchor_count = 0;
}

static void free_stack(struct yaml_state *s)
{
	for (size_t i = 0; i < s->depth; i++) {
		free(s->stack[i].key);
		free(s->stack[i].anchor);
	}
	if (s->depth)
		cJSON_Delete(s->stack[0].container);
	else
		cJSON_Delete(s->root);
	s->depth = 0;
	s->root = NULL;
}

static int add_anchor(struct yaml_state *s, const char *name, const cJSON *value)
{
	if (s->anchor_count >= MANIFEST_MAX_ANCHORS)
		return yaml_fail(s, E2BIG, "more than %d anchors", MANIFEST_MAX_ANCHORS);
	for (size_t i = 0; i < s->anchor_count; i++)
		if (strcmp(s->anchors[i].name, name) == 0) { /* redefined: the later one counts */
			cJSON_Delete(s->anchors[i].value);
			s->anchors[i].value = cJSON_Duplicate(value, 1);
			s->anchors[i].nodes = count_nodes(value);
			return 0;
		}
	struct anchor *a = &s->anchors[s->anchor_count++];
	a->name = xstrdup(name);
	a->value = cJSON_Duplicate(value, 1);
	a->nodes = count_nodes(value);
	return 0;
}

/* Places a finished value into the collection on top of the stack (or as the root). */
static int place(struct yaml_state *s, cJSON *value)
{
	if (!value)
		abort(); /* cJSON allocation failed: out of memory */
	if (s->depth == 0) {
		s->root = value;
		return 0;
	}
	struct frame *top = &s->stack[s->depth - 1];
	if (!top->is_mapping) {
		cJSON_AddItemToArray(top->container, value);
		return 0;
	}
	if (!top->key) {
		cJSON_Delete(value);
		return yaml_fail(s, EINVAL, "a mapping key must be a plain string");
	}
	if (cJSON_GetObjectItemCaseSensitive(top->container, top->key)) {
		int r = yaml_fail(s, EINVAL, "key \"%s\" is already defined in this mapping", top->key);
		cJSON_Delete(value);
		return r;
	}
	cJSON_AddItemToObject(top->container, top->key, value);
	free(top->key);
	top->key = NULL;
	return 0;
}

static int count_node(struct yaml_state *s, size_t n)
{
	s->nodes += n;
	if (s->nodes > MANIFEST_MAX_NODES)
		return yaml_fail(s, E2BIG, "more than %d values (aliases expanded)", MANIFEST_MAX_NODES);
	return 0;
}

static bool expecting_key(const struct yaml_state *s)
{
	return s->depth > 0 && s->stack[s->depth - 1].is_mapping && !s->stack[s->depth - 1].key;
}

static int on_scalar(struct yaml_state *s, const yaml_event_t *e)
{
	const char *text = (const char *)e->data.scalar.value;
	int r = count_node(s, 1);
	if (r < 0)
		return r;
	if (expecting_key(s)) {
		if (strcmp(text, "<<") == 0 && e->data.scalar.plain_implicit)
			return yaml_fail(s, ENOTSUP, "merge keys (<<) are not supported");
		s->stack[s->depth - 1].key = xstrdup(text);
		return 0;
	}
	const char *tag = (const char *)e->data.scalar.tag;
	cJSON *value;
	if (tag && strcmp(tag, YAML_STR_TAG) != 0) {
		value = plain_scalar(text);
		bool ok = (strcmp(tag, YAML_INT_TAG) == 0 || strcmp(tag, YAML_FLOAT_TAG) == 0) ? cJSON_IsNumber(value)
		          : strcmp(tag, YAML_BOOL_TAG) == 0                                    ? cJSON_IsBool(value)
		          : strcmp(tag, YAML_NULL_TAG) == 0                                    ? cJSON_IsNull(value)
		                                                                               : false;
		if (!ok) {
			cJSON_Delete(value);
			return yaml_fail(s, EINVAL, "'%.64s' cannot be read as %s", text, tag);
		}
	} else if (!tag && e->data.scalar.plain_implicit && e->data.scalar.style == YAML_PLAIN_SCALAR_STYLE) {
		value = plain_scalar(text);
	} else {
		value = cJSON_CreateString(text);
	}
	if (e->data.scalar.anchor && (r = add_anchor(s, (const char *)e->data.scalar.anchor, value)) < 0) {
		cJSON_Delete(value);
		return r;
	}
	return place(s, value);
}

static int on_collection_start(struct yaml_state *s, bool is_mapping, const yaml_char_t *anchor)
{
	if (expecting_key(s))
		return yaml_fail(s, ENOTSUP, "complex mapping keys are not supported");
	if (s->depth >= MANIFEST_MAX_DEPTH)
		return yaml_fail(s, E2BIG, "nested deeper than %d levels", MANIFEST_MAX_DEPTH);
	int r = count_node(s, 1);
	if (r < 0)
		return r;
	cJSON *container = is_mapping ? cJSON_CreateObject() : cJSON_CreateArray();
	if (s->depth > 0) {
		/* Attach now so that the stack's bottom owns everything on error. */
		struct frame *top = &s->stack[s->depth - 1];
		if (top->is_mapping) {
			if (cJSON_GetObjectItemCaseSensitive(top->container, top->key)) {
				cJSON_Delete(container);
				return yaml_fail(s, EINVAL, "key \"%s\" is already defined in this mapping", top->key);
			}
			cJSON_AddItemToObject(top->container, top->key, container);
			free(top->key);
			top->key = NULL;
		} else {
			cJSON_AddItemToArray(top->container, container);
		}
	}
	struct frame *f = &s->stack[s->depth++];
	memset(f, 0, sizeof(*f));
	f->container = container;
	f->is_mapping = is_mapping;
	f->anchor = anchor ? xstrdup((const char *)anchor) : NULL;
	return 0;
}

static int on_collection_end(struct yaml_state *s)
{
	struct frame *f = &s->stack[s->depth - 1];
	int r = 0;
	if (f->key)
		r = yaml_fail(s, EINVAL, "key \"%s\" has no value", f->key);
	if (r == 0 && f->anchor)
		r = add_anchor(s, f->anchor, f->container);
	if (r < 0)
		return r;
	free(f->anchor);
	free(f->key);
	s->depth--;
	if (s->depth == 0)
		s->root = f->container;
	return 0;
}

static int on_alias(struct yaml_state *s, const char *name)
{
	for (size_t i = 0; i < s->anchor_count; i++) {
		if (strcmp(s->anchors[i].name, name) != 0)
			continue;
		if (expecting_key(s))
			return yaml_fail(s, ENOTSUP, "aliases as mapping keys are not supported");
		int r = count_node(s, s->anchors[i].nodes);
		if (r < 0)
			return r;
		return place(s, cJSON_Duplicate(s->anchors[i].value, 1));
	}
	return yaml_fail(s, EINVAL, "unknown alias *%s", name);
}

static int check_object(const char *source, int index, int line, const cJSON *object, struct error *err)
{
	if (!cJSON_IsObject(object))
		return error_set(
		        err, EINVAL,
		        "%s: document %d, line %d: not a Kubernetes object (expected a mapping with apiVersion "
		        "and kind)",
		        source, index, line);
	const char *missing = !cJSON_IsString(cJSON_GetObjectItemCaseSensitive(object, "apiVersion")) ? "apiVersion"
	                      : !cJSON_IsString(cJSON_GetObjectItemCaseSensitive(object, "kind"))     ? "kind"
	                                                                                              : NULL;
	if (missing)
		return error_set(err, EINVAL, "%s: document %d, line %d: not a Kubernetes object: %s is missing",
		                 source, index, line, missing);
	return 0;
}

static int add_document(struct manifest *m, const char *source, int index, int line, cJSON *object, struct error *err)
{
	int r = m->any_value ? 0 : check_object(source, index, line, object, err);
	if (r < 0) {
		cJSON_Delete(object);
		return r;
	}
	m->documents = xrealloc(m->documents, (m->count + 1) * sizeof(*m->documents));
	struct manifest_document *d = &m->documents[m->count++];
	d->source = xstrdup(source);
	d->index = index;
	d->line = line;
	d->object = object;
	return 0;
}

/* The line's text around a parser error, to tell a tab from other problems. */
static bool tab_at(const char *text, size_t length, size_t offset)
{
	return offset < length && text[offset] == '\t';
}

static int parse_yaml(const char *source, const char *text, size_t length, struct manifest *m, struct error *err)
{
	yaml_parser_t parser;
	if (!yaml_parser_initialize(&parser))
		abort();
	yaml_parser_set_input_string(&parser, (const unsigned char *)text, length);
	struct yaml_state *s = xcalloc(1, sizeof(*s));
	s->source = source;
	s->err = err;
	int r = 0, document_line = 1;
	bool done = false;
	while (!done && r == 0) {
		yaml_event_t event;
		if (!yaml_parser_parse(&parser, &event)) {
			s->line = parser.problem_mark.line + 1;
			if (s->document == 0)
				s->document = 1;
			const char *tab =
			        tab_at(text, length, parser.problem_mark.index) ? " (a tab? indent with spaces)" : "";
			r = yaml_fail(s, EINVAL, "%s%s%s%s", parser.problem ? parser.problem : "invalid YAML",
			              parser.context ? " " : "", parser.context ? parser.context : "", tab);
			break;
		}
		s->line = event.start_mark.line + 1;
		switch (event.type) {
		case YAML_STREAM_END_EVENT:
			done = true;
			break;
		case YAML_DOCUMENT_START_EVENT:
			s->document++;
			document_line = (int)s->line;
			s->nodes = 0;
			if (s->document > MANIFEST_MAX_DOCUMENTS)
				r = yaml_fail(s, E2BIG, "more than %d documents in one file", MANIFEST_MAX_DOCUMENTS);
			break;
		case YAML_DOCUMENT_END_EVENT:
			/* An empty document (a stray "---", comments only) is skipped, as kubectl does. */
			if (s->root && !cJSON_IsNull(s->root)) {
				r = add_document(m, source, s->document, document_line, s->root, err);
			} else {
				cJSON_Delete(s->root);
			}
			s->root = NULL;
			free_anchors(s);
			break;
		case YAML_SCALAR_EVENT:
			r = on_scalar(s, &event);
			break;
		case YAML_SEQUENCE_START_EVENT:
			r = on_collection_start(s, false, event.data.sequence_start.anchor);
			break;
		case YAML_MAPPING_START_EVENT:
			r = on_collection_start(s, true, event.data.mapping_start.anchor);
			break;
		case YAML_SEQUENCE_END_EVENT:
		case YAML_MAPPING_END_EVENT:
			r = on_collection_end(s);
			break;
		case YAML_ALIAS_EVENT:
			r = on_alias(s, (const char *)event.data.alias.anchor);
			break;
		default:
			break;
		}
		yaml_event_delete(&event);
	}
	free_stack(s);
	free_anchors(s);
	free(s);
	yaml_parser_delete(&parser);
	return r;
}

/* --- JSON ----------------------------------------------------------------------------- */

static int line_of(const char *text, const char *at)
{
	int line = 1;
	for (const char *p = text; p < at; p++)
		if (*p == '\n')
			line++;
	return line;
}

static int parse_json(const char *source, const char *text, size_t length, struct manifest *m, struct error *err)
{
	const char *p = text, *end = text + length;
	int index = 0;
	for (;;) {
		while (p < end && isspace((unsigned char)*p))
			p++;
		if (p >= end)
			return 0;
		if (++index > MANIFEST_MAX_DOCUMENTS)
			return error_set(err, E2BIG, "%s: more than %d documents in one file", source,
			                 MANIFEST_MAX_DOCUMENTS);
		const char *parse_end = NULL;
		cJSON *value = cJSON_ParseWithLengthOpts(p, (size_t)(end - p), &parse_end, 0);
		if (!value) {
			const char *at = cJSON_GetErrorPtr();
			if (!at || at < p || at > end)
				at = p;
			return error_set(err, EINVAL, "%s: document %d, line %d: invalid JSON near '%.20s'", source,
			                 index, line_of(text, at), at);
		}
		int line = line_of(text, p);
		int r = add_document(m, source, index, line, value, err);
		if (r < 0)
			return r;
		p = parse_end;
	}
}

int manifest_parse(const char *source, const char *text, size_t length, struct manifest *manifest, struct error *err)
{
	if (length > MANIFEST_MAX_FILE_SIZE)
		return error_set(err, EFBIG, "%s: larger than %d bytes", source, MANIFEST_MAX_FILE_SIZE);
	if (memchr(text, '\0', length))
		return error_set(err, EINVAL, "%s: not a text file (it contains a NUL byte)", source);
	const char *p = text;
	while (p < text + length && isspace((unsigned char)*p))
		p++;
	if (p < text + length && (*p == '{' || *p == '['))
		return parse_json(source, text, length, manifest, err);
	return parse_yaml(source, text, length, manifest, err);
}

static int read_stdin(struct buffer *b, struct error *err)
{
	char chunk[65536];
	for (;;) {
		ssize_t n = read(STDIN_FILENO, chunk, sizeof(chunk));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return error_set_errno(err, errno, "reading standard input");
		if (n == 0)
			return 0;
		if (b->length + (size_t)n > MANIFEST_MAX_FILE_SIZE)
			return error_set(err, EFBIG, "standard input: larger than %d bytes", MANIFEST_MAX_FILE_SIZE);
		buffer_append(b, chunk, (size_t)n);
	}
}

static int read_file(const char *path, struct manifest *manifest, struct error *err)
{
	char *text = NULL;
	size_t size = 0;
	int r = file_read(path, MANIFEST_MAX_FILE_SIZE, &text, &size, err);
	if (r < 0)
		return r;
	r = manifest_parse(path, text ? text : "", size, manifest, err);
	free(text);
	return r;
}

static bool manifest_name(const char *name)
{
	size_t n = strlen(name);
	if (name[0] == '.')
		return false;
	return (n > 5 && strcmp(name + n - 5, ".yaml") == 0) || (n > 4 && strcmp(name + n - 4, ".yml") == 0) ||
	       (n > 5 && strcmp(name + n - 5, ".json") == 0);
}

static int compare_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int read_directory(const char *path, struct manifest *manifest, struct error *err)
{
	DIR *dir = opendir(path);
	if (!dir)
		return error_set_errno(err, errno, "%s: cannot open the directory", path);
	char **names = NULL;
	size_t count = 0;
	int r = 0;
	struct dirent *entry;
	while ((entry = readdir(dir))) {
		if (!manifest_name(entry->d_name))
			continue;
		if (count >= MANIFEST_MAX_FILES) {
			r = error_set(err, E2BIG, "%s: more than %d manifest files", path, MANIFEST_MAX_FILES);
			break;
		}
		names = xrealloc(names, (count + 1) * sizeof(*names));
		names[count++] = xstrdup(entry->d_name);
	}
	closedir(dir);
	if (r == 0 && count == 0)
		r = error_set(err, ENOENT, "%s: no *.yaml, *.yml or *.json files", path);
	if (r == 0)
		qsort(names, count, sizeof(*names), compare_names);
	size_t len = strlen(path);
	for (size_t i = 0; i < count && r == 0; i++) {
		char *file = xasprintf("%s%s%s", path, len && path[len - 1] == '/' ? "" : "/", names[i]);
		r = read_file(file, manifest, err);
		free(file);
	}
	for (size_t i = 0; i < count; i++)
		free(names[i]);
	free(names);
	return r;
}

int manifest_read(const char *path, struct manifest *manifest, struct error *err)
{
	if (strcmp(path, "-") == 0) {
		struct buffer b = BUFFER_INIT;
		int r = read_stdin(&b, err);
		if (r == 0)
			r = manifest_parse("-", b.data ? b.data : "", b.length, manifest, err);
		buffer_free(&b);
		return r;
	}
	struct stat st;
	if (stat(path, &st) < 0)
		return error_set_errno(err, errno, "%s", path);
	if (S_ISDIR(st.st_mode))
		return read_directory(path, manifest, err);
	return read_file(path, manifest, err);
}

int manifest_parse_value(const char *source, const char *text, size_t length, cJSON **ret_value, struct error *err)
{
	struct manifest m = { .any_value = true };
	int r = manifest_parse(source, text, length, &m, err);
	if (r == 0 && m.count != 1)
		r = error_set(err, EINVAL, "%s: expected one document, found %zu", source, m.count);
	if (r == 0)
		*ret_value = steal_pointer(&m.documents[0].object);
	manifest_free(&m);
	return r;
}

void manifest_free(struct manifest *manifest)
{
	if (!manifest)
		return;
	for (size_t i = 0; i < manifest->count; i++) {
		free(manifest->documents[i].source);
		cJSON_Delete(manifest->documents[i].object);
	}
	free(manifest->documents);
	manifest->documents = NULL;
	manifest->count = 0;
}

/* --- YAML output ---------------------------------------------------------------------- */

/* True when s, written plain, would be read back as exactly this string. */
static bool plain_safe(const char *s)
{
	if (!s[0])
		return false;
	cJSON *typed = plain_scalar(s);
	bool is_string = cJSON_IsString(typed);
	cJSON_Delete(typed);
	if (!is_string)
		return false;
	if (strchr("-?:,[]{}#&*!|>'\"%@` \t", s[0]))
		return false;
	size_t n = strlen(s);
	if (s[n - 1] == ' ' || s[n - 1] == ':')
		return false;
	for (const char *p = s; *p; p++) {
		unsigned char c = (unsigned char)*p;
		if (c < 0x20 || c == 0x7f)
			return false;
		if ((c == ':' && p[1] == ' ') || (c == ' ' && p[1] == '#'))
			return false;
	}
	return true;
}

static void write_string(struct buffer *out, const char *s)
{
	if (plain_safe(s))
		buffer_append_string(out, s);
	else
		buffer_append_json_string(out, s); /* a JSON string is a valid double-quoted YAML scalar */
}

static void write_number(struct buffer *out, double v)
{
	if (v == (double)(long long)v && fabs(v) < 9007199254740992.0)
		buffer_printf(out, "%lld", (long long)v);
	else
		buffer_printf(out, "%.17g", v);
}

static bool is_collection(const cJSON *item)
{
	return (cJSON_IsObject(item) || cJSON_IsArray(item)) && item->child;
}

static void write_value(const cJSON *item, int indent, struct buffer *out);

static void write_scalar(const cJSON *item, struct buffer *out)
{
	if (cJSON_IsString(item))
		write_string(out, item->valuestring);
	else if (cJSON_IsNumber(item))
		write_number(out, item->valuedouble);
	else if (cJSON_IsTrue(item))
		buffer_append_string(out, "true");
	else if (cJSON_IsFalse(item))
		buffer_append_string(out, "false");
	else if (cJSON_IsObject(item))
		buffer_append_string(out, "{}");
	else if (cJSON_IsArray(item))
		buffer_append_string(out, "[]");
	else
		buffer_append_string(out, "null");
}

/* Writes a collection's entries, each line at indent; the first line's indentation is
 * already written when first_inline is set (after "- "). */
static void write_entries(const cJSON *item, int indent, bool first_inline, struct buffer *out)
{
	bool first = true;
	for (const cJSON *child = item->child; child; child = child->next) {
		if (!(first && first_inline))
			buffer_printf(out, "%*s", indent, "");
		first = false;
		if (cJSON_IsObject(item)) {
			write_string(out, child->string);
			buffer_append_string(out, ":");
			if (is_collection(child)) {
				buffer_append_string(out, "\n");
				/* kubectl's style: a list under a key is not indented further. */
				write_value(child, cJSON_IsArray(child) ? indent : indent + 2, out);
			} else {
				buffer_append_string(out, " ");
				write_scalar(child, out);
				buffer_append_string(out, "\n");
			}
		} else {
			buffer_append_string(out, "-");
			if (is_collection(child)) {
				buffer_append_string(out, " ");
				write_entries(child, indent + 2, true, out);
			} else {
				buffer_append_string(out, " ");
				write_scalar(child, out);
				buffer_append_string(out, "\n");
			}
		}
	}
}

static void write_value(const cJSON *item, int indent, struct buffer *out)
{
	if (is_collection(item)) {
		write_entries(item, indent, false, out);
	} else {
		buffer_printf(out, "%*s", indent, "");
		write_scalar(item, out);
		buffer_append_string(out, "\n");
	}
}

void manifest_write_yaml(const cJSON *object, struct buffer *out)
{
	write_value(object, 0, out);
}
