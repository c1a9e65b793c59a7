/* See bootstrap.h. */
#include "core/bootstrap.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include <cjson/cJSON.h>
#include <mbedtls/base64.h>
#include <mbedtls/ecdsa.h>
#include <mbedtls/ecp.h>
#include <mbedtls/md.h>
#include <mbedtls/sha256.h>

#include "core/object.h"
#include "core/store.h"
#include "platform/clock.h"
#include "platform/error.h"
#include "platform/log.h"
#include "platform/memory.h"

#define BODY_MAX 2048

/* --- small helpers ---------------------------------------------------------------------- */

static bool all_of(const char *s, size_t length, const char *alphabet)
{
	if (strlen(s) != length)
		return false;
	for (size_t i = 0; i < length; i++)
		if (!strchr(alphabet, s[i]) || s[i] == '\0')
			return false;
	return true;
}

static const char lower_alnum[] = "abcdefghijklmnopqrstuvwxyz0123456789";
static const char hex_digits[] = "0123456789abcdef";

static void to_hex(const uint8_t *bytes, size_t length, char *out)
{
	for (size_t i = 0; i < length; i++) {
		out[2 * i] = hex_digits[bytes[i] >> 4];
		out[2 * i + 1] = hex_digits[bytes[i] & 15];
	}
	out[2 * length] = '\0';
}

static int from_hex(const char *hex, uint8_t *out, size_t max, size_t *ret_length)
{
	size_t n = strlen(hex);
	if (n % 2 || n / 2 > max)
		return -EINVAL;
	for (size_t i = 0; i < n / 2; i++) {
		const char *hi = strchr(hex_digits, hex[2 * i]), *lo = strchr(hex_digits, hex[2 * i + 1]);
		if (!hi || !lo || !*hi || !*lo)
			return -EINVAL;
		out[i] = (uint8_t)(((hi - hex_digits) << 4) | (lo - hex_digits));
	}
	*ret_length = n / 2;
	return 0;
}

