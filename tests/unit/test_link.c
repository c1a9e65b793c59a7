#include "core/link.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "core/apiserver.h"
#include "core/store.h"
#include "core/transport.h"
#include "platform/clock.h"
#include "platform/error.h"
#include "platform/loop.h"
#include "platform/memory.h"
#include "tests/unit/unit.h"

static const char admin_key[] = "link-test-key-0123456789";

static int lookup(const char *identity, uint8_t *key, void *data)
{
	(void)data;
	if (strcmp(identity, "admin") != 0)
		return -ENOENT;
	memcpy(key, admin_key, sizeof(admin_key) - 1);
	return (int)sizeof(admin_key) - 1;
}

/* An API server on the test's loop, which the link shares (as on a server board). */
struct server {
	struct transport *transport;
	struct store *store;
	struct apiserver *apiserver;
	char address[32];
	char uri[64];
};

static void server_start(struct loop *loop, struct server *s, const char *address)
{
	struct error err = { 0 };
	static const uint8_t secret[STORE_SECRET_KEY_SIZE] = { 1 };
	char path[512];
	snprintf(path, sizeof(path), "%s/store.db", unit_temp_dir());
	struct store_options store_options = { .path = path, .secret_key = secret };
	if (store_open(&store_options, &s->store, &err) < 0 || transport_new(loop, &s->transport, &err) < 0)
		unit_fail(__FILE__, __LINE__, "%s", err.message);
	transport_set_psk_lookup(s->transport, lookup, NULL);
	struct apiserver_options options = { .version_json = "{\"gitVersion\":\"test\"}" };
	if (apiserver_new(s->transport, s->store, &options, &s->apiserver, &err) < 0 ||
	    apiserver_bootstrap(s->apiserver, &err) < 0)
		unit_fail(__FILE__, __LINE__, "%s", err.message);
	if (address) {
		snprintf(s->address, sizeof(s->address), "%s", address);
	} else {
		snprintf(s->address, sizeof(s->address), "127.0.0.1:%u", unit_free_udp_port());
	}
	snprintf(s->uri, sizeof(s->uri), "coaps://%s", s->address);
	if (transport_listen_dtls(s->transport, s->address, &err) < 0)
		unit_fail(__FILE__, __LINE__, "%s", err.message);
}

static void server_stop(struct server *s)
{
	apiserver_free(s->apiserver);
	transport_free(s->transport);
	store_close(s->store);
	memset(s, 0, sizeof(*s) - sizeof(s->address) - sizeof(s->uri));
}

struct observer {
	int ups, downs;
	int answers;
	int last_code;
	char *last_body;
	int notifications;
	int ended;
	char end_message[256];
	bool saw_created;
};

static void on_state(struct link *link, bool up, void *data)
{
	(void)link;
	struct observer *o = data;
	if (up)
		o->ups++;
	else
		o->downs++;
}

static void on_answer(const struct client_response *response, const struct error *err, void *data)
{
	struct observer *o = data;
	o->answers++;
	free(o->last_body);
	o->last_body = NULL;
	if (response) {
		o->last_code = response->code;
		o->last_body = xstrdup(response->body);
	} else {
		o->last_code = -err->code;
	}
}

static void on_notify(int code, const char *body, size_t length, const struct error *err, void *data)
{
	(void)length;
	struct observer *o = data;
	if (code == 205) {
		o->notifications++;
		if (strstr(body, "\"ADDED\"") && strstr(body, "from-link"))
			o->saw_created = true;
	} else {
		o->ended++;
		snprintf(o->end_message, sizeof(o->end_message), "%s", err ? err->message : "");
	}
}

/* Runs the loop until *counter reaches want or 10 s pass. */
static void run_until(struct loop *loop, const int *counter, int want)
{
	uint64_t deadline = clock_monotonic_ms() + 10000;
	while (*counter < want && clock_monotonic_ms() < deadline)
		loop_run_once(loop, 50);
}

static bool run_until_flag(struct loop *loop, const bool *flag)
{
	uint64_t deadline = clock_monotonic_ms() + 10000;
	while (!*flag && clock_monotonic_ms() < deadline)
		loop_run_once(loop, 50);
	return *flag;
}

