/* libFuzzer target for what agents send the control plane about usage and logs: the bytes
 * as a metrics report (PUT, then every read of the metrics API), and as container log text
 * (rendering with and without timestamps, tails). Nothing may crash, leak or read out of
 * bounds. Seeds: tests/fuzz/corpus/metrics/. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "agent/log_server.h"
#include "core/metrics.h"
#include "platform/buffer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct metrics *m = metrics_new();
	char *answer = NULL;
	metrics_serve(m, NULL, "PUT", "node:pi-1", "/apis/metrics.k8s.io/v1beta1/nodes/pi-1", (const char *)data, size,
	              1796400000000, &answer);
	free(answer);
	static const char *const paths[] = { "/apis/metrics.k8s.io/v1beta1/nodes",
		                             "/apis/metrics.k8s.io/v1beta1/nodes/pi-1",
		                             "/apis/metrics.k8s.io/v1beta1/pods",
		                             "/apis/metrics.k8s.io/v1beta1/namespaces/default/pods",
		                             "/apis/metrics.k8s.io/v1beta1/namespaces/default/pods/web" };
	for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
		answer = NULL;
		metrics_serve(m, NULL, "GET", "admin", paths[i], NULL, 0, 1796400000000, &answer);
		free(answer);
	}
	metrics_free(m);

	for (int timestamps = 0; timestamps < 2; timestamps++) {
		struct buffer b = BUFFER_INIT;
		bool start = true;
		log_server_render((const char *)data, size, timestamps, &start, &b);
		if (b.data)
			log_server_tail_offset(b.data, b.length, (long)(size % 7) - 1);
		buffer_free(&b);
	}
	log_server_tail_offset((const char *)data, size, 3);
	return 0;
}
