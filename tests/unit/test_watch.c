#include "core/watch.h"

#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/object.h"
#include "core/selector.h"
#include "core/store.h"
#include "core/transport.h"
#include "platform/error.h"
#include "platform/loop.h"
#include "platform/memory.h"
#include "tests/unit/unit.h"

/* A watcher: a UDP socket standing in for the client, and a libcoap session towards it. */
struct fixture {
	struct loop *loop;
	struct transport *transport;
	coap_session_t *session;
	int client_fd;
	struct watch_hub *hub;
};

static void start(struct fixture *f, size_t per_session)
{
	struct error err;
	CHECK_OK(loop_new(&f->loop));
	CHECK_OK(transport_new(f->loop, &f->transport, &err));
	f->client_fd = socket(AF_INET, SOCK_DGRAM, 0);
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(sin);
	CHECK_OK(bind(f->client_fd, (struct sockaddr *)&sin, sizeof(sin)));
	CHECK_OK(getsockname(f->client_fd, (struct sockaddr *)&sin, &len));
	coap_address_t dst;
	char address[32];
	snprintf(address, sizeof(address), "127.0.0.1:%u", ntohs(sin.sin_port));
	CHECK_OK(transport_parse_address(address, 0, &dst, &err));
	f->session = coap_new_client_session(transport_context(f->transport), NULL, &dst, COAP_PROTO_UDP);
	CHECK(f->session != NULL);
	f->hub = watch_hub_new(per_session);
}

static void stop(struct fixture *f)
{
	watch_hub_free(f->hub);
	coap_session_release(f->session);
	transport_free(f->transport);
	loop_free(f->loop);
	close(f->client_fd);
}

static int add(struct fixture *f, uint8_t token_byte, const char *labels)
{
	uint8_t token_bytes[2] = { 0xab, token_byte };
	coap_bin_const_t token = { sizeof(token_bytes), token_bytes };
	struct watch_spec spec = {
		.kind = kind_lookup("v1", "ConfigMap"),
		.resource_key = "configmaps",
		.namespace = "default",
	};
	struct error err;
	if (labels)
		CHECK_OK(selector_parse_labels(labels, &spec.labels, &err));
	uint32_t sequence;
	return watch_add(f->hub, f->session, &token, &spec, &sequence, &err);
}

static void change(struct fixture *f, enum store_event type, uint64_t revision, const char *name, const char *app,
                   const char *previous_app)
{
	char object[256], previous[256];
	snprintf(object, sizeof(object),
	         "{\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"%s\",\"namespace\":\"default\",\"labels\":{\"app\":"
	         "\"%s\"},\"resourceVersion\":\"%llu\"}}",
	         name, app, (unsigned long long)revision);
	snprintf(previous, sizeof(previous),
	         "{\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"%s\",\"namespace\":\"default\",\"labels\":{\"app\":"
	         "\"%s\"}}}",
	         name, previous_app ? previous_app : "");
	struct store_change c = {
		type, revision, "configmaps", "default", name, object, previous_app ? previous : NULL
	};
	watch_on_change(&c, f->hub);
}

/* Sends an empty ACK back to libcoap's socket (the sender of what we received). */
static struct sockaddr_in last_sender;

static ssize_t send_ack(struct fixture *f, const uint8_t ack[4])
{
	return sendto(f->client_fd, ack, 4, 0, (struct sockaddr *)&last_sender, sizeof(last_sender));
}

/* The next datagram the watcher received (its payload starts at the JSON). */
static char *receive(struct fixture *f)
{
	/* libcoap sends from its own descriptor once the loop runs. */
	for (int i = 0; i < 20; i++)
		loop_run_once(f->loop, 5);
	struct pollfd p = { .fd = f->client_fd, .events = POLLIN };
	if (poll(&p, 1, 2000) <= 0)
		return NULL;
	static char datagram[2048];
	socklen_t sender_len = sizeof(last_sender);
	ssize_t n =
	        recvfrom(f->client_fd, datagram, sizeof(datagram) - 1, 0, (struct sockaddr *)&last_sender, &sender_len);
	if (n <= 0)
		return NULL;
	datagram[n] = '\0';
	/* Acknowledge it as a client would: libcoap holds further confirmable messages to this
	 * peer until then (NSTART = 1). */
	uint8_t ack[4] = { 0x60, 0, (uint8_t)datagram[2], (uint8_t)datagram[3] };
	CHECK_INT(send_ack(f, ack), ==, 4);
	char *json = memmem(datagram, (size_t)n, "{\"kind\"", 7);
	CHECK(json != NULL);
	CHECK_INT(datagram[1], ==, COAP_RESPONSE_CODE_CONTENT); /* a 2.05 notification */
	return json;
}