static int random_bytes(void *ctx, unsigned char *out, size_t length)
{
	(void)ctx;
	while (length > 0) {
		ssize_t n = getrandom(out, length, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return MBEDTLS_ERR_ECP_RANDOM_FAILED;
		out += n;
		length -= (size_t)n;
	}
	return 0;
}

static int random_from(const char *alphabet, size_t alphabet_length, char *out, size_t length, struct error *err)
{
	uint8_t bytes[64];
	if (length > sizeof(bytes) || random_bytes(NULL, bytes, length) != 0)
		return error_set_errno(err, errno, "no randomness");
	for (size_t i = 0; i < length; i++)
		out[i] = alphabet[bytes[i] % alphabet_length]; /* 36 or 62 symbols: slight bias */
	out[length] = '\0';
	explicit_bzero(bytes, sizeof(bytes));
	return 0;
}

int bootstrap_random_key(char key[BOOTSTRAP_NODE_KEY_LENGTH + 1], struct error *err)
{
	static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
	return random_from(alphabet, sizeof(alphabet) - 1, key, BOOTSTRAP_NODE_KEY_LENGTH, err);
}

int bootstrap_random_nonce(char nonce[BOOTSTRAP_NONCE_HEX_SIZE], struct error *err)
{
	uint8_t bytes[(BOOTSTRAP_NONCE_HEX_SIZE - 1) / 2];
	if (random_bytes(NULL, bytes, sizeof(bytes)) != 0)
		return error_set_errno(err, errno, "no randomness");
	to_hex(bytes, sizeof(bytes), nonce);
	return 0;
}

/* --- tokens ----------------------------------------------------------------------------- */

int bootstrap_token_parse(const char *text, bool need_hash, struct bootstrap_token *ret_token, struct error *err)
{
	struct bootstrap_token t;
	memset(&t, 0, sizeof(t));
	const char *dot = strchr(text, '.');
	const char *colon = strchr(text, ':');
	size_t token_length = colon ? (size_t)(colon - text) : strlen(text);
	if (!dot || (colon && dot > colon) || (size_t)(dot - text) != BOOTSTRAP_TOKEN_ID_LENGTH ||
	    token_length != BOOTSTRAP_TOKEN_ID_LENGTH + 1 + BOOTSTRAP_TOKEN_SECRET_LENGTH)
		return error_set(err, EINVAL,
		                 "'%.40s' is not a join token: expected <6 characters>.<16 characters>:sha256:<hash>, "
		                 "as `bramble token create` prints it",
		                 text);
	memcpy(t.id, text, BOOTSTRAP_TOKEN_ID_LENGTH);
	memcpy(t.secret, dot + 1, BOOTSTRAP_TOKEN_SECRET_LENGTH);
	if (!all_of(t.id, BOOTSTRAP_TOKEN_ID_LENGTH, lower_alnum) ||
	    !all_of(t.secret, BOOTSTRAP_TOKEN_SECRET_LENGTH, lower_alnum)) {
		explicit_bzero(&t, sizeof(t));
		return error_set(err, EINVAL, "join token: the id and the secret are lowercase letters and digits");
	}
	if (colon) {
		const char *hash = colon + 1;
		if (strncmp(hash, "sha256:", 7) != 0 || !all_of(hash + 7, 64, hex_digits)) {
			explicit_bzero(&t, sizeof(t));
			return error_set(err, EINVAL,
			                 "join token %s: after ':' expected the cluster hash sha256:<64 hex digits>",
			                 t.id);
		}
		snprintf(t.hash, sizeof(t.hash), "%s", hash);
	} else if (need_hash) {
		explicit_bzero(&t, sizeof(t));
		return error_set(
		        err, EINVAL,
		        "join token %.6s has no cluster hash: use the whole string `bramble token create` "
		        "printed (<id>.<secret>:sha256:<hash>), so the board can check it joins the right cluster",
		        text);
	}
	*ret_token = t;
	explicit_bzero(&t, sizeof(t));
	return 0;
}

int bootstrap_token_generate(struct bootstrap_token *ret_token, struct error *err)
{
	memset(ret_token, 0, sizeof(*ret_token));
	int r = random_from(lower_alnum, sizeof(lower_alnum) - 1, ret_token->id, BOOTSTRAP_TOKEN_ID_LENGTH, err);
	if (r < 0)
		return r;
	return random_from(lower_alnum, sizeof(lower_alnum) - 1, ret_token->secret, BOOTSTRAP_TOKEN_SECRET_LENGTH, err);
}

void bootstrap_token_format(const struct bootstrap_token *token, char *buf, size_t size)
{
	snprintf(buf, size, "%s.%s%s%s", token->id, token->secret, token->hash[0] ? ":" : "", token->hash);
}

void bootstrap_token_psk(const char *id, const char *secret, char key[BOOTSTRAP_PSK_SIZE])
{
	char message[64];
	uint8_t mac[32];
	int n = snprintf(message, sizeof(message), "bramble join token %s", id);
	mbedtls_md_hmac(mbedtls_md_info_from_type(MBEDTLS_MD_SHA256), (const unsigned char *)secret, strlen(secret),
	                (const unsigned char *)message, (size_t)n, mac);
	to_hex(mac, (BOOTSTRAP_PSK_SIZE - 1) / 2, key);
	explicit_bzero(mac, sizeof(mac));
}

int bootstrap_node_identity(const char *identity, char name[64], unsigned long *ret_generation)
{
	if (strncmp(identity, "node:", 5) != 0)
		return -EINVAL;
	const char *p = identity + 5;
	size_t n = strcspn(p, "@");
	if (n == 0 || n > 63)
		return -EINVAL;
	unsigned long generation = 0;
	if (p[n] == '@') {
		char *end;
		errno = 0;
		generation = strtoul(p + n + 1, &end, 10);
		if (errno || *end || end == p + n + 1 || generation == 0)
			return -EINVAL;
	}
	memcpy(name, p, n);
	name[n] = '\0';
	*ret_generation = generation;
	return 0;
}

/* --- the cluster key -------------------------------------------------------------------- */

struct bootstrap_cluster_key {
	mbedtls_ecp_keypair pair;
	char public_hex[BOOTSTRAP_PUBLIC_HEX_SIZE];
	char hash[BOOTSTRAP_HASH_SIZE];
};

static void hash_of_public(const uint8_t *point, size_t length, char hash[BOOTSTRAP_HASH_SIZE])
{
	uint8_t digest[32];
	mbedtls_sha256(point, length, digest, 0);
	memcpy(hash, "sha256:", 7);
	to_hex(digest, sizeof(digest), hash + 7);
}

int bootstrap_cluster_key_generate(char **ret_text, struct error *err)
{
	mbedtls_ecp_keypair pair;
	mbedtls_ecp_keypair_init(&pair);
	uint8_t scalar[32];
	size_t length = 0;
	int r = mbedtls_ecp_gen_key(MBEDTLS_ECP_DP_SECP256R1, &pair, random_bytes, NULL);
	if (r == 0)
		r = mbedtls_ecp_write_key_ext(&pair, &length, scalar, sizeof(scalar));
	mbedtls_ecp_keypair_free(&pair);
	if (r != 0 || length != sizeof(scalar))
		return error_set(err, EIO, "cannot make the cluster key (mbedTLS -0x%04x)", (unsigned)-r);
	char hex[65];
	to_hex(scalar, sizeof(scalar), hex);
	explicit_bzero(scalar, sizeof(scalar));
	*ret_text = xasprintf("# Bramble cluster key (ECDSA P-256, private): keep it secret, never copy it off "
	                      "this board\n%s\n",
	                      hex);
	explicit_bzero(hex, sizeof(hex));
	return 0;
}

int bootstrap_cluster_key_parse(const char *text, struct bootstrap_cluster_key **ret_key, struct error *err)
{
	/* Skip '#' comment lines; the first other line is the hex scalar. */
	const char *line = text;
	while (*line == '#' || *line == '\n') {
		const char *nl = strchr(line, '\n');
		if (!nl)
			break;
		line = nl + 1;
	}
	char hex[65];
	size_t n = strcspn(line, " \t\r\n");
	uint8_t scalar[32];
	size_t length = 0;
	if (n != 64)
		return error_set(err, EINVAL, "not a cluster key: expected 64 hex digits");
	memcpy(hex, line, 64);
	hex[64] = '\0';
	if (from_hex(hex, scalar, sizeof(scalar), &length) < 0 || length != 32) {
		explicit_bzero(hex, sizeof(hex));
		return error_set(err, EINVAL, "not a cluster key: expected 64 hex digits");
	}
	explicit_bzero(hex, sizeof(hex));
	struct bootstrap_cluster_key *key = xcalloc(1, sizeof(*key));
	mbedtls_ecp_keypair_init(&key->pair);
	uint8_t point[65];
	size_t point_length = 0;
	int r = mbedtls_ecp_read_key(MBEDTLS_ECP_DP_SECP256R1, &key->pair, scalar, sizeof(scalar));
	explicit_bzero(scalar, sizeof(scalar));
	if (r == 0)
		r = mbedtls_ecp_keypair_calc_public(&key->pair, random_bytes, NULL);
	if (r == 0)
		r = mbedtls_ecp_write_public_key(&key->pair, MBEDTLS_ECP_PF_UNCOMPRESSED, &point_length, point,
		                                 sizeof(point));
	if (r != 0) {
		bootstrap_cluster_key_free(key);
		return error_set(err, EINVAL, "not a valid P-256 cluster key (mbedTLS -0x%04x)", (unsigned)-r);
	}
	to_hex(point, point_length, key->public_hex);
	hash_of_public(point, point_length, key->hash);
	*ret_key = key;
	return 0;
}

void bootstrap_cluster_key_free(struct bootstrap_cluster_key *key)
{
	if (!key)
		return;
	mbedtls_ecp_keypair_free(&key->pair);
	free(key);
}

const char *bootstrap_cluster_key_hash(const struct bootstrap_cluster_key *key)
{
	return key->hash;
}

const char *bootstrap_cluster_key_public(const struct bootstrap_cluster_key *key)
{
	return key->public_hex;
}

int bootstrap_cluster_key_sign(struct bootstrap_cluster_key *key, const char *message,
                               char signature[BOOTSTRAP_SIGNATURE_HEX_MAX], struct error *err)
{
	uint8_t digest[32], der[MBEDTLS_ECDSA_MAX_LEN];
	size_t length = 0;
	mbedtls_sha256((const unsigned char *)message, strlen(message), digest, 0);
	int r = mbedtls_ecdsa_write_signature(&key->pair, MBEDTLS_MD_SHA256, digest, sizeof(digest), der, sizeof(der),
	                                      &length, random_bytes, NULL);
	if (r != 0 || length * 2 + 1 > BOOTSTRAP_SIGNATURE_HEX_MAX)
		return error_set(err, EIO, "cannot sign with the cluster key (mbedTLS -0x%04x)", (unsigned)-r);
	to_hex(der, length, signature);
	return 0;
}

int bootstrap_verify(const char *public_hex, const char *expected_hash, const char *message, const char *signature,
                     struct error *err)
{
	uint8_t point[65], der[MBEDTLS_ECDSA_MAX_LEN], digest[32];
	size_t point_length = 0, der_length = 0;
	if (!public_hex || from_hex(public_hex, point, sizeof(point), &point_length) < 0 || point_length == 0)
		return error_set(err, EBADMSG, "the server sent no readable cluster key");
	char hash[BOOTSTRAP_HASH_SIZE];
	hash_of_public(point, point_length, hash);
	if (strcmp(hash, expected_hash) != 0)
		return error_set(
		        err, EKEYREJECTED,
		        "the server's cluster key does not match the token: it holds %s, the token was made for "
		        "%s (a different cluster, or someone posing as it)",
		        hash, expected_hash);
	if (!signature || from_hex(signature, der, sizeof(der), &der_length) < 0 || der_length == 0)
		return error_set(err, EBADMSG, "the server sent no readable signature of its cluster key");
	mbedtls_ecp_keypair pair;
	mbedtls_ecp_group group;
	mbedtls_ecp_point q;
	mbedtls_ecp_keypair_init(&pair);
	mbedtls_ecp_group_init(&group);
	mbedtls_ecp_point_init(&q);
	int r = mbedtls_ecp_group_load(&group, MBEDTLS_ECP_DP_SECP256R1);
	if (r == 0)
		r = mbedtls_ecp_point_read_binary(&group, &q, point, point_length);
	if (r == 0)
		r = mbedtls_ecp_set_public_key(MBEDTLS_ECP_DP_SECP256R1, &pair, &q);
	if (r == 0) {
		mbedtls_sha256((const unsigned char *)message, strlen(message), digest, 0);
		r = mbedtls_ecdsa_read_signature(&pair, digest, sizeof(digest), der, der_length);
	}
	mbedtls_ecp_point_free(&q);
	mbedtls_ecp_group_free(&group);
	mbedtls_ecp_keypair_free(&pair);
	if (r != 0)
		return error_set(
		        err, EBADMSG,
		        "the server did not prove it holds the cluster key %s (bad signature): not the cluster "
		        "the token was made for",
		        expected_hash);
	return 0;
}

char *bootstrap_cluster_message(const char *nonce, const char *identity)
{
	return xasprintf("bramble-cluster-v1\n%s\n%s", nonce, identity);
}

char *bootstrap_credential_message(const char *nonce, const char *identity, const char *key)
{
	return xasprintf("bramble-credential-v1\n%s\n%s\n%s", nonce, identity, key);
}

/* --- the server side -------------------------------------------------------------------- */

/* A credential generation issued and not used yet. */
struct unused_generation {
	struct unused_generation *next;
	char node[64];
	unsigned long generation;
};

#define BOOTSTRAP_MAX_UNUSED 4096 /* beyond this, the oldest are forgotten (they stay valid) */

struct bootstrap {
	struct unused_generation *unused;
	size_t unused_count;
	struct transport *transport;
	struct store *store;
	struct bootstrap_cluster_key *cluster_key;
	transport_psk_lookup_fn fallback;
	void *fallback_data;
};

/* A Secret's data value, decoded (owned), or NULL. */
static char *secret_value(const cJSON *secret, const char *key)
{
	const cJSON *data = cJSON_GetObjectItemCaseSensitive(secret, "data");
	const cJSON *item = cJSON_GetObjectItemCaseSensitive(data, key);
	if (!cJSON_IsString(item))
		return NULL;
	size_t in = strlen(item->valuestring), out = 0;
	char *decoded = xmalloc(in + 1);
	if (mbedtls_base64_decode((unsigned char *)decoded, in, &out, (const unsigned char *)item->valuestring, in) !=
	    0) {
		free(decoded);
		return NULL;
	}
	decoded[out] = '\0';
	return decoded;
}

static void set_secret_value(cJSON *data, const char *key, const char *value)
{
	size_t in = strlen(value), out = 0;
	char *encoded = xmalloc((in + 2) / 3 * 4 + 1);
	mbedtls_base64_encode((unsigned char *)encoded, (in + 2) / 3 * 4 + 1, &out, (const unsigned char *)value, in);
	encoded[out] = '\0';
	cJSON_DeleteItemFromObjectCaseSensitive(data, key);
	cJSON_AddStringToObject(data, key, encoded);
	free(encoded);
}

static int load_secret(struct bootstrap *b, const char *name, cJSON **ret_secret, struct error *err)
{
	char *text = NULL;
	int r = store_get(b->store, "secrets", BOOTSTRAP_NAMESPACE, name, &text, err);
	if (r < 0)
		return r;
	cJSON *secret = cJSON_Parse(text);
	explicit_bzero(text, strlen(text));
	free(text);
	if (!secret)
		return error_set(err, EIO, "secrets/%s/%s is not readable JSON", BOOTSTRAP_NAMESPACE, name);
	*ret_secret = secret;
	return 0;
}

static bool secret_has_type(const cJSON *secret, const char *type)
{
	const cJSON *t = cJSON_GetObjectItemCaseSensitive(secret, "type");
	return cJSON_IsString(t) && strcmp(t->valuestring, type) == 0;
}

static void free_value(char *value)
{
	if (value) {
		explicit_bzero(value, strlen(value));
		free(value);
	}
}

static int copy_key(const char *value, uint8_t *key)
{
	size_t n = value ? strlen(value) : 0;
	if (n == 0 || n > TRANSPORT_PSK_KEY_MAX)
		return -ENOENT;
	memcpy(key, value, n);
	return (int)n;
}

static int token_lookup(struct bootstrap *b, const char *id, uint8_t *key)
{
	if (!all_of(id, BOOTSTRAP_TOKEN_ID_LENGTH, lower_alnum))
		return -ENOENT;
	char name[64];
	snprintf(name, sizeof(name), "bootstrap-token-%s", id);
	cJSON *secret = NULL;
	if (load_secret(b, name, &secret, NULL) < 0)
		return -ENOENT;
	char *stored_id = secret_value(secret, "token-id"), *token_secret = secret_value(secret, "token-secret");
	int r = -ENOENT;
	if (secret_has_type(secret, BOOTSTRAP_TOKEN_TYPE) && stored_id && strcmp(stored_id, id) == 0 && token_secret &&
	    all_of(token_secret, BOOTSTRAP_TOKEN_SECRET_LENGTH, lower_alnum)) {
		char psk[BOOTSTRAP_PSK_SIZE];
		bootstrap_token_psk(id, token_secret, psk);
		r = copy_key(psk, key);
		explicit_bzero(psk, sizeof(psk));
	}
	free(stored_id);
	free_value(token_secret);
	cJSON_Delete(secret);
	return r;
}

static unsigned long value_number(const cJSON *secret, const char *key)
{
	char *text = secret_value(secret, key);
	unsigned long n = text ? strtoul(text, NULL, 10) : 0;
	free(text);
	return n;
}

static int credential_lookup(struct bootstrap *b, const char *node, unsigned long generation, uint8_t *key)
{
	char name[96];
	snprintf(name, sizeof(name), "node-credential-%s", node);
	cJSON *secret = NULL;
	if (load_secret(b, name, &secret, NULL) < 0)
		return -ENOENT;
	int r = -ENOENT;
	if (secret_has_type(secret, BOOTSTRAP_CREDENTIAL_TYPE)) {
		const char *which = generation == value_number(secret, "generation")            ? "key"
		                    : generation == value_number(secret, "previous-generation") ? "previous-key"
		                                                                                : NULL;
		char *value = which ? secret_value(secret, which) : NULL;
		r = copy_key(value, key);
		free_value(value);
	}
	cJSON_Delete(secret);
	return r;
}

int bootstrap_psk_lookup(const char *identity, uint8_t *key, void *data)
{
	struct bootstrap *b = data;
	char node[64];
	unsigned long generation = 0;
	if (strncmp(identity, "token:", 6) == 0)
		return token_lookup(b, identity + 6, key);
	if (bootstrap_node_identity(identity, node, &generation) == 0 && generation > 0)
		return credential_lookup(b, node, generation, key);
	return b->fallback ? b->fallback(identity, key, b->fallback_data) : -ENOENT;
}

/* Writes a kube-system Secret (create when expected_revision is 0) and commits it. */
static int write_secret(struct bootstrap *b, cJSON *secret, bool create, struct error *err)
{
	const char *name = object_name(secret);
	struct store_request request = {
		create ? STORE_CREATE : STORE_REPLACE, "secrets", BOOTSTRAP_NAMESPACE, name, secret, 0
	};
	int r = store_apply(b->store, &request, NULL, NULL, err);
	if (r < 0)
		return r;
	return store_commit(b->store, err);
}

static void remember_unused(struct bootstrap *b, const char *node, unsigned long generation)
{
	for (struct unused_generation *u = b->unused; u; u = u->next) {
		if (strcmp(u->node, node) == 0) {
			u->generation = generation;
			return;
		}
	}
	if (b->unused_count == BOOTSTRAP_MAX_UNUSED)
		return;
	struct unused_generation *u = xcalloc(1, sizeof(*u));
	snprintf(u->node, sizeof(u->node), "%s", node);
	u->generation = generation;
	u->next = b->unused;
	b->unused = u;
	b->unused_count++;
}

/* Records the first use of a generation: drops the previous key, marks it used. */
static void first_use(struct bootstrap *b, const char *node, unsigned long generation)
{
	char name[96];
	snprintf(name, sizeof(name), "node-credential-%s", node);
	cJSON *secret = NULL;
	if (load_secret(b, name, &secret, NULL) < 0)
		return;
	cJSON *data_map = cJSON_GetObjectItemCaseSensitive(secret, "data");
	bool changed = false;
	if (generation == value_number(secret, "generation") && cJSON_IsObject(data_map)) {
		if (cJSON_GetObjectItemCaseSensitive(data_map, "previous-key")) {
			log_info("node %s switched to credential generation %lu: generation %lu no longer accepted",
			         node, generation, value_number(secret, "previous-generation"));
			cJSON_DeleteItemFromObjectCaseSensitive(data_map, "previous-key");
			cJSON_DeleteItemFromObjectCaseSensitive(data_map, "previous-generation");
			changed = true;
		}
		char *used = secret_value(secret, "used");
		if (!used || strcmp(used, "true") != 0) {
			set_secret_value(data_map, "used", "true");
			changed = true;
		}
		free(used);
	}
	struct error err = { 0 };
	if (changed && write_secret(b, secret, false, &err) < 0)
		log_warnx("node %s: cannot record its switch to credential generation %lu: %s", node, generation,
		          err.message);
	cJSON_Delete(secret);
}

void bootstrap_on_identity(void *data, const char *identity)
{
	struct bootstrap *b = data;
	if (!b->unused || strncmp(identity, "node:", 5) != 0 || !strchr(identity, '@'))
		return;
	char node[64];
	unsigned long generation = 0;
	if (bootstrap_node_identity(identity, node, &generation) < 0 || generation == 0)
		return;
	for (struct unused_generation **p = &b->unused; *p; p = &(*p)->next) {
		struct unused_generation *u = *p;
		if (strcmp(u->node, node) != 0)
			continue;
		if (u->generation != generation)
			return;
		*p = u->next;
		free(u);
		b->unused_count--;
		first_use(b, node, generation);
		return;
	}
}

/* At start: the generations issued but not used yet, from the store. */
static int find_unused(const char *text, size_t length, void *data)
{
	struct bootstrap *b = data;
	cJSON *secret = cJSON_ParseWithLength(text, length);
	if (secret && secret_has_type(secret, BOOTSTRAP_CREDENTIAL_TYPE)) {
		char *node = secret_value(secret, "node"), *used = secret_value(secret, "used");
		if (node && (!used || strcmp(used, "true") != 0) && strlen(node) < 64)
			remember_unused(b, node, value_number(secret, "generation"));
		free(node);
		free(used);
	}
	cJSON_Delete(secret);
	return 0;
}

/* --- handlers --------------------------------------------------------------------------- */

static void respond(coap_pdu_t *response, int code, cJSON *body)
{
	char *text = cJSON_PrintUnformatted(body);
	coap_pdu_set_code(response, (coap_pdu_code_t)COAP_RESPONSE_CODE(code));
	uint8_t buf[4];
	coap_add_option(response, COAP_OPTION_CONTENT_FORMAT,
	                coap_encode_var_safe(buf, sizeof(buf), COAP_MEDIATYPE_APPLICATION_JSON), buf);
	coap_add_data(response, strlen(text), (const uint8_t *)text);
	explicit_bzero(text, strlen(text));
	free(text);
	cJSON_Delete(body);
}

static void respond_error(coap_pdu_t *response, int code, const char *reason, const char *message)
{
	cJSON *body = cJSON_CreateObject();
	cJSON_AddStringToObject(body, "reason", reason);
	cJSON_AddStringToObject(body, "message", message);
	respond(response, code, body);
}

/* The request's JSON body and its caller's raw PSK identity; NULL after answering 4.00. */
static cJSON *read_request(coap_session_t *session, const coap_pdu_t *request, coap_pdu_t *response,
                           char identity[TRANSPORT_PSK_IDENTITY_MAX + 1])
{
	const coap_bin_const_t *id = coap_session_get_psk_identity(session);
	size_t n = id && id->length <= TRANSPORT_PSK_IDENTITY_MAX ? id->length : 0;
	memcpy(identity, n ? (const char *)id->s : "", n);
	identity[n] = '\0';
	size_t length = 0;
	const uint8_t *data = NULL;
	if (!coap_get_data(request, &length, &data) || length == 0 || length > BODY_MAX) {
		respond_error(response, 400, "BadRequest", "expected a JSON body of at most 2 KB");
		return NULL;
	}
	cJSON *body = cJSON_ParseWithLength((const char *)data, length);
	const cJSON *nonce = cJSON_GetObjectItemCaseSensitive(body, "nonce");
	if (!cJSON_IsObject(body) || !cJSON_IsString(nonce) ||
	    !all_of(nonce->valuestring, BOOTSTRAP_NONCE_HEX_SIZE - 1, hex_digits)) {
		cJSON_Delete(body);
		respond_error(response, 400, "BadRequest", "expected {\"nonce\": \"<32 hex digits>\", ...}");
		return NULL;
	}
	return body;
}

static void hnd_cluster(coap_resource_t *resource, coap_session_t *session, const coap_pdu_t *request,
                        const coap_string_t *query, coap_pdu_t *response)
{
	(void)query;
	struct bootstrap *b = coap_resource_get_userdata(resource);
	char identity[TRANSPORT_PSK_IDENTITY_MAX + 1];
	cJSON *body = read_request(session, request, response, identity);
	if (!body)
		return;
	const char *nonce = cJSON_GetObjectItemCaseSensitive(body, "nonce")->valuestring;
	char signature[BOOTSTRAP_SIGNATURE_HEX_MAX];
	struct error err = { 0 };
	char *message = bootstrap_cluster_message(nonce, identity);
	int r = bootstrap_cluster_key_sign(b->cluster_key, message, signature, &err);
	free(message);
	cJSON_Delete(body);
	if (r < 0) {
		respond_error(response, 500, "InternalError", err.message);
		return;
	}
	cJSON *answer = cJSON_CreateObject();
	cJSON_AddStringToObject(answer, "clusterKey", bootstrap_cluster_key_public(b->cluster_key));
	cJSON_AddStringToObject(answer, "clusterHash", bootstrap_cluster_key_hash(b->cluster_key));
	cJSON_AddStringToObject(answer, "signature", signature);
	respond(response, 205, answer);
}

/* Answers the credential (identity, key) signed for nonce. */
static void respond_credential(struct bootstrap *b, coap_pdu_t *response, int code, const char *node,
                               const char *identity, const char *key, const char *nonce)
{
	char signature[BOOTSTRAP_SIGNATURE_HEX_MAX];
	struct error err = { 0 };
	char *message = bootstrap_credential_message(nonce, identity, key);
	int r = bootstrap_cluster_key_sign(b->cluster_key, message, signature, &err);
	explicit_bzero(message, strlen(message));
	free(message);
	if (r < 0) {
		respond_error(response, 500, "InternalError", err.message);
		return;
	}
	cJSON *answer = cJSON_CreateObject();
	cJSON_AddStringToObject(answer, "node", node);
	cJSON_AddStringToObject(answer, "identity", identity);
	cJSON_AddStringToObject(answer, "key", key);
	cJSON_AddStringToObject(answer, "clusterHash", bootstrap_cluster_key_hash(b->cluster_key));
	cJSON_AddStringToObject(answer, "signature", signature);
	respond(response, code, answer);
}

/* The token's state: 0 when it may join, else a 4.03 message in err. */
static int check_token(struct bootstrap *b, const char *id, struct error *err)
{
	char name[64];
	snprintf(name, sizeof(name), "bootstrap-token-%s", id);
	cJSON *secret = NULL;
	int r = load_secret(b, name, &secret, err);
	if (r < 0)
		return error_set(err, EPERM, "join token %s is not known to this cluster (forged, or removed)", id);
	const cJSON *annotations =
	        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(secret, "metadata"), "annotations");
	const cJSON *revoked_item = cJSON_GetObjectItemCaseSensitive(annotations, BOOTSTRAP_REVOKED_ANNOTATION);
	const char *revoked = cJSON_IsString(revoked_item) ? revoked_item->valuestring : NULL;
	char *expiration = secret_value(secret, "expiration");
	char *usage = secret_value(secret, "usage-bootstrap-authentication");
	time_t expires = 0;
	r = 0;
	if (revoked)
		r = error_set(
		        err, EPERM,
		        "join token %s was revoked at %s (bramble token rm): ask the cluster's administrator for a "
		        "new one (bramble token create)",
		        id, revoked);
	else if (expiration && (clock_parse_rfc3339(expiration, &expires) < 0 || expires <= time(NULL)))
		r = error_set(
		        err, EPERM,
		        "join token %s expired at %s: ask the cluster's administrator for a new one (bramble token "
		        "create --ttl ...)",
		        id, expiration);
	else if (!usage || strcmp(usage, "true") != 0)
		r = error_set(err, EPERM, "join token %s is not marked for joining (usage-bootstrap-authentication)",
		              id);
	free(expiration);
	free(usage);
	cJSON_Delete(secret);
	return r;
}

