/* Load generator for the API server: N concurrent DTLS clients (one session each, one
 * request in flight per session) for a number of seconds, then requests/s and latency.
 *
 *   bench-api HOST:PORT IDENTITY KEY get|create CLIENTS SECONDS [PATH [MAX_REQUESTS]]
 *
 * get:    GET PATH (default /api/v1/namespaces/default/configmaps/bench-0) repeatedly
 * create: POST ~1.2 KB pods named bench-<pid>-<client>-<n> to /api/v1/namespaces/default/pods
 *         (bound to a node that does not exist, so nothing tries to run them)
 * Figures only: this program asserts nothing.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <coap3/coap.h>

#include "core/transport.h"
#include "platform/clock.h"
#include "platform/error.h"
#include "platform/log.h"
#include "platform/loop.h"
#include "platform/memory.h"

#define MAX_CLIENTS 256
#define MAX_SAMPLES 2000000

struct client {
	int index;
	coap_session_t *session;
	uint64_t sent_at;
	uint64_t count;
	int in_flight;
};

static struct {
	const char *mode;
	const char *path;
	struct client clients[MAX_CLIENTS];
	int client_count;
	uint32_t *samples; /* latency in microseconds */
	size_t sample_count;
	uint64_t errors;
	bool measuring;
	char pod_padding[900];
} bench;

static void release_body(coap_session_t *session, void *body)
{
	(void)session;
	free(body);
}

static void send_request(struct client *c)
{
	coap_pdu_code_t code = strcmp(bench.mode, "get") == 0 ? COAP_REQUEST_CODE_GET : COAP_REQUEST_CODE_POST;
	coap_pdu_t *pdu = coap_pdu_init(COAP_MESSAGE_CON, code, coap_new_message_id(c->session),
	                                coap_session_max_pdu_size(c->session));
	uint8_t token[8];
	size_t token_length;
	coap_session_new_token(c->session, &token_length, token);
	coap_add_token(pdu, token_length, token);
	const char *path = code == COAP_REQUEST_CODE_GET ? bench.path : "/api/v1/namespaces/default/pods";
	const char *query = strchr(path, '?');
	coap_optlist_t *options = NULL;
	coap_path_into_optlist((const uint8_t *)path + 1, query ? (size_t)(query - path - 1) : strlen(path + 1),
	                       COAP_OPTION_URI_PATH, &options);
	if (query)
		coap_query_into_optlist((const uint8_t *)query + 1, strlen(query + 1), COAP_OPTION_URI_QUERY, &options);
	if (code == COAP_REQUEST_CODE_POST) {
		uint8_t buf[4];
		coap_insert_optlist(&options, coap_new_optlist(COAP_OPTION_CONTENT_FORMAT,
		                                               coap_encode_var_safe(buf, sizeof(buf), 50), buf));
	}
	coap_add_optlist_pdu(pdu, &options);
	coap_delete_optlist(options);
	if (code == COAP_REQUEST_CODE_POST) {
		/* libcoap keeps the body until every block is sent, then hands it back to free. */
		char *body = xmalloc(1400);
		int n = snprintf(body, 1400,
		                 "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"bench-%ld-%d-%llu\","
		                 "\"labels\":{\"app\":\"bench\",\"padding\":\"x\"},\"annotations\":{\"note\":\"%s\"}},"
		                 "\"spec\":{\"nodeName\":\"hollow\",\"containers\":[{\"name\":\"app\",\"image\":"
		                 "\"registry.local/bench:1.0\",\"ports\":[{\"containerPort\":8080}]}]}}",
		                 (long)getpid(), c->index, (unsigned long long)c->count, bench.pod_padding);
		coap_add_data_large_request(c->session, pdu, (size_t)n, (const uint8_t *)body, release_body, body);
	}
	c->sent_at = clock_monotonic_us();
	c->in_flight = 1;
	coap_send(c->session, pdu);
}

static struct client *client_of(coap_session_t *session)
{
	for (int i = 0; i < bench.client_count; i++)
		if (bench.clients[i].session == session)
			return &bench.clients[i];
	return NULL;
}

static coap_response_t on_response(coap_session_t *session, const coap_pdu_t *sent, const coap_pdu_t *received,
                                   const coap_mid_t id)
{
	(void)sent;
	(void)id;
	struct client *c = client_of(session);
	if (!c)
		return COAP_RESPONSE_OK;
	if (COAP_RESPONSE_CLASS(coap_pdu_get_code(received)) != 2) {
		if (bench.errors++ == 0) {
			size_t len;
			const uint8_t *data;
			if (!coap_get_data(received, &len, &data))
				len = 0;
			fprintf(stderr, "bench-api: first error: %d.%02d %.*s\n", coap_pdu_get_code(received) >> 5,
			        coap_pdu_get_code(received) & 31, (int)len, (const char *)data);
		}
	}
	if (bench.measuring && bench.sample_count < MAX_SAMPLES)
		bench.samples[bench.sample_count++] = (uint32_t)(clock_monotonic_us() - c->sent_at);
	c->count++;
	c->in_flight = 0;
	return COAP_RESPONSE_OK;
}

