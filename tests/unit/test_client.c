#include "core/client.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/apiserver.h"
#include "core/store.h"
#include "core/transport.h"
#include "platform/buffer.h"
#include "platform/clock.h"
#include "platform/error.h"
#include "platform/loop.h"
#include "platform/memory.h"
#include "tests/unit/unit.h"

static const char admin_key[] = "client-test-key-0123456789";

static int lookup(const char *identity, uint8_t *key, void *data)
{
	(void)data;
	if (strcmp(identity, "admin") != 0)
		return -ENOENT;
	memcpy(key, admin_key, sizeof(admin_key) - 1);
	return (int)sizeof(admin_key) - 1;
}

/* An API server and a store on the test's loop; clients share the loop. */
struct server {
	struct loop *loop;
	struct transport *transport;
	struct store *store;
	struct apiserver *apiserver;
	char uri[64];
};

static void server_start(struct server *s)
{
	struct error err = { 0 };
	static const uint8_t secret[STORE_SECRET_KEY_SIZE] = { 1 };
	char path[512];
	snprintf(path, sizeof(path), "%s/store.db", unit_temp_dir());
	struct store_options store_options = { .path = path, .secret_key = secret };
	CHECK_OK(loop_new(&s->loop));
	if (store_open(&store_options, &s->store, &err) < 0 || transport_new(s->loop, &s->transport, &err) < 0)
		unit_fail(__FILE__, __LINE__, "%s", err.message);
	transport_set_psk_lookup(s->transport, lookup, NULL);
	struct apiserver_options options = { .version_json = "{}", .max_list_page = 2 };
	if (apiserver_new(s->transport, s->store, &options, &s->apiserver, &err) < 0 ||
	    apiserver_bootstrap(s->apiserver, &err) < 0)
		unit_fail(__FILE__, __LINE__, "%s", err.message);
	uint16_t port = unit_free_udp_port();
	char address[32];
	snprintf(address, sizeof(address), "127.0.0.1:%u", port);
	snprintf(s->uri, sizeof(s->uri), "coaps://127.0.0.1:%u", port);
	if (transport_listen_dtls(s->transport, address, &err) < 0)
		unit_fail(__FILE__, __LINE__, "%s", err.message);
}

static void server_stop(struct server *s)
{
	apiserver_free(s->apiserver);
	transport_free(s->transport);
	store_close(s->store);
	loop_free(s->loop);
}

static struct client *connect_admin(struct server *s)
{
	struct client *c = NULL;
	struct error err = { 0 };
	if (client_open(s->uri, "admin", admin_key, 5000, s->loop, &c, &err) < 0)
		unit_fail(__FILE__, __LINE__, "client_open: %s", err.message);
	return c;
}

static const char configmaps[] = "/api/v1/namespaces/default/configmaps";

TEST(request_create_get_and_not_found)
{
	struct server s;
	server_start(&s);
	struct client *c = connect_admin(&s);
	struct client_response response;
	struct error err = { 0 };
	CHECK_OK(client_request(c, CLIENT_GET, "/healthz", NULL, 0, &response, &err));
	CHECK_INT(response.code, ==, 205);
	CHECK_STR(response.body, "ok");
	client_response_clear(&response);

	const char *cm =
	        "{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"web\"},\"data\":{\"a\":\"1\"}}";
	CHECK_OK(client_request(c, CLIENT_POST, configmaps, cm, strlen(cm), &response, &err));
	CHECK_INT(response.code, ==, 201);
	CHECK_CONTAINS(response.body, "\"resourceVersion\"");
	client_response_clear(&response);

	CHECK_OK(client_request(c, CLIENT_GET, "/api/v1/namespaces/default/configmaps/web", NULL, 0, &response, &err));
	CHECK_INT(response.code, ==, 205);
	CHECK_CONTAINS(response.body, "\"a\":\"1\"");
	CHECK_INT(client_response_error(&response, &err), ==, 0);
	client_response_clear(&response);

	CHECK_OK(client_request(c, CLIENT_GET, "/api/v1/namespaces/default/configmaps/nope", NULL, 0, &response, &err));
	CHECK_INT(response.code, ==, 404);
	CHECK_STR(response.reason, "NotFound");
	CHECK_CONTAINS(response.message, "nope");
	CHECK_INT(client_response_error(&response, &err), ==, -ENOENT);
	client_response_clear(&response);

	CHECK_OK(client_request(c, CLIENT_DELETE, "/api/v1/namespaces/default/configmaps/web", NULL, 0, &response,
	                        &err));
	CHECK_INT(response.code / 100, ==, 2);
	client_response_clear(&response);
	client_close(c);
	server_stop(&s);
}

