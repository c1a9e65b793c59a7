/* libFuzzer target for the API server's request handling: each input is one raw CoAP
 * datagram (header, token, options: path, query, Observe, Content-Format, Block1 ...,
 * payload) sent to a real API server on a loopback plain-CoAP endpoint, backed by a real
 * store in a temporary directory. Nothing may crash, hang or leak, whatever the bytes.
 * Seeds: tests/fuzz/corpus/request/ (written by request_seeds.py).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/apiserver.h"
#include "core/store.h"
#include "core/transport.h"
#include "platform/error.h"
#include "platform/log.h"
#include "platform/loop.h"
#include "platform/memory.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct {
	struct loop *loop;
	struct transport *transport;
	struct store *store;
	struct apiserver *apiserver;
	int client_fd;
	char dir[64];
} fuzz;

static void die(const char *what, const struct error *err)
{
	fprintf(stderr, "fuzz_request: %s: %s\n", what, err ? err->message : strerror(errno));
	abort();
}

static void remove_state(void)
{
	char command[128];
	snprintf(command, sizeof(command), "rm -rf '%s'", fuzz.dir);
	if (system(command) != 0)
		fprintf(stderr, "fuzz_request: could not remove %s\n", fuzz.dir);
}

static void setup(void)
{
	struct error err = { 0 };
	log_setup("fuzz", LOG_TARGET_STDERR, LOG_LEVEL_ERROR);
	snprintf(fuzz.dir, sizeof(fuzz.dir), "/tmp/bramble-fuzz.XXXXXX");
	if (!mkdtemp(fuzz.dir))
		die("mkdtemp", NULL);
	atexit(remove_state);
	static const uint8_t key[STORE_SECRET_KEY_SIZE] = { 7 };
	char path[128];
	snprintf(path, sizeof(path), "%s/store.db", fuzz.dir);
	struct store_options store_options = { .path = path, .secret_key = key, .change_log_limit = 1000 };
	if (loop_new(&fuzz.loop) < 0)
		die("loop", NULL);
	if (store_open(&store_options, &fuzz.store, &err) < 0)
		die("store", &err);
	if (transport_new(fuzz.loop, &fuzz.transport, &err) < 0)
		die("transport", &err);
	struct apiserver_options api_options = { .max_body_bytes = 64 * 1024, .version_json = "{}" };
	if (apiserver_new(fuzz.transport, fuzz.store, &api_options, &fuzz.apiserver, &err) < 0 ||
	    apiserver_bootstrap(fuzz.apiserver, &err) < 0)
		die("apiserver", &err);
	/* A port picked by the kernel, then handed to the plain loopback listener. */
	int probe = socket(AF_INET, SOCK_DGRAM, 0);
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(sin);
	if (bind(probe, (struct sockaddr *)&sin, sizeof(sin)) < 0 ||
	    getsockname(probe, (struct sockaddr *)&sin, &len) < 0)
		die("probe port", NULL);
	close(probe);
	char address[32];
	snprintf(address, sizeof(address), "127.0.0.1:%u", ntohs(sin.sin_port));
	if (transport_listen_plain_loopback(fuzz.transport, address, &err) < 0)
		die("listen", &err);
	fuzz.client_fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
	if (connect(fuzz.client_fd, (struct sockaddr *)&sin, sizeof(sin)) < 0)
		die("connect", NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!fuzz.loop)
		setup();
	if (size == 0 || size > 1400)
		return 0;
	if (send(fuzz.client_fd, data, size, 0) < 0)
		return 0;
	/* Run the server until it has answered (or for a few idle turns), then drain. */
	uint8_t reply[2048];
	for (int turn = 0; turn < 20; turn++) {
		loop_run_once(fuzz.loop, 2);
		if (recv(fuzz.client_fd, reply, sizeof(reply), 0) > 0)
			break;
	}
	while (recv(fuzz.client_fd, reply, sizeof(reply), 0) > 0)
		;
	return 0;
}
