/* Label and field selectors.
 *
 * A selector is a conjunction of at most SELECTOR_MAX_TERMS terms, each a key, an operation
 * and a set of values; every form (label query, field query, LabelSelector object) parses
 * into that one shape, and one matcher serves them all. A label selector reads
 * metadata.labels; a field selector reads the named fields, an absent field reading as ""
 * (so "spec.nodeName=" selects the pods not yet scheduled, as in Kubernetes).
 *
 * The label query grammar is Kubernetes' (k8s.io/apimachinery/pkg/labels):
 *   selector    := term (',' term)*
 *   term        := '!' key | key | key ('=' | '==' | '!=') value | key ('in' | 'notin') '(' values ')'
 * where keys and values are tokens ending at white space or any of ",=!()".
 * A LabelSelector given as JSON null matches nothing (Kubernetes' nil selector); an empty
 * one ({}), like an empty query, matches everything.
 */
#include "core/selector.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "core/object.h"
#include "platform/error.h"
#include "platform/memory.h"

#define SELECTOR_MAX_VALUES 64 /* values of one "in" or "notin" term */
#define SELECTOR_TEXT_MAX 4096 /* characters of a query */
#define SELECTOR_PATH_MAX 256  /* field paths in errors */

enum operation {
	OPERATION_EQUALS,
	OPERATION_NOT_EQUALS,
	OPERATION_IN,
	OPERATION_NOT_IN,
	OPERATION_EXISTS,
	OPERATION_DOES_NOT_EXIST,
};

struct term {
	char *key;
	enum operation operation;
	size_t value_count;
	char *values[SELECTOR_MAX_VALUES];
};

struct selector {
	bool fields;  /* a field selector: keys are field paths */
	bool nothing; /* matches no object (a null LabelSelector) */
	size_t count;
	struct term terms[SELECTOR_MAX_TERMS];
};

static const char *const FIELDS[] = {
	"metadata.name",       "metadata.namespace",  "spec.nodeName", "status.phase", "spec.schedulerName",
	"involvedObject.name", "involvedObject.kind", "type",          "reason",       NULL,
};

void selector_free(struct selector *selector)
{
	if (!selector)
		return;
	for (size_t i = 0; i < selector->count; i++) {
		free(selector->terms[i].key);
		for (size_t v = 0; v < selector->terms[i].value_count; v++)
			free(selector->terms[i].values[v]);
	}
	free(selector);
}

bool selector_is_empty(const struct selector *selector)
{
	return !selector || (selector->count == 0 && !selector->nothing);
}

static struct selector *selector_new(bool fields)
{
	struct selector *selector = xcalloc(1, sizeof(*selector));
	selector->fields = fields;
	return selector;
}

static struct term *add_term(struct selector *selector, const char *key, size_t key_length, enum operation operation)
{
	struct term *term = &selector->terms[selector->count++];
	term->key = xstrndup(key, key_length);
	term->operation = operation;
	return term;
}

/* ---- the label query ---- */

enum token_type {
	TOKEN_END,
	TOKEN_IDENTIFIER,
	TOKEN_COMMA,
	TOKEN_NOT,        /* ! */
	TOKEN_EQUALS,     /* = or == */
	TOKEN_NOT_EQUALS, /* != */
	TOKEN_OPEN,
	TOKEN_CLOSE,
};

struct lexer {
	const char *text;
	size_t at;
	enum token_type type;
	const char *token; /* the current token's text, token_length long */
	size_t token_length;
};

static bool special(char c)
{
	return c == ',' || c == '=' || c == '!' || c == '(' || c == ')' || c == ' ' || c == '\t' || c == '\n' ||
	       c == '\r';
}