static cJSON *new_credential_secret(const char *node, const char *issued_by)
{
	char name[96], uid[37], now[CLOCK_RFC3339_SIZE];
	snprintf(name, sizeof(name), "node-credential-%s", node);
	object_new_uid(uid);
	clock_format_rfc3339(time(NULL), now);
	cJSON *secret = cJSON_CreateObject();
	cJSON_AddStringToObject(secret, "apiVersion", "v1");
	cJSON_AddStringToObject(secret, "kind", "Secret");
	cJSON *metadata = cJSON_AddObjectToObject(secret, "metadata");
	cJSON_AddStringToObject(metadata, "name", name);
	cJSON_AddStringToObject(metadata, "namespace", BOOTSTRAP_NAMESPACE);
	cJSON_AddStringToObject(metadata, "uid", uid);
	cJSON_AddStringToObject(metadata, "creationTimestamp", now);
	cJSON *labels = cJSON_AddObjectToObject(metadata, "labels");
	cJSON_AddStringToObject(labels, "bramble.io/node", node);
	cJSON_AddStringToObject(secret, "type", BOOTSTRAP_CREDENTIAL_TYPE);
	cJSON *data = cJSON_AddObjectToObject(secret, "data");
	set_secret_value(data, "node", node);
	set_secret_value(data, "issued-by", issued_by);
	return secret;
}