/* Positions of each needle in order: all present and increasing. */
static void check_in_order(const char *text, const char *const needles[], size_t count)
{
	const char *at = text;
	for (size_t i = 0; i < count; i++) {
		const char *found = strstr(at, needles[i]);
		if (!found)
			unit_fail(__FILE__, __LINE__, "expected %s after offset %zu in %s", needles[i],
			          (size_t)(at - text), text);
		at = found + strlen(needles[i]);
	}
}

TEST(selector_transitions_become_added_and_deleted)
{
	struct fixture f;
	start(&f, 4);
	CHECK_OK(add(&f, 1, "app=web"));
	change(&f, STORE_ADDED, 11, "a", "web", NULL);     /* matches: ADDED */
	change(&f, STORE_ADDED, 12, "b", "db", NULL);      /* never matches */
	change(&f, STORE_MODIFIED, 13, "a", "db", "web");  /* leaves the selector: DELETED */
	change(&f, STORE_MODIFIED, 14, "b", "web", "db");  /* enters it: ADDED */
	change(&f, STORE_MODIFIED, 15, "b", "web", "web"); /* stays: MODIFIED */
	change(&f, STORE_DELETED, 16, "b", "web", "web");  /* DELETED */
	CHECK_INT(watch_flush(f.hub), ==, 1);
	char *json = receive(&f);
	CHECK(json != NULL);
	static const char *const order[] = {
		"\"resourceVersion\":\"16\"",
		"\"type\":\"ADDED\",\"object\":{\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"a\"",
		"\"type\":\"DELETED\",\"object\":{\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"a\"",
		"\"type\":\"ADDED\",\"object\":{\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"b\"",
		"\"type\":\"MODIFIED\",\"object\":{\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"b\"",
		"\"type\":\"DELETED\",\"object\":{\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"b\"",
	};
	check_in_order(json, order, ARRAY_SIZE(order));
	CHECK(strstr(json, "\"resourceVersion\":\"12\"") == NULL); /* b as db never sent */
	CHECK_INT(watch_flush(f.hub), ==, 0);                      /* nothing new */
	stop(&f);
}

TEST(other_namespaces_and_resources_are_not_sent)
{
	struct fixture f;
	start(&f, 4);
	CHECK_OK(add(&f, 1, NULL));
	struct store_change other_ns = { STORE_ADDED,  5,
		                         "configmaps", "kube-system",
		                         "x",          "{\"metadata\":{\"name\":\"x\",\"namespace\":\"kube-system\"}}",
		                         NULL };
	struct store_change other_kind = { STORE_ADDED, 6,
		                           "secrets",   "default",
		                           "x",         "{\"metadata\":{\"name\":\"x\",\"namespace\":\"default\"}}",
		                           NULL };
	watch_on_change(&other_ns, f.hub);
	watch_on_change(&other_kind, f.hub);
	CHECK_INT(watch_flush(f.hub), ==, 0);
	stop(&f);
}

TEST(per_session_limit_and_replacement_by_token)
{
	struct fixture f;
	start(&f, 2);
	CHECK_OK(add(&f, 1, NULL));
	CHECK_OK(add(&f, 2, NULL));
	CHECK_INT(add(&f, 3, NULL), ==, -EBUSY);
	CHECK_OK(add(&f, 2, "app=web")); /* same token: replaces, does not count twice */
	CHECK_INT(watch_count(f.hub), ==, 2);
	uint8_t token_bytes[2] = { 0xab, 1 };
	coap_bin_const_t token = { 2, token_bytes };
	watch_remove(f.hub, f.session, &token);
	CHECK_INT(watch_count(f.hub), ==, 1);
	watch_remove_session(f.hub, f.session);
	CHECK_INT(watch_count(f.hub), ==, 0);
	stop(&f);
}

