#include "core/bootstrap.h"

#include <errno.h>
#include <stdio.h>

#include "core/authz.h"
#include "core/store.h"
#include "platform/error.h"
#include "platform/memory.h"
#include "tests/unit/unit.h"

static const char hash_zero[] = "sha256:0000000000000000000000000000000000000000000000000000000000000000";

TEST(parses_a_join_string_and_formats_it_back)
{
	struct bootstrap_token t;
	struct error err;
	char text[160];
	snprintf(text, sizeof(text), "abcdef.0123456789abcdef:%s", hash_zero);
	CHECK_OK(bootstrap_token_parse(text, true, &t, &err));
	CHECK_STR(t.id, "abcdef");
	CHECK_STR(t.secret, "0123456789abcdef");
	CHECK_STR(t.hash, hash_zero);
	char again[160];
	bootstrap_token_format(&t, again, sizeof(again));
	CHECK_STR(again, text);
	CHECK_OK(bootstrap_token_parse("abcdef.0123456789abcdef", false, &t, &err));
	CHECK_STR(t.hash, "");
}

TEST(refuses_malformed_tokens_saying_what_is_wrong)
{
	struct bootstrap_token t;
	struct error err;
	CHECK_INT(bootstrap_token_parse("abcdef.0123456789abcdef", true, &t, &err), ==, -EINVAL);
	CHECK_CONTAINS(err.message, "has no cluster hash");
	CHECK_INT(bootstrap_token_parse("abc.0123456789abcdef", false, &t, &err), ==, -EINVAL);
	CHECK_CONTAINS(err.message, "is not a join token");
	CHECK_INT(bootstrap_token_parse("ABCDEF.0123456789abcdef", false, &t, &err), ==, -EINVAL);
	CHECK_CONTAINS(err.message, "lowercase letters and digits");
	CHECK_INT(bootstrap_token_parse("abcdef.0123456789abcdef:md5:00", false, &t, &err), ==, -EINVAL);
	CHECK_CONTAINS(err.message, "sha256:<64 hex digits>");
	CHECK_INT(bootstrap_token_parse("", false, &t, &err), ==, -EINVAL);
}

TEST(generated_tokens_have_the_kubernetes_shape)
{
	struct bootstrap_token a, b;
	CHECK_OK(bootstrap_token_generate(&a, NULL));
	CHECK_OK(bootstrap_token_generate(&b, NULL));
	char text[64];
	bootstrap_token_format(&a, text, sizeof(text));
	struct bootstrap_token parsed;
	CHECK_OK(bootstrap_token_parse(text, false, &parsed, NULL));
	CHECK(strcmp(a.secret, b.secret) != 0);
}

TEST(token_psk_is_derived_not_the_secret)
{
	char k1[BOOTSTRAP_PSK_SIZE], k2[BOOTSTRAP_PSK_SIZE], k3[BOOTSTRAP_PSK_SIZE];
	bootstrap_token_psk("abcdef", "0123456789abcdef", k1);
	bootstrap_token_psk("abcdef", "0123456789abcdef", k2);
	bootstrap_token_psk("abcdeg", "0123456789abcdef", k3);
	CHECK_INT(strlen(k1), ==, 32); /* mbedTLS takes PSKs of up to 32 bytes */
	CHECK_STR(k1, k2);
	CHECK(strcmp(k1, k3) != 0);
	CHECK(!strstr(k1, "0123456789abcdef"));
}

