#include "core/transport.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <sys/socket.h>
#include <unistd.h>

#include "platform/clock.h"
#include "platform/error.h"
#include "platform/loop.h"
#include "platform/memory.h"
#include "tests/unit/unit.h"

static const char server_key[] = "test-key-0123456789";

static int lookup(const char *identity, uint8_t *key, void *data)
{
	(void)data;
	if (strcmp(identity, "admin") != 0)
		return -ENOENT;
	memcpy(key, server_key, sizeof(server_key) - 1);
	return (int)sizeof(server_key) - 1;
}

static void hnd_get_hello(coap_resource_t *resource, coap_session_t *session, const coap_pdu_t *request,
                          const coap_string_t *query, coap_pdu_t *response)
{
	char identity[TRANSPORT_PSK_IDENTITY_MAX + 1], body[200];
	transport_session_identity(session, identity, sizeof(identity));
	snprintf(body, sizeof(body), "hello %s", identity);
	coap_pdu_set_code(response, COAP_RESPONSE_CODE_CONTENT);
	coap_add_data_large_response(resource, session, request, response, query, COAP_MEDIATYPE_TEXT_PLAIN, -1, 0,
	                             strlen(body), (const uint8_t *)body, NULL, NULL);
}

static struct {
	char body[256];
	int responses;
	int dtls_errors;
} client;

static coap_response_t on_response(coap_session_t *session, const coap_pdu_t *sent, const coap_pdu_t *received,
                                   const coap_mid_t id)
{
	size_t len, offset, total;
	const uint8_t *data;
	if (coap_get_data_large(received, &len, &data, &offset, &total) && len < sizeof(client.body)) {
		memcpy(client.body, data, len);
		client.body[len] = '\0';
	}
	client.responses++;
	return COAP_RESPONSE_OK;
}

static int on_event(coap_session_t *session, const coap_event_t event)
{
	if (event == COAP_EVENT_DTLS_ERROR || event == COAP_EVENT_DTLS_CLOSED)
		client.dtls_errors++;
	return 0;
}

struct fixture {
	struct loop *loop;
	struct transport *server, *client;
	char address[64];
};

static void start_server(struct fixture *f)
{
	struct error err;
	CHECK_OK(loop_new(&f->loop));
	CHECK_OK(transport_new(f->loop, &f->server, &err));
	transport_set_psk_lookup(f->server, lookup, NULL);
	coap_resource_t *r = coap_resource_init(coap_make_str_const("hello"), 0);
	coap_register_request_handler(r, COAP_REQUEST_GET, hnd_get_hello);
	coap_add_resource(transport_context(f->server), r);
	snprintf(f->address, sizeof(f->address), "127.0.0.1:%u", unit_free_udp_port());
	if (transport_listen_dtls(f->server, f->address, &err) < 0)
		unit_fail(__FILE__, __LINE__, "%s", err.message);
	CHECK_OK(transport_new(f->loop, &f->client, &err));
	coap_register_response_handler(transport_context(f->client), on_response);
	coap_register_event_handler(transport_context(f->client), on_event);
}

static void get_hello(struct fixture *f, const char *identity, const char *key)
{
	coap_address_t dst;
	CHECK_OK(transport_parse_address(f->address, 0, &dst, NULL));
	coap_dtls_cpsk_t cpsk;
	memset(&cpsk, 0, sizeof(cpsk));
	cpsk.version = COAP_DTLS_CPSK_SETUP_VERSION;
	cpsk.psk_info.identity.s = (const uint8_t *)identity;
	cpsk.psk_info.identity.length = strlen(identity);
	cpsk.psk_info.key.s = (const uint8_t *)key;
	cpsk.psk_info.key.length = strlen(key);
	coap_session_t *s =
	        coap_new_client_session_psk2(transport_context(f->client), NULL, &dst, COAP_PROTO_DTLS, &cpsk);
	CHECK(s != NULL);
	coap_pdu_t *pdu = coap_pdu_init(COAP_MESSAGE_CON, COAP_REQUEST_CODE_GET, coap_new_message_id(s),
	                                coap_session_max_pdu_size(s));
	uint8_t token[8];
	size_t token_len;
	coap_session_new_token(s, &token_len, token);
	coap_add_token(pdu, token_len, token);
	coap_add_option(pdu, COAP_OPTION_URI_PATH, 5, (const uint8_t *)"hello");
	CHECK(coap_send(s, pdu) != COAP_INVALID_MID);
	uint64_t end = clock_monotonic_ms() + 8000;
	while (!client.responses && !client.dtls_errors && clock_monotonic_ms() < end)
		CHECK_OK(loop_run_once(f->loop, 100));
}