static void lex(struct lexer *l)
{
	const char *s = l->text;
	while (s[l->at] == ' ' || s[l->at] == '\t' || s[l->at] == '\n' || s[l->at] == '\r')
		l->at++;
	l->token = s + l->at;
	l->token_length = 1;
	switch (s[l->at]) {
	case '\0':
		l->type = TOKEN_END;
		l->token_length = 0;
		return;
	case ',':
		l->type = TOKEN_COMMA;
		break;
	case '(':
		l->type = TOKEN_OPEN;
		break;
	case ')':
		l->type = TOKEN_CLOSE;
		break;
	case '=':
		l->type = TOKEN_EQUALS;
		if (s[l->at + 1] == '=')
			l->token_length = 2;
		break;
	case '!':
		l->type = TOKEN_NOT;
		if (s[l->at + 1] == '=') {
			l->type = TOKEN_NOT_EQUALS;
			l->token_length = 2;
		}
		break;
	default:
		l->type = TOKEN_IDENTIFIER;
		l->token_length = 0;
		while (s[l->at + l->token_length] && !special(s[l->at + l->token_length]))
			l->token_length++;
	}
	l->at += l->token_length;
}

static bool is_word(const struct lexer *l, const char *word)
{
	return l->type == TOKEN_IDENTIFIER && l->token_length == strlen(word) &&
	       memcmp(l->token, word, l->token_length) == 0;
}

static const char *shown_token(const struct lexer *l, char *buf, size_t size)
{
	if (l->type == TOKEN_END)
		snprintf(buf, size, "end of string");
	else
		snprintf(buf, size, "'%.*s'", (int)(l->token_length > 64 ? 64 : l->token_length), l->token);
	return buf;
}