TEST(a_batch_too_large_for_a_datagram_goes_in_several_notifications_in_order)
{
	struct fixture f;
	start(&f, 4);
	CHECK_OK(add(&f, 1, NULL));
	for (int i = 0; i < 40; i++) {
		char name[16];
		snprintf(name, sizeof(name), "n%d", i);
		change(&f, STORE_ADDED, (uint64_t)(100 + i), name, "web", NULL);
	}
	size_t sent = watch_flush(f.hub);
	CHECK_INT(sent, >, 1);
	int next = 0; /* the name expected next: n0, n1, ... */
	for (size_t i = 0; i < sent; i++) {
		char *json = receive(&f);
		CHECK(json != NULL);
		CHECK(strstr(json, "truncated") == NULL);
		int last = -1;
		for (const char *at = strstr(json, "\"name\":\"n"); at; at = strstr(at + 1, "\"name\":\"n")) {
			int n = atoi(at + strlen("\"name\":\"n"));
			CHECK_INT(n, ==, next);
			last = n;
			next++;
		}
		/* Each says the revision of its last event. */
		char revision[64];
		snprintf(revision, sizeof(revision), "{\"kind\":\"WatchEvents\",\"resourceVersion\":\"%d\"",
		         100 + last);
		CHECK_CONTAINS(json, revision);
	}
	CHECK_INT(next, ==, 40);
	CHECK_INT(watch_flush(f.hub), ==, 0);
	stop(&f);
}

static void big_change(struct fixture *f, uint64_t revision, size_t size)
{
	char *object = xmalloc(size + 128);
	int n = snprintf(object, size + 128,
	                 "{\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"big\",\"namespace\":\"default\"},"
	                 "\"data\":{\"x\":\"");
	memset(object + n, 'x', size);
	strcpy(object + n + size, "\"}}");
	struct store_change c = { STORE_ADDED, revision, "configmaps", "default", "big", object, NULL };
	watch_on_change(&c, f->hub);
	free(object);
}

TEST(an_event_too_large_for_a_datagram_is_sent_truncated)
{
	struct fixture f;
	start(&f, 4);
	CHECK_OK(add(&f, 1, NULL));
	change(&f, STORE_ADDED, 200, "small", "web", NULL);
	big_change(&f, 201, 3000);
	change(&f, STORE_ADDED, 202, "after", "web", NULL);
	CHECK_INT(watch_flush(f.hub), ==, 2);
	char *json = receive(&f);
	CHECK(json != NULL);
	CHECK_CONTAINS(json, "\"resourceVersion\":\"200\",\"events\":[{\"type\":\"ADDED\"");
	json = receive(&f);
	CHECK(json != NULL);
	/* The rest is fetched with GET from 200, the last revision delivered. */
	CHECK_STR(json, "{\"kind\":\"WatchEvents\",\"resourceVersion\":\"202\",\"truncated\":true,\"from\":\"200\"}");
	/* After it, the watch continues from 202. */
	change(&f, STORE_ADDED, 203, "later", "web", NULL);
	CHECK_INT(watch_flush(f.hub), ==, 1);
	json = receive(&f);
	CHECK(json != NULL);
	CHECK_CONTAINS(json, "\"resourceVersion\":\"203\",\"events\":[{\"type\":\"ADDED\"");
	stop(&f);
}

TEST(a_queue_past_its_limit_is_sent_truncated)
{
	struct fixture f;
	start(&f, 4);
	CHECK_OK(add(&f, 1, NULL));
	for (int i = 0; i < 100; i++) /* 100 KB queued before a flush: more than WATCH_QUEUE_MAX_BYTES */
		big_change(&f, (uint64_t)(300 + i), 1000);
	CHECK_INT(watch_flush(f.hub), ==, 1);
	char *json = receive(&f);
	CHECK(json != NULL);
	CHECK_STR(json, "{\"kind\":\"WatchEvents\",\"resourceVersion\":\"399\",\"truncated\":true,\"from\":\"0\"}");
	stop(&f);
}

/* A kubelet's watch: pods whose spec.nodeName is node (NULL: every pod). */
static int add_node_watch(struct fixture *f, uint8_t token_byte, const char *node)
{
	uint8_t token_bytes[2] = { 0xab, token_byte };
	coap_bin_const_t token = { sizeof(token_bytes), token_bytes };
	struct watch_spec spec = { .kind = kind_lookup("v1", "Pod"), .resource_key = "pods" };
	struct error err;
	if (node) {
		char query[64];
		snprintf(query, sizeof(query), "spec.nodeName=%s", node);
		CHECK_OK(selector_parse_fields(query, &spec.fields, &err));
	}
	uint32_t sequence;
	return watch_add(f->hub, f->session, &token, &spec, &sequence, &err);
}