static int compare_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
	if (argc < 7) {
		fprintf(stderr, "usage: %s HOST:PORT IDENTITY KEY get|create CLIENTS SECONDS [PATH]\n", argv[0]);
		return 2;
	}
	bench.mode = argv[4];
	bench.client_count = atoi(argv[5]);
	int seconds = atoi(argv[6]);
	bench.path = argc > 7 ? argv[7] : "/api/v1/namespaces/default/configmaps/bench-0";
	uint64_t max_requests = argc > 8 ? strtoull(argv[8], NULL, 10) : 0;
	if (bench.client_count < 1 || bench.client_count > MAX_CLIENTS || seconds < 1)
		return 2;
	memset(bench.pod_padding, 'p', sizeof(bench.pod_padding) - 1);
	bench.samples = xcalloc(MAX_SAMPLES, sizeof(uint32_t));
	log_setup("bench-api", LOG_TARGET_STDERR, LOG_LEVEL_ERROR);

	struct loop *loop;
	struct transport *t;
	struct error err;
	if (loop_new(&loop) < 0 || transport_new(loop, &t, &err) < 0) {
		fprintf(stderr, "bench-api: %s\n", err.message);
		return 1;
	}
	coap_context_t *context = transport_context(t);
	coap_register_response_handler(context, on_response);
	coap_address_t dst;
	if (transport_parse_address(argv[1], 5684, &dst, &err) < 0) {
		fprintf(stderr, "bench-api: %s\n", err.message);
		return 1;
	}
	coap_dtls_cpsk_t psk;
	memset(&psk, 0, sizeof(psk));
	psk.version = COAP_DTLS_CPSK_SETUP_VERSION;
	psk.psk_info.identity.s = (const uint8_t *)argv[2];
	psk.psk_info.identity.length = strlen(argv[2]);
	psk.psk_info.key.s = (const uint8_t *)argv[3];
	psk.psk_info.key.length = strlen(argv[3]);
	for (int i = 0; i < bench.client_count; i++) {
		bench.clients[i].index = i;
		bench.clients[i].session = coap_new_client_session_psk2(context, NULL, &dst, COAP_PROTO_DTLS, &psk);
		if (bench.clients[i].session)
			transport_tune_session(bench.clients[i].session);
		if (!bench.clients[i].session) {
			fprintf(stderr, "bench-api: cannot create session %d\n", i);
			return 1;
		}
	}
	/* One warm-up second (handshakes), then the measured run. */
	uint64_t start = clock_monotonic_ms(), measure_from = start + 1000,
	         end = measure_from + (uint64_t)seconds * 1000;
	uint64_t counted_from = 0, done = 0;
	while (clock_monotonic_ms() < end && (!max_requests || done < max_requests)) {
		done = 0;
		for (int i = 0; i < bench.client_count; i++)
			done += bench.clients[i].count;
		if (!bench.measuring && clock_monotonic_ms() >= measure_from) {
			bench.measuring = true;
			for (int i = 0; i < bench.client_count; i++)
				counted_from += bench.clients[i].count;
		}
		for (int i = 0; i < bench.client_count; i++)
			if (!bench.clients[i].in_flight && (!max_requests || done < max_requests))
				send_request(&bench.clients[i]);
		loop_run_once(loop, 5);
	}
	double elapsed = (double)(clock_monotonic_ms() - (bench.measuring ? measure_from : start)) / 1000.0;
	uint64_t total = 0;
	for (int i = 0; i < bench.client_count; i++)
		total += bench.clients[i].count;
	total -= counted_from;
	qsort(bench.samples, bench.sample_count, sizeof(uint32_t), compare_u32);
	double p50 = bench.sample_count ? bench.samples[bench.sample_count / 2] / 1000.0 : 0;
	double p99 = bench.sample_count ? bench.samples[(size_t)(bench.sample_count * 0.99)] / 1000.0 : 0;
	printf("%s: %d clients, %.1f s: %.0f requests/s, p50 %.2f ms, p99 %.2f ms, %llu errors\n", bench.mode,
	       bench.client_count, elapsed, elapsed > 0 ? (double)total / elapsed : 0, p50, p99,
	       (unsigned long long)bench.errors);
	for (int i = 0; i < bench.client_count; i++)
		coap_session_release(bench.clients[i].session);
	transport_free(t);
	loop_free(loop);
	free(bench.samples);
	return 0;
}