static void stop(struct fixture *f)
{
	transport_free(f->client);
	transport_free(f->server);
	loop_free(f->loop);
}

TEST(dtls_psk_round_trip_names_the_identity)
{
	struct fixture f;
	start_server(&f);
	get_hello(&f, "admin", server_key);
	CHECK_INT(client.responses, ==, 1);
	CHECK_STR(client.body, "hello admin");
	stop(&f);
}

TEST(wrong_key_gets_no_answer)
{
	struct fixture f;
	start_server(&f);
	get_hello(&f, "admin", "not-the-right-key-000");
	CHECK_INT(client.responses, ==, 0);
	CHECK_INT(client.dtls_errors, >=, 1);
	stop(&f);
}

TEST(unknown_identity_gets_no_answer)
{
	struct fixture f;
	start_server(&f);
	get_hello(&f, "mallory", server_key);
	CHECK_INT(client.responses, ==, 0);
	CHECK_INT(client.dtls_errors, >=, 1);
	stop(&f);
}

TEST(parse_address_forms)
{
	coap_address_t a;
	struct error err;
	CHECK_OK(transport_parse_address("192.0.2.1:6000", 5684, &a, &err));
	CHECK_INT(a.addr.sa.sa_family, ==, AF_INET);
	CHECK_INT(ntohs(a.addr.sin.sin_port), ==, 6000);
	CHECK_OK(transport_parse_address("[::1]", 5684, &a, &err));
	CHECK_INT(a.addr.sa.sa_family, ==, AF_INET6);
	CHECK_INT(ntohs(a.addr.sin6.sin6_port), ==, 5684);
	CHECK_OK(transport_parse_address(":7000", 5684, &a, &err));
	CHECK_INT(ntohs(a.addr.sin.sin_port), ==, 7000);
	CHECK_OK(transport_parse_address("localhost:1", 5684, &a, &err));
	CHECK_INT(transport_parse_address("::1:5684", 5684, &a, &err), ==, -EINVAL);
	CHECK_CONTAINS(err.message, "[addr]:port");
	CHECK_INT(transport_parse_address("10.0.0.1:99999", 5684, &a, &err), ==, -EINVAL);
	CHECK_CONTAINS(err.message, "port must be a number");
	CHECK_INT(transport_parse_address("pi.local:5684", 5684, &a, &err), ==, -EINVAL);
	CHECK_CONTAINS(err.message, "not a numeric IPv4 or IPv6 address");
	CHECK_INT(transport_parse_address("[::1", 5684, &a, &err), ==, -EINVAL);
}

TEST(plain_coap_only_on_loopback)
{
	struct loop *loop;
	struct transport *t;
	struct error err;
	CHECK_OK(loop_new(&loop));
	CHECK_OK(transport_new(loop, &t, &err));
	CHECK_INT(transport_listen_plain_loopback(t, "0.0.0.0:5683", &err), ==, -EPERM);
	CHECK_CONTAINS(err.message, "only loopback addresses may be unencrypted");
	char address[64];
	snprintf(address, sizeof(address), "127.0.0.1:%u", unit_free_udp_port());
	CHECK_OK(transport_listen_plain_loopback(t, address, &err));
	transport_free(t);
	loop_free(loop);
}

TEST(dtls_listener_needs_identities)
{
	struct loop *loop;
	struct transport *t;
	struct error err;
	CHECK_OK(loop_new(&loop));
	CHECK_OK(transport_new(loop, &t, &err));
	CHECK_INT(transport_listen_dtls(t, "127.0.0.1:0", &err), ==, -EINVAL);
	CHECK_CONTAINS(err.message, "no PSK identities");
	transport_free(t);
	loop_free(loop);
}