static void pod_change(struct fixture *f, enum store_event type, uint64_t revision, const char *node,
                       const char *previous_node)
{
	char object[256], previous[256];
	snprintf(object, sizeof(object),
	         "{\"kind\":\"Pod\",\"metadata\":{\"name\":\"p\",\"namespace\":\"default\",\"resourceVersion\":\"%"
	         "llu\"},"
	         "\"spec\":{\"nodeName\":\"%s\"}}",
	         (unsigned long long)revision, node);
	snprintf(previous, sizeof(previous),
	         "{\"kind\":\"Pod\",\"metadata\":{\"name\":\"p\",\"namespace\":\"default\"},\"spec\":{\"nodeName\":\"%"
	         "s\"}}",
	         previous_node ? previous_node : "");
	struct store_change c = { type, revision, "pods", "default", "p", object, previous_node ? previous : NULL };
	watch_on_change(&c, f->hub);
}

#define POD_AT                                                                                                         \
	"\"object\":{\"kind\":\"Pod\",\"metadata\":{\"name\":\"p\",\"namespace\":\"default\",\"resourceVersion\":\""

TEST(node_watches_see_only_their_node_even_among_many)
{
	struct fixture f;
	start(&f, 300);
	char node[16];
	for (int i = 1; i <= 200; i++) { /* the kubelets of 200 boards, and one watching everything */
		snprintf(node, sizeof(node), "pi-%d", i);
		CHECK_OK(add_node_watch(&f, (uint8_t)i, node));
	}
	CHECK_OK(add_node_watch(&f, 201, NULL));
	pod_change(&f, STORE_ADDED, 21, "pi-1", NULL);
	pod_change(&f, STORE_MODIFIED, 22, "pi-2", "pi-1"); /* moved: pi-1 loses it, pi-2 gains it */
	pod_change(&f, STORE_DELETED, 23, "pi-2", "pi-2");
	CHECK_INT(watch_flush(f.hub), ==, 3); /* pi-1, pi-2 and the one watching everything */
	int with_three = 0, for_pi1 = 0, for_pi2 = 0;
	for (int i = 0; i < 3; i++) {
		char *json = receive(&f);
		CHECK(json != NULL);
		if (strstr(json, "\"MODIFIED\"")) {
			static const char *const all[] = { "\"ADDED\"", "\"MODIFIED\"", "\"DELETED\"" };
			check_in_order(json, all, ARRAY_SIZE(all));
			with_three++;
		} else {
			/* A node's watch: the pod ADDED at one revision, DELETED (moved away or gone) at
			 * the next. */
			bool pi1 = strstr(json, "\"nodeName\":\"pi-1\"") != NULL;
			char added[128], deleted[128];
			snprintf(added, sizeof(added), "\"ADDED\",%s%d\"", POD_AT, pi1 ? 21 : 22);
			snprintf(deleted, sizeof(deleted), "\"DELETED\",%s%d\"", POD_AT, pi1 ? 22 : 23);
			const char *const order[] = { added, deleted };
			check_in_order(json, order, ARRAY_SIZE(order));
			for_pi1 += pi1;
			for_pi2 += !pi1;
		}
	}
	CHECK_INT(with_three, ==, 1);
	CHECK_INT(for_pi1, ==, 1);
	CHECK_INT(for_pi2, ==, 1);
	/* Removing watches keeps the groups consistent: pi-2's is gone, pi-3's still matches. */
	uint8_t token_bytes[2] = { 0xab, 2 };
	coap_bin_const_t token = { 2, token_bytes };
	watch_remove(f.hub, f.session, &token);
	pod_change(&f, STORE_ADDED, 24, "pi-2", NULL);
	pod_change(&f, STORE_ADDED, 25, "pi-3", NULL);
	CHECK_INT(watch_flush(f.hub), ==, 2); /* pi-3 and the one watching everything */
	CHECK(receive(&f) != NULL);
	CHECK(receive(&f) != NULL);
	watch_remove_session(f.hub, f.session);
	CHECK_INT(watch_count(f.hub), ==, 0);
	pod_change(&f, STORE_ADDED, 26, "pi-3", NULL);
	CHECK_INT(watch_flush(f.hub), ==, 0);
	stop(&f);
}
