/* libFuzzer target for the object model: parse, then defaults and validation as every kind,
 * merge patch and selectors on whatever parsed. Nothing may crash, leak or read out of
 * bounds, whatever the bytes. Seeds: tests/fuzz/corpus/object/.
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -I. $(DEPS_CFLAGS) tests/fuzz/fuzz_object.c \
 *       core/object.c core/selector.c platform/error.c platform/memory.c libcjson.a -o fuzz_object
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/object.h"
#include "core/selector.h"
#include "platform/error.h"
#include "platform/memory.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct error err = { 0 };
	cJSON *object = NULL;
	if (object_parse((const char *)data, size, &object, &err) == 0) {
		/* as the kind it names, then as every kind (a body sent to the wrong URL) */
		const struct kind *named =
		        kind_lookup(object_string_at(object, "apiVersion"), object_string_at(object, "kind"));
		for (size_t i = 0; i <= kind_count(); i++) {
			const struct kind *kind = i < kind_count() ? kind_at(i) : named;
			if (!kind)
				continue;
			cJSON *copy = cJSON_Duplicate(object, 1);
			object_validate(kind, copy, &err);
			object_apply_defaults(kind, copy);
			object_validate(kind, copy, &err);
			object_spec_equal(copy, object);
			cJSON_Delete(copy);
		}
		cJSON *target = cJSON_Duplicate(object, 1);
		object_merge_patch(target, object, &err);
		cJSON_Delete(target);
		struct selector *selector = NULL;
		const cJSON *spec_selector = cJSON_GetObjectItem(cJSON_GetObjectItem(object, "spec"), "selector");
		if (selector_from_json(spec_selector, "spec.selector", &selector, &err) == 0) {
			selector_matches(selector, object);
			selector_free(selector);
		}
		object_name(object);
		object_namespace(object);
		object_metadata(object);
		cJSON_Delete(object);
	}
	/* the same bytes as list queries */
	char *text = xstrndup((const char *)data, size);
	struct selector *labels = NULL, *fields = NULL;
	if (selector_parse_labels(text, &labels, &err) == 0)
		selector_free(labels);
	if (selector_parse_fields(text, &fields, &err) == 0)
		selector_free(fields);
	free(text);
	return 0;
}