TEST(error_answers_are_parsed_with_the_field)
{
	struct server s;
	server_start(&s);
	struct client *c = connect_admin(&s);
	struct client_response response;
	struct error err = { 0 };
	const char *pod = "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"p\"},"
	                  "\"spec\":{\"containers\":[{\"name\":\"c\"}]}}";
	CHECK_OK(client_request(c, CLIENT_POST, "/api/v1/namespaces/default/pods", pod, strlen(pod), &response, &err));
	CHECK_INT(response.code, ==, 400);
	CHECK_STR(response.reason, "Invalid");
	CHECK_STR(response.field, "spec.containers[0].image");
	CHECK_INT(client_response_error(&response, &err), ==, -EINVAL);
	CHECK_STR(err.field, "spec.containers[0].image");
	CHECK_CONTAINS(err.message, "Required value");
	client_response_clear(&response);
	client_close(c);
	server_stop(&s);
}

TEST(blockwise_bodies_both_ways)
{
	struct server s;
	server_start(&s);
	struct client *c = connect_admin(&s);
	struct buffer b = BUFFER_INIT;
	buffer_append_string(
	        &b, "{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"big\"},\"data\":{");
	for (int i = 0; i < 100; i++)
		buffer_printf(&b, "%s\"key-%03d\":\"%040d\"", i ? "," : "", i, i);
	buffer_append_string(&b, "}}");
	CHECK_INT(b.length, >, 5000);
	struct client_response response;
	struct error err = { 0 };
	CHECK_OK(client_request(c, CLIENT_POST, configmaps, b.data, b.length, &response, &err));
	CHECK_INT(response.code, ==, 201);
	client_response_clear(&response);
	CHECK_OK(client_request(c, CLIENT_GET, "/api/v1/namespaces/default/configmaps/big", NULL, 0, &response, &err));
	CHECK_INT(response.code, ==, 205);
	CHECK_INT(response.length, >, 5000);
	CHECK_CONTAINS(response.body, "\"key-099\":\"0000000000000000000000000000000000000099\"");
	client_response_clear(&response);
	buffer_free(&b);
	client_close(c);
	server_stop(&s);
}

TEST(query_strings_reach_the_server)
{
	struct server s;
	server_start(&s);
	struct client *c = connect_admin(&s);
	struct client_response response;
	struct error err = { 0 };
	for (int i = 0; i < 3; i++) {
		char body[256];
		snprintf(body, sizeof(body),
		         "{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"cm-%d\",\"labels\":{"
		         "\"app\":\"%s\"}}}",
		         i, i == 1 ? "db" : "web");
		CHECK_OK(client_request(c, CLIENT_POST, configmaps, body, strlen(body), &response, &err));
		CHECK_INT(response.code, ==, 201);
		client_response_clear(&response);
	}
	CHECK_OK(client_request(c, CLIENT_GET, "/api/v1/namespaces/default/configmaps?labelSelector=app%3Ddb", NULL, 0,
	                        &response, &err));
	CHECK_INT(response.code, ==, 205);
	CHECK_CONTAINS(response.body, "cm-1");
	CHECK(!strstr(response.body, "cm-0"));
	client_response_clear(&response);
	/* max_list_page is 2: the first page says where to continue. */
	CHECK_OK(client_request(c, CLIENT_GET, configmaps, NULL, 0, &response, &err));
	CHECK_CONTAINS(response.body, "\"continue\"");
	client_response_clear(&response);
	client_close(c);
	server_stop(&s);
}

TEST(wrong_key_is_a_clear_handshake_error)
{
	struct server s;
	server_start(&s);
	struct client *c = NULL;
	struct error err = { 0 };
	uint64_t start = clock_monotonic_ms();
	CHECK_INT(client_open(s.uri, "admin", "not-the-key-0123456789", 3000, s.loop, &c, &err), ==, -EACCES);
	CHECK(c == NULL);
	CHECK_CONTAINS(err.message, "DTLS handshake");
	CHECK_CONTAINS(err.message, s.uri);
	CHECK_CONTAINS(err.message, "identity 'admin' or its key");
	CHECK_INT(clock_monotonic_ms() - start, <, 3000);
	server_stop(&s);
}

TEST(unknown_identity_is_a_clear_handshake_error)
{
	struct server s;
	server_start(&s);
	struct client *c = NULL;
	struct error err = { 0 };
	CHECK_INT(client_open(s.uri, "mallory", admin_key, 3000, s.loop, &c, &err), ==, -EACCES);
	CHECK_CONTAINS(err.message, "identity 'mallory'");
	server_stop(&s);
}