static void hnd_join(coap_resource_t *resource, coap_session_t *session, const coap_pdu_t *request,
                     const coap_string_t *query, coap_pdu_t *response)
{
	(void)query;
	struct bootstrap *b = coap_resource_get_userdata(resource);
	char identity[TRANSPORT_PSK_IDENTITY_MAX + 1];
	cJSON *body = read_request(session, request, response, identity);
	if (!body)
		return;
	const char *nonce = cJSON_GetObjectItemCaseSensitive(body, "nonce")->valuestring;
	const cJSON *node_item = cJSON_GetObjectItemCaseSensitive(body, "node");
	const char *node = cJSON_IsString(node_item) ? node_item->valuestring : "";
	struct error err = { 0 };
	char message[ERROR_MESSAGE_MAX];
	cJSON *secret = NULL;
	char name[96];
	if (strncmp(identity, "token:", 6) != 0) {
		respond_error(response, 403, "Forbidden", "only a join token (identity token:<id>) may join");
		goto out;
	}
	if (!object_valid_dns_label(node)) {
		respond_error(response, 400, "BadRequest",
		              "\"node\" must be a node name: lowercase letters, digits and '-', at most 63");
		goto out;
	}
	if (check_token(b, identity + 6, &err) < 0) {
		log_info("join of node %s refused: %s", node, err.message);
		respond_error(response, 403, "Forbidden", err.message);
		goto out;
	}
	snprintf(name, sizeof(name), "node-credential-%s", node);
	int r = load_secret(b, name, &secret, &err);
	if (r == 0) {
		char *issued_by = secret_value(secret, "issued-by"), *used = secret_value(secret, "used");
		char *key = secret_value(secret, "key");
		unsigned long generation = value_number(secret, "generation");
		bool again = issued_by && strcmp(issued_by, identity) == 0 && (!used || strcmp(used, "true") != 0) &&
		             key && generation == 1;
		free(issued_by);
		free(used);
		if (again) {
			char issued[TRANSPORT_PSK_IDENTITY_MAX + 1];
			snprintf(issued, sizeof(issued), "node:%s@1", node);
			respond_credential(b, response, 201, node, issued, key, nonce);
		} else {
			snprintf(message, sizeof(message),
			         "node %s has already joined with another credential (node:%s@%lu). To join it again, "
			         "delete the old one first: bramble delete secret %s -n %s; to replace the key of a "
			         "running board, run on it: bramble agent --rotate-credential",
			         node, node, generation, name, BOOTSTRAP_NAMESPACE);
			log_info("join refused: %s", message);
			respond_error(response, 409, "AlreadyExists", message);
		}
		free_value(key);
		goto out;
	}
	if (r != -ENOENT) {
		respond_error(response, 503, "ServiceUnavailable", err.message);
		goto out;
	}
	char key[BOOTSTRAP_NODE_KEY_LENGTH + 1];
	if (bootstrap_random_key(key, &err) < 0) {
		respond_error(response, 500, "InternalError", err.message);
		goto out;
	}
	secret = new_credential_secret(node, identity);
	cJSON *data = cJSON_GetObjectItemCaseSensitive(secret, "data");
	set_secret_value(data, "generation", "1");
	set_secret_value(data, "key", key);
	if (write_secret(b, secret, true, &err) < 0) {
		explicit_bzero(key, sizeof(key));
		respond_error(response, 503, "ServiceUnavailable", err.message);
		goto out;
	}
	char issued[TRANSPORT_PSK_IDENTITY_MAX + 1];
	snprintf(issued, sizeof(issued), "node:%s@1", node);
	remember_unused(b, node, 1);
	log_info("node %s joined with token %s: issued credential %s", node, identity + 6, issued);
	respond_credential(b, response, 201, node, issued, key, nonce);
	explicit_bzero(key, sizeof(key));
out:
	cJSON_Delete(secret);
	cJSON_Delete(body);
}

