/* Pod start latency through the whole loop: API create of a pod bound to a node (image
 * present) until the kubelet reports it Running in its status, watched with Observe. A
 * notification too large for one datagram arrives as {"truncated":true}: the pod is then
 * read with a GET and the watch set up again.
 *
 *   bench-podstart SERVER IDENTITY KEY NODE IMAGE COUNT
 *
 * Prints "pod start (create -> Running in status): p50 X ms, p99 Y ms over N pods" and
 * deletes the pods it made.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/client.h"
#include "platform/clock.h"
#include "platform/error.h"
#include "platform/memory.h"

static int running(int code, const char *body, size_t length, void *data)
{
	(void)length;
	(void)data;
	if (code >= 400)
		return -1;
	if (strstr(body, "\"phase\":\"Running\""))
		return 1;
	return strstr(body, "\"truncated\":true") ? 2 : 0;
}

static int compare(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
	if (argc != 7) {
		fprintf(stderr, "usage: bench-podstart SERVER IDENTITY KEY NODE IMAGE COUNT\n");
		return 2;
	}
	char uri[256];
	snprintf(uri, sizeof(uri), "coaps://%s", argv[1]);
	int count = atoi(argv[6]);
	struct client *client;
	struct error err = { 0 };
	if (client_open(uri, argv[2], argv[3], 30000, NULL, &client, &err) < 0) {
		fprintf(stderr, "bench-podstart: %s\n", err.message);
		return 1;
	}
	double *ms = xcalloc((size_t)count, sizeof(*ms));
	int done = 0;
	for (int i = 0; i < count; i++) {
		char body[1024], path[256];
		snprintf(body, sizeof(body),
		         "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"start-%d\"},\"spec\":{"
		         "\"nodeName\":\"%s\",\"terminationGracePeriodSeconds\":0,\"containers\":[{\"name\":\"c\","
		         "\"image\":\"%s\",\"command\":[\"sleep\",\"3600\"]}]}}",
		         i, argv[4], argv[5]);
		struct client_response response;
		uint64_t start = clock_monotonic_us();
		if (client_request(client, CLIENT_POST, "/api/v1/namespaces/default/pods", body, strlen(body),
		                   &response, &err) < 0 ||
		    response.code != 201) {
			fprintf(stderr, "bench-podstart: create: %s\n",
			        err.message[0] ? err.message : response.message);
			break;
		}
		client_response_clear(&response);
		snprintf(path, sizeof(path), "/api/v1/namespaces/default/pods?fieldSelector=metadata.name%%3Dstart-%d",
		         i);
		int seen = 0;
		while (seen != 1 && clock_monotonic_us() - start < 30000000) {
			seen = client_watch(client, path, 30000, running, NULL, &err);
			if (seen == 2) {
				char object[256];
				snprintf(object, sizeof(object), "/api/v1/namespaces/default/pods/start-%d", i);
				if (client_request(client, CLIENT_GET, object, NULL, 0, &response, &err) == 0) {
					seen = running(response.code, response.body ? response.body : "",
					               response.length, NULL);
					client_response_clear(&response);
				}
			} else if (seen != 1) {
				break;
			}
		}
		if (seen != 1) {
			fprintf(stderr, "bench-podstart: start-%d did not report Running within 30 s\n", i);
			break;
		}
		ms[done++] = (double)(clock_monotonic_us() - start) / 1000.0;
		snprintf(path, sizeof(path), "/api/v1/namespaces/default/pods/start-%d?gracePeriodSeconds=0", i);
		if (client_request(client, CLIENT_DELETE, path, NULL, 0, &response, &err) == 0)
			client_response_clear(&response);
	}
	if (done > 0) {
		qsort(ms, (size_t)done, sizeof(*ms), compare);
		printf("pod start (create -> Running in status): p50 %.1f ms, p99 %.1f ms over %d pods\n", ms[done / 2],
		       ms[(done * 99) / 100 < done ? (done * 99) / 100 : done - 1], done);
	}
	free(ms);
	client_close(client);
	return done == count ? 0 : 1;
}