TEST(node_identities_carry_a_generation)
{
	char name[64];
	unsigned long g = 99;
	CHECK_OK(bootstrap_node_identity("node:pi-2@3", name, &g));
	CHECK_STR(name, "pi-2");
	CHECK_INT(g, ==, 3);
	CHECK_OK(bootstrap_node_identity("node:pi-2", name, &g));
	CHECK_INT(g, ==, 0);
	CHECK_INT(bootstrap_node_identity("node:pi-2@", name, &g), ==, -EINVAL);
	CHECK_INT(bootstrap_node_identity("node:pi-2@0", name, &g), ==, -EINVAL);
	CHECK_INT(bootstrap_node_identity("admin", name, &g), ==, -EINVAL);
	char principal[] = "node:pi-2@12";
	authz_principal(principal);
	CHECK_STR(principal, "node:pi-2");
	char other[] = "token:abcdef";
	authz_principal(other);
	CHECK_STR(other, "token:abcdef");
}

TEST(cluster_key_signs_and_the_hash_pins_it)
{
	char *text = NULL, *other_text = NULL;
	struct bootstrap_cluster_key *key = NULL, *other = NULL;
	struct error err;
	CHECK_OK(bootstrap_cluster_key_generate(&text, &err));
	CHECK_OK(bootstrap_cluster_key_parse(text, &key, &err));
	CHECK_OK(bootstrap_cluster_key_generate(&other_text, &err));
	CHECK_OK(bootstrap_cluster_key_parse(other_text, &other, &err));
	const char *hash = bootstrap_cluster_key_hash(key);
	CHECK_INT(strlen(hash), ==, BOOTSTRAP_HASH_SIZE - 1);
	CHECK(strncmp(hash, "sha256:", 7) == 0);

	/* The same text gives the same public key (the server restarts). */
	struct bootstrap_cluster_key *again = NULL;
	CHECK_OK(bootstrap_cluster_key_parse(text, &again, &err));
	CHECK_STR(bootstrap_cluster_key_hash(again), hash);
	bootstrap_cluster_key_free(again);

	char signature[BOOTSTRAP_SIGNATURE_HEX_MAX];
	cleanup_free char *message = bootstrap_cluster_message("00112233445566778899aabbccddeeff", "token:abcdef");
	CHECK_OK(bootstrap_cluster_key_sign(key, message, signature, &err));
	CHECK_OK(bootstrap_verify(bootstrap_cluster_key_public(key), hash, message, signature, &err));

	/* Another cluster's key: the hash does not match, whatever it signs. */
	char other_signature[BOOTSTRAP_SIGNATURE_HEX_MAX];
	CHECK_OK(bootstrap_cluster_key_sign(other, message, other_signature, &err));
	CHECK_INT(bootstrap_verify(bootstrap_cluster_key_public(other), hash, message, other_signature, &err), ==,
	          -EKEYREJECTED);
	CHECK_CONTAINS(err.message, "does not match the token");
	CHECK_CONTAINS(err.message, hash);
	/* The right public key, replayed with a signature it did not make: refused. */
	CHECK_INT(bootstrap_verify(bootstrap_cluster_key_public(key), hash, message, other_signature, &err), ==,
	          -EBADMSG);
	CHECK_CONTAINS(err.message, "did not prove it holds the cluster key");
	/* A signature of another nonce: refused. */
	cleanup_free char *replay = bootstrap_cluster_message("ffeeddccbbaa99887766554433221100", "token:abcdef");
	CHECK_INT(bootstrap_verify(bootstrap_cluster_key_public(key), hash, replay, signature, &err), ==, -EBADMSG);
	CHECK_INT(bootstrap_cluster_key_parse("# nothing\nxyz\n", &again, &err), ==, -EINVAL);

	bootstrap_cluster_key_free(key);
	bootstrap_cluster_key_free(other);
	free(text);
	free(other_text);
}

static const uint8_t store_key[STORE_SECRET_KEY_SIZE] = { 7 };

static void put_secret(struct store *store, const char *json)
{
	cJSON *object = cJSON_Parse(json);
	CHECK(object);
	struct store_request request = {
		STORE_CREATE,  "secrets",
		"kube-system", cJSON_GetObjectItem(cJSON_GetObjectItem(object, "metadata"), "name")->valuestring,
		object,        0
	};
	struct error err;
	CHECK_OK(store_apply(store, &request, NULL, NULL, &err));
	CHECK_OK(store_commit(store, &err));
	cJSON_Delete(object);
}