static void hnd_rotate(coap_resource_t *resource, coap_session_t *session, const coap_pdu_t *request,
                       const coap_string_t *query, coap_pdu_t *response)
{
	(void)query;
	struct bootstrap *b = coap_resource_get_userdata(resource);
	char identity[TRANSPORT_PSK_IDENTITY_MAX + 1], node[64], name[96], issued[TRANSPORT_PSK_IDENTITY_MAX + 1];
	cJSON *body = read_request(session, request, response, identity);
	if (!body)
		return;
	const char *nonce = cJSON_GetObjectItemCaseSensitive(body, "nonce")->valuestring;
	unsigned long generation = 0;
	struct error err = { 0 };
	cJSON *secret = NULL;
	if (bootstrap_node_identity(identity, node, &generation) < 0 || generation == 0) {
		respond_error(response, 403, "Forbidden",
		              "only a node with an issued credential (node:<name>@<generation>) may rotate it; a "
		              "credential from the server's credentials file is changed there");
		goto out;
	}
	snprintf(name, sizeof(name), "node-credential-%s", node);
	if (load_secret(b, name, &secret, &err) < 0) {
		respond_error(response, 404, "NotFound", "this node's credential is gone");
		goto out;
	}
	unsigned long current = value_number(secret, "generation");
	if (generation == current && value_number(secret, "previous-generation")) {
		/* The board calls with its new generation: it has switched. */
		bootstrap_on_identity(b, identity);
		cJSON_Delete(secret);
		secret = NULL;
		if (load_secret(b, name, &secret, &err) < 0) {
			respond_error(response, 503, "ServiceUnavailable", err.message);
			goto out;
		}
	}
	cJSON *data = cJSON_GetObjectItemCaseSensitive(secret, "data");
	if (generation + 1 == current) {
		/* Asked again before switching: the same new credential. */
		char *key = secret_value(secret, "key");
		snprintf(issued, sizeof(issued), "node:%s@%lu", node, current);
		respond_credential(b, response, 201, node, issued, key ? key : "", nonce);
		free_value(key);
		goto out;
	}
	if (generation != current || !cJSON_IsObject(data)) {
		respond_error(response, 403, "Forbidden", "this credential generation is no longer current");
		goto out;
	}
	char key[BOOTSTRAP_NODE_KEY_LENGTH + 1], number[24];
	char *old_key = secret_value(secret, "key");
	if (!old_key || bootstrap_random_key(key, &err) < 0) {
		free_value(old_key);
		respond_error(response, 500, "InternalError", err.message[0] ? err.message : "credential unreadable");
		goto out;
	}
	snprintf(number, sizeof(number), "%lu", current);
	set_secret_value(data, "previous-generation", number);
	set_secret_value(data, "previous-key", old_key);
	free_value(old_key);
	snprintf(number, sizeof(number), "%lu", current + 1);
	set_secret_value(data, "generation", number);
	set_secret_value(data, "key", key);
	set_secret_value(data, "used", "false");
	if (write_secret(b, secret, false, &err) < 0) {
		explicit_bzero(key, sizeof(key));
		respond_error(response, 503, "ServiceUnavailable", err.message);
		goto out;
	}
	snprintf(issued, sizeof(issued), "node:%s@%lu", node, current + 1);
	remember_unused(b, node, current + 1);
	log_info("node %s rotated its credential: %s issued, %s accepted until the board switches", node, issued,
	         identity);
	respond_credential(b, response, 201, node, issued, key, nonce);
	explicit_bzero(key, sizeof(key));
out:
	cJSON_Delete(secret);
	cJSON_Delete(body);
}

