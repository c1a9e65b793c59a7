/* libFuzzer target for what the prober reads from outside: the same bytes as an HTTP
 * response head (from a pod's server: complete, cut short, at end of stream), as a
 * redirect's Location, and as a container's JSON whose probes and hooks are parsed. Nothing
 * may crash, leak or read out of bounds. Seeds: tests/fuzz/corpus/prober/.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "agent/probe_http.h"
#include "agent/prober.h"
#include "platform/error.h"
#include "platform/memory.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct error err = { 0 };
	struct probe_http_response response;
	for (size_t cut = 0; cut <= size; cut += size / 4 + 1)
		probe_http_parse_response((const char *)data, cut, false, &response, &err);
	if (probe_http_parse_response((const char *)data, size, true, &response, &err) == 0 && response.has_location) {
		struct probe_http_target target;
		probe_http_resolve_location(response.location, "10.42.0.5", 8080, "/a/b?c", &target, &err);
	}

	char *text = xstrndup((const char *)data, size);
	struct probe_http_target target;
	probe_http_resolve_location(text, "fd00::5", 80, "/healthz", &target, &err);
	cJSON *container = cJSON_ParseWithLength((const char *)data, size);
	if (container) {
		for (int kind = PROBE_LIVENESS; kind <= PROBE_STARTUP; kind++) {
			struct probe_spec *spec = NULL;
			if (prober_parse_probe(container, (enum probe_kind)kind, "spec.containers[0]", &spec, &err) ==
			            0 &&
			    spec && spec->handler.type == PROBE_HANDLER_HTTP_GET) {
				char *request = probe_http_format_request(spec->handler.path, "10.42.0.5:8080",
				                                          PROBER_USER_AGENT, spec->handler.headers,
				                                          spec->handler.header_count);
				free(request);
			}
			prober_spec_free(spec);
		}
		for (int hook = PROBER_POST_START; hook <= PROBER_PRE_STOP; hook++) {
			struct probe_handler *handler = NULL;
			prober_parse_hook(container, (enum prober_hook_kind)hook, NULL, &handler, &err);
			prober_handler_free(handler);
		}
		cJSON_Delete(container);
	}
	free(text);
	return 0;
}