TEST(link_requests_and_observes_on_a_shared_loop)
{
	struct loop *loop;
	CHECK_OK(loop_new(&loop));
	struct server s;
	server_start(loop, &s, NULL);
	struct observer o = { 0 };
	struct link_options options = { .servers = { s.uri }, .identity = "admin", .key = admin_key };
	struct link *link;
	struct error err = { 0 };
	CHECK_OK(link_new(loop, &options, &link, &err));
	link_set_state_hook(link, on_state, &o);
	CHECK_INT(link_request(link, CLIENT_GET, "/version", NULL, 0, on_answer, &o, &err), ==, -ENOTCONN);
	CHECK_CONTAINS(err.message, "not connected");
	run_until(loop, &o.ups, 1);
	CHECK_INT(o.ups, ==, 1);
	CHECK(link_is_up(link));

	CHECK_OK(link_request(link, CLIENT_GET, "/version", NULL, 0, on_answer, &o, &err));
	CHECK_INT(o.answers, ==, 0); /* never called from within link_request */
	run_until(loop, &o.answers, 1);
	CHECK_INT(o.last_code, ==, 205);
	CHECK_CONTAINS(o.last_body, "gitVersion");

	struct link_observation *watch;
	CHECK_OK(link_observe(link, "/api/v1/namespaces/default/configmaps", on_notify, &o, &watch, &err));
	run_until(loop, &o.notifications, 1);
	CHECK_INT(o.notifications, ==, 1);

	/* Several requests in flight at once, each answered to its own callback. */
	const char *cm = "{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"from-link\"}}";
	CHECK_OK(link_request(link, CLIENT_POST, "/api/v1/namespaces/default/configmaps", cm, strlen(cm), on_answer, &o,
	                      &err));
	CHECK_OK(link_request(link, CLIENT_GET, "/healthz", NULL, 0, on_answer, &o, &err));
	run_until(loop, &o.answers, 3);
	CHECK_INT(o.answers, ==, 3);
	CHECK(run_until_flag(loop, &o.saw_created));

	/* An error answer comes back parsed. */
	CHECK_OK(link_request(link, CLIENT_POST, "/api/v1/namespaces/default/configmaps", cm, strlen(cm), on_answer, &o,
	                      &err));
	run_until(loop, &o.answers, 4);
	CHECK_INT(o.last_code, ==, 409);

	link_observe_cancel(link, watch);
	free(o.last_body);
	link_free(link);
	server_stop(&s);
	loop_free(loop);
}

TEST(link_survives_a_server_restart)
{
	struct loop *loop;
	CHECK_OK(loop_new(&loop));
	struct server s;
	server_start(loop, &s, NULL);
	struct observer o = { 0 };
	struct link_options options = {
		.servers = { s.uri },
		.identity = "admin",
		.key = admin_key,
		.request_timeout_ms = 1500,
		.retry_min_ms = 50,
		.retry_max_ms = 200,
	};
	struct link *link;
	struct error err = { 0 };
	CHECK_OK(link_new(loop, &options, &link, &err));
	link_set_state_hook(link, on_state, &o);
	run_until(loop, &o.ups, 1);
	CHECK(link_is_up(link));
	struct link_observation *watch;
	CHECK_OK(link_observe(link, "/api/v1/namespaces/default/configmaps", on_notify, &o, &watch, &err));
	run_until(loop, &o.notifications, 1);

	/* The server goes away silently (no close alert reaches the link): the next request
	 * gets no answer, the session is dropped and the watch ends with a reason. */
	char address[32];
	snprintf(address, sizeof(address), "%s", s.address);
	server_stop(&s);
	CHECK_OK(link_request(link, CLIENT_GET, "/healthz", NULL, 0, on_answer, &o, &err));
	run_until(loop, &o.downs, 1);
	CHECK_INT(o.downs, ==, 1);
	CHECK_INT(o.last_code, ==, -ECONNRESET);
	CHECK_INT(o.ended, ==, 1);
	CHECK_CONTAINS(o.end_message, "lost the connection");
	CHECK(!link_is_up(link));

	/* Back on the same address: the link reconnects by itself. */
	server_start(loop, &s, address);
	run_until(loop, &o.ups, 2);
	CHECK_INT(o.ups, ==, 2);
	CHECK_OK(link_request(link, CLIENT_GET, "/healthz", NULL, 0, on_answer, &o, &err));
	run_until(loop, &o.answers, 2);
	CHECK_INT(o.last_code, ==, 205);
	free(o.last_body);
	link_free(link);
	server_stop(&s);
	loop_free(loop);
}

TEST(link_refuses_bad_options)
{
	struct loop *loop;
	CHECK_OK(loop_new(&loop));
	struct link *link;
	struct error err = { 0 };
	struct link_options none = { .identity = "admin", .key = admin_key };
	CHECK_INT(link_new(loop, &none, &link, &err), ==, -EINVAL);
	CHECK_CONTAINS(err.message, "no server");
	struct link_options bad = { .servers = { "http://x" }, .identity = "admin", .key = admin_key };
	CHECK_INT(link_new(loop, &bad, &link, &err), ==, -EINVAL);
	CHECK_CONTAINS(err.message, "coaps://");
	struct link_options nokey = { .servers = { "coaps://127.0.0.1:1" }, .identity = "admin", .key = "" };
	CHECK_INT(link_new(loop, &nokey, &link, &err), ==, -EINVAL);
	loop_free(loop);
}