static int fallback(const char *identity, uint8_t *key, void *data)
{
	(void)data;
	if (strcmp(identity, "admin") != 0)
		return -ENOENT;
	memcpy(key, "admin-key-0123456", 17);
	return 17;
}

TEST(psk_lookup_knows_tokens_issued_credentials_and_the_file)
{
	cleanup_free char *path = xasprintf("%s/store.db", unit_temp_dir());
	struct store_options options = { .path = path, .secret_key = store_key };
	struct store *store = NULL;
	struct error err;
	CHECK_OK(store_open(&options, &store, &err));
	/* token-id abcdef, token-secret 0123456789abcdef (base64) */
	put_secret(store,
	           "{\"apiVersion\":\"v1\",\"kind\":\"Secret\",\"metadata\":{\"name\":\"bootstrap-token-abcdef\","
	           "\"namespace\":\"kube-system\"},\"type\":\"bootstrap.kubernetes.io/token\",\"data\":{"
	           "\"token-id\":\"YWJjZGVm\",\"token-secret\":\"MDEyMzQ1Njc4OWFiY2RlZg==\"}}");
	/* node pi-2: generation 2 key "new-key-0123456789", previous 1 "old-key-0123456789" */
	put_secret(store, "{\"apiVersion\":\"v1\",\"kind\":\"Secret\",\"metadata\":{\"name\":\"node-credential-pi-2\","
	                  "\"namespace\":\"kube-system\"},\"type\":\"bramble.io/node-credential\",\"data\":{"
	                  "\"node\":\"cGktMg==\",\"generation\":\"Mg==\",\"key\":\"bmV3LWtleS0wMTIzNDU2Nzg5\","
	                  "\"previous-generation\":\"MQ==\",\"previous-key\":\"b2xkLWtleS0wMTIzNDU2Nzg5\"}}");
	struct bootstrap_options bo = { .store = store, .fallback = fallback };
	struct bootstrap *b = NULL;
	CHECK_OK(bootstrap_new(&bo, &b, &err));
	uint8_t key[TRANSPORT_PSK_KEY_MAX + 1];
	char expected[BOOTSTRAP_PSK_SIZE];
	bootstrap_token_psk("abcdef", "0123456789abcdef", expected);
	int n = bootstrap_psk_lookup("token:abcdef", key, b);
	CHECK_INT(n, ==, 32);
	CHECK(memcmp(key, expected, 32) == 0);
	CHECK_INT(bootstrap_psk_lookup("token:zzzzzz", key, b), ==, -ENOENT);
	CHECK_INT(bootstrap_psk_lookup("token:../../x", key, b), ==, -ENOENT);
	n = bootstrap_psk_lookup("node:pi-2@2", key, b);
	CHECK_INT(n, ==, 18);
	CHECK(memcmp(key, "new-key-0123456789", 18) == 0);
	n = bootstrap_psk_lookup("node:pi-2@1", key, b);
	CHECK_INT(n, ==, 18);
	CHECK(memcmp(key, "old-key-0123456789", 18) == 0);
	CHECK_INT(bootstrap_psk_lookup("node:pi-2@3", key, b), ==, -ENOENT);
	CHECK_INT(bootstrap_psk_lookup("node:pi-3@1", key, b), ==, -ENOENT);
	CHECK_INT(bootstrap_psk_lookup("admin", key, b), ==, 17);

	/* Until pi-2 used generation 2 nothing changes; its first request drops generation 1. */
	bootstrap_on_identity(b, "node:pi-2@2");
	CHECK_INT(bootstrap_psk_lookup("node:pi-2@1", key, b), ==, -ENOENT);
	CHECK_INT(bootstrap_psk_lookup("node:pi-2@2", key, b), ==, 18);
	bootstrap_free(b);
	store_close(store);
}