TEST(no_server_times_out_on_time_and_names_the_address)
{
	char uri[64];
	snprintf(uri, sizeof(uri), "coaps://127.0.0.1:%u", unit_free_udp_port());
	struct client *c = NULL;
	struct error err = { 0 };
	uint64_t start = clock_monotonic_ms();
	CHECK_INT(client_open(uri, "admin", admin_key, 500, NULL, &c, &err), ==, -ETIMEDOUT);
	uint64_t took = clock_monotonic_ms() - start;
	CHECK_INT(took, >=, 450);
	CHECK_INT(took, <, 1500);
	CHECK_CONTAINS(err.message, "no answer from ");
	CHECK_CONTAINS(err.message, uri);
	CHECK_CONTAINS(err.message, "within 0.5 s");
}

TEST(a_silent_address_times_out_too)
{
	/* A socket that receives and never answers: the handshake is never completed. */
	int fd = socket(AF_INET, SOCK_DGRAM, 0);
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(sin);
	CHECK_OK(bind(fd, (struct sockaddr *)&sin, sizeof(sin)));
	CHECK_OK(getsockname(fd, (struct sockaddr *)&sin, &len));
	char uri[64];
	snprintf(uri, sizeof(uri), "coaps://127.0.0.1:%u", ntohs(sin.sin_port));
	struct client *c = NULL;
	struct error err = { 0 };
	uint64_t start = clock_monotonic_ms();
	CHECK_INT(client_open(uri, "admin", admin_key, 500, NULL, &c, &err), ==, -ETIMEDOUT);
	CHECK_INT(clock_monotonic_ms() - start, <, 1500);
	CHECK_CONTAINS(err.message, uri);
	close(fd);
}

TEST(bad_server_addresses)
{
	struct client *c = NULL;
	struct error err = { 0 };
	CHECK_INT(client_open("coap://127.0.0.1:5684", "admin", admin_key, 500, NULL, &c, &err), ==, -EINVAL);
	CHECK_CONTAINS(err.message, "expected coaps://");
	CHECK_INT(client_open("coaps://pi.local:5684", "admin", admin_key, 500, NULL, &c, &err), ==, -EINVAL);
	CHECK_CONTAINS(err.message, "numeric");
	CHECK_INT(client_open("coaps://127.0.0.1:5684", "", admin_key, 500, NULL, &c, &err), ==, -EINVAL);
}

struct watch_state {
	int notifications;
	int saw_added;
};

static int on_notification(int code, const char *body, size_t length, void *data)
{
	struct watch_state *w = data;
	w->notifications++;
	if (code == 205 && strstr(body, "\"type\":\"ADDED\"") && strstr(body, "watched"))
		w->saw_added = 1;
	return w->saw_added ? 7 : 0;
}

TEST(watch_delivers_notifications_until_the_callback_stops)
{
	struct server s;
	server_start(&s);
	struct client *c = connect_admin(&s);
	pid_t child = fork();
	CHECK(child >= 0);
	if (child == 0) {
		/* Another client, in another process, makes the change the watch sees. */
		usleep(300 * 1000);
		struct client *writer = NULL;
		struct client_response response;
		const char *cm = "{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"watched\"}}";
		if (client_open(s.uri, "admin", admin_key, 3000, NULL, &writer, NULL) < 0 ||
		    client_request(writer, CLIENT_POST, configmaps, cm, strlen(cm), &response, NULL) < 0)
			_exit(1);
		_exit(response.code == 201 ? 0 : 2);
	}
	struct watch_state w = { 0 };
	struct error err = { 0 };
	int r = client_watch(c, configmaps, 5000, on_notification, &w, &err);
	CHECK_INT(r, ==, 7);
	CHECK_INT(w.notifications, >=, 2); /* the list, then the event */
	CHECK_INT(w.saw_added, ==, 1);
	int status;
	CHECK_INT(waitpid(child, &status, 0), ==, child);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	/* The watch was deregistered: the server forgets it. */
	for (int i = 0; i < 20 && apiserver_watch_count(s.apiserver) > 0; i++)
		loop_run_once(s.loop, 50);
	CHECK_INT(apiserver_watch_count(s.apiserver), ==, 0);
	/* And the client still works afterwards. */
	struct client_response response;
	CHECK_OK(client_request(c, CLIENT_GET, "/healthz", NULL, 0, &response, &err));
	CHECK_INT(response.code, ==, 205);
	client_response_clear(&response);
	client_close(c);
	server_stop(&s);
}

TEST(watch_ends_at_its_timeout)
{
	struct server s;
	server_start(&s);
	struct client *c = connect_admin(&s);
	struct watch_state w = { 0 };
	struct error err = { 0 };
	uint64_t start = clock_monotonic_ms();
	CHECK_INT(client_watch(c, configmaps, 400, on_notification, &w, &err), ==, 0);
	CHECK_INT(clock_monotonic_ms() - start, <, 2500);
	CHECK_INT(w.notifications, ==, 1);
	client_close(c);
	server_stop(&s);
}