int bootstrap_new(const struct bootstrap_options *options, struct bootstrap **ret_bootstrap, struct error *err)
{
	(void)err;
	struct bootstrap *b = xcalloc(1, sizeof(*b));
	b->transport = options->transport;
	b->store = options->store;
	b->cluster_key = options->cluster_key;
	b->fallback = options->fallback;
	b->fallback_data = options->fallback_data;
	struct error list_err = { 0 };
	if (b->store &&
	    store_list(b->store, "secrets", BOOTSTRAP_NAMESPACE, NULL, 0, find_unused, b, NULL, &list_err) < 0)
		log_warnx("bootstrap: cannot read the node credentials: %s", list_err.message);
	if (b->cluster_key) {
		static const struct {
			const char *path;
			coap_method_handler_t handler;
		} resources[] = {
			{ "bootstrap/cluster", hnd_cluster },
			{ "bootstrap/join", hnd_join },
			{ "bootstrap/rotate", hnd_rotate },
		};
		coap_context_t *context = transport_context(b->transport);
		for (size_t i = 0; i < ARRAY_SIZE(resources); i++) {
			coap_resource_t *r = coap_resource_init(coap_make_str_const(resources[i].path), 0);
			coap_register_request_handler(r, COAP_REQUEST_POST, resources[i].handler);
			coap_add_attr(r, coap_make_str_const("ct"), coap_make_str_const("50"), 0);
			coap_resource_set_userdata(r, b);
			coap_add_resource(context, r);
		}
	}
	*ret_bootstrap = b;
	return 0;
}

void bootstrap_free(struct bootstrap *bootstrap)
{
	if (!bootstrap)
		return;
	while (bootstrap->unused) {
		struct unused_generation *u = bootstrap->unused;
		bootstrap->unused = u->next;
		free(u);
	}
	free(bootstrap);
}