/* The error names the term (from its start to where parsing stopped) and what was expected. */
static int __attribute__((format(printf, 4, 5)))
term_error(struct error *err, const struct lexer *l, size_t term_start, const char *fmt, ...)
{
	char problem[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(problem, sizeof(problem), fmt, ap);
	va_end(ap);
	size_t term_end = l->at > term_start ? l->at : term_start;
	return error_set(err, EINVAL, "invalid label selector term \"%.*s\": %s",
	                 (int)(term_end - term_start > 128 ? 128 : term_end - term_start), l->text + term_start,
	                 problem);
}

static int parse_value(struct error *err, struct lexer *l, size_t term_start, struct term *term)
{
	char value[256];
	if (l->token_length >= sizeof(value))
		return term_error(err, l, term_start, "%s", "value must be no more than 63 characters");
	memcpy(value, l->token, l->token_length);
	value[l->token_length] = '\0';
	const char *problem = object_label_value_problem(value);
	if (problem)
		return term_error(err, l, term_start, "invalid value: %s", problem);
	if (term->value_count >= SELECTOR_MAX_VALUES)
		return term_error(err, l, term_start, "%s", "too many values (at most 64)");
	term->values[term->value_count++] = xstrdup(value);
	return 0;
}

static int parse_term(struct selector *selector, struct lexer *l, struct error *err)
{
	size_t term_start = (size_t)(l->token - l->text);
	char shown[80];
	bool negated = l->type == TOKEN_NOT;
	if (negated)
		lex(l);
	if (l->type != TOKEN_IDENTIFIER)
		return term_error(err, l, term_start, "found %s, expected: !, identifier",
		                  shown_token(l, shown, sizeof(shown)));
	char key[320];
	if (l->token_length >= sizeof(key))
		return term_error(err, l, term_start, "%s", "key is too long");
	memcpy(key, l->token, l->token_length);
	key[l->token_length] = '\0';
	const char *problem = object_label_key_problem(key);
	if (problem)
		return term_error(err, l, term_start, "invalid key: %s", problem);
	if (selector->count >= SELECTOR_MAX_TERMS)
		return error_set(err, EINVAL, "invalid label selector: more than %d terms", SELECTOR_MAX_TERMS);
	lex(l);
	if (negated || l->type == TOKEN_END || l->type == TOKEN_COMMA) {
		add_term(selector, key, strlen(key), negated ? OPERATION_DOES_NOT_EXIST : OPERATION_EXISTS);
		return 0;
	}
	struct term *term;
	if (l->type == TOKEN_EQUALS || l->type == TOKEN_NOT_EQUALS) {
		term = add_term(selector, key, strlen(key),
		                l->type == TOKEN_EQUALS ? OPERATION_EQUALS : OPERATION_NOT_EQUALS);
		lex(l);
		if (l->type == TOKEN_END || l->type == TOKEN_COMMA) { /* "tier=": the empty value */
			term->values[term->value_count++] = xstrdup("");
			return 0;
		}
		if (l->type != TOKEN_IDENTIFIER)
			return term_error(err, l, term_start, "found %s, expected: identifier",
			                  shown_token(l, shown, sizeof(shown)));
		int r = parse_value(err, l, term_start, term);
		lex(l);
		return r;
	}
	if (!is_word(l, "in") && !is_word(l, "notin"))
		return term_error(err, l, term_start,
		                  "found %s, expected: in, notin, =, ==, !=", shown_token(l, shown, sizeof(shown)));
	term = add_term(selector, key, strlen(key), is_word(l, "in") ? OPERATION_IN : OPERATION_NOT_IN);
	lex(l);
	if (l->type != TOKEN_OPEN)
		return term_error(err, l, term_start, "found %s, expected: '('", shown_token(l, shown, sizeof(shown)));
	for (;;) {
		lex(l);
		if (l->type == TOKEN_CLOSE && term->value_count == 0)
			return term_error(err, l, term_start, "%s",
			                  "for 'in', 'notin' operators, values set can't be empty");
		if (l->type != TOKEN_IDENTIFIER)
			return term_error(err, l, term_start, "found %s, expected: identifier",
			                  shown_token(l, shown, sizeof(shown)));
		int r = parse_value(err, l, term_start, term);
		if (r < 0)
			return r;
		lex(l);
		if (l->type == TOKEN_CLOSE)
			break;
		if (l->type != TOKEN_COMMA)
			return term_error(err, l, term_start, "found %s, expected: ',' or ')'",
			                  shown_token(l, shown, sizeof(shown)));
	}
	lex(l);
	return 0;
}

int selector_parse_labels(const char *text, struct selector **ret_selector, struct error *err)
{
	if (!text)
		text = "";
	if (strlen(text) > SELECTOR_TEXT_MAX)
		return error_set(err, EINVAL, "invalid label selector: longer than %d characters", SELECTOR_TEXT_MAX);
	struct selector *selector = selector_new(false);
	struct lexer l = { .text = text };
	char shown[80];
	lex(&l);
	while (l.type != TOKEN_END) {
		int r = parse_term(selector, &l, err);
		if (r == 0 && l.type != TOKEN_END && l.type != TOKEN_COMMA)
			r = error_set(err, EINVAL, "invalid label selector: found %s, expected: ',' or end of string",
			              shown_token(&l, shown, sizeof(shown)));
		if (r == 0 && l.type == TOKEN_COMMA) {
			lex(&l);
			if (l.type == TOKEN_END)
				r = error_set(err, EINVAL,
				              "invalid label selector: found end of string after ',', "
				              "expected: !, identifier");
		}
		if (r < 0) {
			selector_free(selector);
			return r;
		}
	}
	*ret_selector = selector;
	return 0;
}

/* ---- the field query ---- */

/* Copies s[0..length) into out, unescaping "\\", "\," and "\="; false on a bad escape. */
static bool unescape(const char *s, size_t length, char *out, size_t size)
{
	size_t n = 0;
	for (size_t i = 0; i < length; i++) {
		char c = s[i];
		if (c == '\\') {
			if (++i >= length || (s[i] != '\\' && s[i] != ',' && s[i] != '='))
				return false;
			c = s[i];
		} else if (c == '=' || c == '!') {
			return false; /* an unescaped operator character inside a value */
		}
		if (n + 1 >= size)
			return false;
		out[n++] = c;
	}
	out[n] = '\0';
	return true;
}

static int parse_field_term(struct selector *selector, const char *term, size_t length, struct error *err)
{
	/* The first operator in the term splits it, trying "!=" and "==" before "=". */
	static const struct {
		const char *text;
		enum operation operation;
	} operators[] = { { "!=", OPERATION_NOT_EQUALS }, { "==", OPERATION_EQUALS }, { "=", OPERATION_EQUALS } };
	const char *split = NULL;
	size_t operator_length = 0;
	enum operation operation = OPERATION_EQUALS;
	for (size_t i = 0; i < length && !split; i++) {
		if (term[i] == '\\') {
			i++;
			continue;
		}
		for (size_t o = 0; o < ARRAY_SIZE(operators); o++) {
			size_t n = strlen(operators[o].text);
			if (i + n <= length && memcmp(term + i, operators[o].text, n) == 0) {
				split = term + i;
				operator_length = n;
				operation = operators[o].operation;
				break;
			}
		}
	}
	if (!split)
		return error_set(err, EINVAL, "invalid field selector term \"%.*s\": expected one of =, ==, !=",
		                 (int)(length > 128 ? 128 : length), term);
	size_t key_length = (size_t)(split - term);
	bool known = false;
	for (size_t f = 0; FIELDS[f]; f++)
		known |= strlen(FIELDS[f]) == key_length && memcmp(FIELDS[f], term, key_length) == 0;
	if (!known) {
		char list[512];
		size_t n = 0;
		for (size_t f = 0; FIELDS[f]; f++)
			n += (size_t)snprintf(list + n, sizeof(list) - n, "%s%s", f ? ", " : "", FIELDS[f]);
		return error_set(err, EINVAL, "field label not supported: \"%.*s\"; supported fields are %s",
		                 (int)(key_length > 128 ? 128 : key_length), term, list);
	}
	char value[1024];
	const char *value_text = split + operator_length;
	if (!unescape(value_text, length - key_length - operator_length, value, sizeof(value)))
		return error_set(err, EINVAL,
		                 "invalid field selector term \"%.*s\": a value may not contain unescaped '=', '!' "
		                 "or ',' and must be shorter than %zu characters",
		                 (int)(length > 128 ? 128 : length), term, sizeof(value));
	if (selector->count >= SELECTOR_MAX_TERMS)
		return error_set(err, EINVAL, "invalid field selector: more than %d terms", SELECTOR_MAX_TERMS);
	struct term *t = add_term(selector, term, key_length, operation);
	t->values[t->value_count++] = xstrdup(value);
	return 0;
}

int selector_parse_fields(const char *text, struct selector **ret_selector, struct error *err)
{
	if (!text)
		text = "";
	size_t length = strlen(text);
	if (length > SELECTOR_TEXT_MAX)
		return error_set(err, EINVAL, "invalid field selector: longer than %d characters", SELECTOR_TEXT_MAX);
	struct selector *selector = selector_new(true);
	for (size_t start = 0; start < length;) {
		size_t end = start;
		while (end < length && text[end] != ',') {
			if (text[end] == '\\' && end + 1 < length)
				end++;
			end++;
		}
		if (end > start) {
			int r = parse_field_term(selector, text + start, end - start, err);
			if (r < 0) {
				selector_free(selector);
				return r;
			}
		}
		start = end + 1;
	}
	*ret_selector = selector;
	return 0;
}

/* ---- LabelSelector objects ---- */

static int __attribute__((format(printf, 3, 4))) field_error(struct error *err, const char *path, const char *fmt, ...)
{
	char text[ERROR_MESSAGE_MAX];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	return error_set_field(err, EINVAL, path, "%s", text);
}

static int add_expression(struct selector *selector, const cJSON *expression, const char *path, struct error *err)
{
	static const struct {
		const char *name;
		enum operation operation;
	} operations[] = { { "In", OPERATION_IN },
		           { "NotIn", OPERATION_NOT_IN },
		           { "Exists", OPERATION_EXISTS },
		           { "DoesNotExist", OPERATION_DOES_NOT_EXIST } };
	char at[SELECTOR_PATH_MAX];
	if (!cJSON_IsObject(expression))
		return field_error(err, path, "Invalid value: must be of type object");
	const cJSON *item;
	cJSON_ArrayForEach(item, expression)
	{
		if (strcmp(item->string, "key") != 0 && strcmp(item->string, "operator") != 0 &&
		    strcmp(item->string, "values") != 0) {
			snprintf(at, sizeof(at), "%s.%.64s", path, item->string);
			return field_error(err, at, "unknown field");
		}
	}
	const cJSON *key = cJSON_GetObjectItemCaseSensitive(expression, "key");
	const cJSON *operator_item = cJSON_GetObjectItemCaseSensitive(expression, "operator");
	const cJSON *values = cJSON_GetObjectItemCaseSensitive(expression, "values");
	snprintf(at, sizeof(at), "%s.key", path);
	if (!cJSON_IsString(key))
		return field_error(err, at,
		                   key && !cJSON_IsNull(key) ? "Invalid value: must be of type string"
		                                             : "Required value");
	const char *problem = object_label_key_problem(key->valuestring);
	if (problem)
		return field_error(err, at, "Invalid value: \"%.64s\": %s", key->valuestring, problem);
	snprintf(at, sizeof(at), "%s.operator", path);
	if (!cJSON_IsString(operator_item))
		return field_error(err, at, "Required value");
	size_t o = 0;
	while (o < ARRAY_SIZE(operations) && strcmp(operations[o].name, operator_item->valuestring) != 0)
		o++;
	if (o == ARRAY_SIZE(operations))
		return field_error(err, at,
		                   "Unsupported value: \"%.64s\": supported values: \"In\", \"NotIn\", \"Exists\", "
		                   "\"DoesNotExist\"",
		                   operator_item->valuestring);
	enum operation operation = operations[o].operation;
	snprintf(at, sizeof(at), "%s.values", path);
	if (values && !cJSON_IsNull(values) && !cJSON_IsArray(values))
		return field_error(err, at, "Invalid value: must be of type array");
	int count = cJSON_IsArray(values) ? cJSON_GetArraySize(values) : 0;
	bool with_values = operation == OPERATION_IN || operation == OPERATION_NOT_IN;
	if (with_values && count == 0)
		return field_error(err, at, "Required value: must be specified when `operator` is 'In' or 'NotIn'");
	if (!with_values && count > 0)
		return field_error(err, at,
		                   "Forbidden: may not be specified when `operator` is 'Exists' or 'DoesNotExist'");
	if (count > SELECTOR_MAX_VALUES)
		return field_error(err, at, "Too many: %d: must have at most %d items", count, SELECTOR_MAX_VALUES);
	if (selector->count >= SELECTOR_MAX_TERMS)
		return field_error(err, path, "Too many: must have at most %d terms in all", SELECTOR_MAX_TERMS);
	int index = 0;
	cJSON_ArrayForEach(item, values)
	{
		snprintf(at, sizeof(at), "%s.values[%d]", path, index++);
		if (!cJSON_IsString(item))
			return field_error(err, at, "Invalid value: must be of type string");
		if ((problem = object_label_value_problem(item->valuestring)))
			return field_error(err, at, "Invalid value: \"%.64s\": %s", item->valuestring, problem);
	}
	struct term *term = add_term(selector, key->valuestring, strlen(key->valuestring), operation);
	cJSON_ArrayForEach(item, values)
	{
		term->values[term->value_count++] = xstrdup(item->valuestring);
	}
	return 0;
}

static int fill_from_json(struct selector *selector, const cJSON *json, const char *path, struct error *err)
{
	char at[SELECTOR_PATH_MAX];
	if (!cJSON_IsObject(json))
		return field_error(err, path, "Invalid value: must be of type object");
	const cJSON *item;
	cJSON_ArrayForEach(item, json)
	{
		if (strcmp(item->string, "matchLabels") != 0 && strcmp(item->string, "matchExpressions") != 0) {
			snprintf(at, sizeof(at), "%s.%.64s", path, item->string);
			return field_error(err, at, "unknown field");
		}
	}
	const cJSON *labels = cJSON_GetObjectItemCaseSensitive(json, "matchLabels");
	const cJSON *expressions = cJSON_GetObjectItemCaseSensitive(json, "matchExpressions");
	snprintf(at, sizeof(at), "%s.matchLabels", path);
	if (labels && !cJSON_IsNull(labels) && !cJSON_IsObject(labels))
		return field_error(err, at, "Invalid value: must be of type object");
	cJSON_ArrayForEach(item, labels)
	{
		const char *problem = object_label_key_problem(item->string);
		if (problem)
			return field_error(err, at, "Invalid value: \"%.64s\": %s", item->string, problem);
		if (!cJSON_IsString(item))
			return field_error(err, at, "Invalid value: \"%.64s\": must be of type string", item->string);
		if ((problem = object_label_value_problem(item->valuestring)))
			return field_error(err, at, "Invalid value: \"%.64s\": %s", item->valuestring, problem);
		if (selector->count >= SELECTOR_MAX_TERMS)
			return field_error(err, path, "Too many: must have at most %d terms in all",
			                   SELECTOR_MAX_TERMS);
		struct term *term = add_term(selector, item->string, strlen(item->string), OPERATION_EQUALS);
		term->values[term->value_count++] = xstrdup(item->valuestring);
	}
	snprintf(at, sizeof(at), "%s.matchExpressions", path);
	if (expressions && !cJSON_IsNull(expressions) && !cJSON_IsArray(expressions))
		return field_error(err, at, "Invalid value: must be of type array");
	int index = 0;
	cJSON_ArrayForEach(item, expressions)
	{
		snprintf(at, sizeof(at), "%s.matchExpressions[%d]", path, index++);
		int r = add_expression(selector, item, at, err);
		if (r < 0)
			return r;
	}
	return 0;
}

int selector_from_json(const cJSON *json, const char *field_path, struct selector **ret_selector, struct error *err)
{
	struct selector *selector = selector_new(false);
	if (!json || cJSON_IsNull(json)) {
		selector->nothing = true;
		*ret_selector = selector;
		return 0;
	}
	int r = fill_from_json(selector, json, field_path && *field_path ? field_path : "selector", err);
	if (r < 0) {
		selector_free(selector);
		return r;
	}
	*ret_selector = selector;
	return 0;
}

/* ---- matching ---- */

static bool has_value(const struct term *term, const char *value)
{
	for (size_t i = 0; i < term->value_count; i++)
		if (strcmp(term->values[i], value) == 0)
			return true;
	return false;
}

/* value is NULL when the key is absent. */
static bool term_matches(const struct term *term, const char *value)
{
	switch (term->operation) {
	case OPERATION_EQUALS:
	case OPERATION_IN:
		return value && has_value(term, value);
	case OPERATION_NOT_EQUALS:
	case OPERATION_NOT_IN:
		return !value || !has_value(term, value);
	case OPERATION_EXISTS:
		return value != NULL;
	case OPERATION_DOES_NOT_EXIST:
		return value == NULL;
	}
	return false;
}

bool selector_matches_labels(const struct selector *selector, const cJSON *labels)
{
	if (!selector)
		return true;
	if (selector->nothing)
		return false;
	for (size_t i = 0; i < selector->count; i++) {
		const cJSON *label = cJSON_GetObjectItemCaseSensitive(labels, selector->terms[i].key);
		if (!term_matches(&selector->terms[i], cJSON_IsString(label) ? label->valuestring : NULL))
			return false;
	}
	return true;
}

const char *selector_required_value(const struct selector *selector, const char *key)
{
	if (!selector || selector->nothing)
		return NULL;
	for (size_t i = 0; i < selector->count; i++) {
		const struct term *t = &selector->terms[i];
		if (strcmp(t->key, key) == 0 && t->value_count == 1 &&
		    (t->operation == OPERATION_EQUALS || t->operation == OPERATION_IN))
			return t->values[0];
	}
	return NULL;
}

bool selector_matches(const struct selector *selector, const cJSON *object)
{
	if (!selector)
		return true;
	if (!selector->fields)
		return selector_matches_labels(
		        selector, cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(object, "metadata"),
		                                                   "labels"));
	for (size_t i = 0; i < selector->count; i++) {
		const char *value = object_string_at(object, selector->terms[i].key);
		if (!term_matches(&selector->terms[i], value ? value : ""))
			return false;
	}
	return true;
}
