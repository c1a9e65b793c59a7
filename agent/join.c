/* See join.h. */
#include "agent/join.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "core/bootstrap.h"
#include "core/client.h"
#include "platform/error.h"
#include "platform/memory.h"

/* POSTs {"nonce": ..., extra} to path; the answer's JSON on the expected code, else the
 * server's refusal in err (prefixed with what was refused). */
static int post(struct client *client, const char *path, const char *nonce, const char *node, int expected_code,
                const char *refused, cJSON **ret_answer, struct error *err)
{
	cJSON *request = cJSON_CreateObject();
	cJSON_AddStringToObject(request, "nonce", nonce);
	if (node)
		cJSON_AddStringToObject(request, "node", node);
	char *body = cJSON_PrintUnformatted(request);
	cJSON_Delete(request);
	struct client_response response = { 0 };
	int r = client_request(client, CLIENT_POST, path, body, strlen(body), &response, err);
	free(body);
	if (r < 0)
		return r;
	if (response.code != expected_code) {
		if (response.code == 404)
			r = error_set(err, ENOTSUP, "%s: the server at %s does not accept joins (no %s)", refused,
			              client_server(client), path);
		else if (response.message[0])
			r = error_set(err, response.code == 409 ? EEXIST : EPERM, "%s: %s", refused, response.message);
		else
			r = error_set(err, EPROTO, "%s: the server answered %d.%02d", refused, response.code / 100,
			              response.code % 100);
		client_response_clear(&response);
		return r;
	}
	cJSON *answer = response.body ? cJSON_ParseWithLength(response.body, response.length) : NULL;
	if (response.body)
		explicit_bzero(response.body, response.length);
	client_response_clear(&response);
	if (!cJSON_IsObject(answer)) {
		cJSON_Delete(answer);
		return error_set(err, EPROTO, "%s: the server's answer is not JSON", refused);
	}
	*ret_answer = answer;
	return 0;
}

static const char *field(const cJSON *object, const char *name)
{
	const cJSON *item = cJSON_GetObjectItemCaseSensitive(object, name);
	return cJSON_IsString(item) ? item->valuestring : NULL;
}

/* The issued credential from an answer, after checking the cluster signed it for nonce. */
static int take_credential(const cJSON *answer, const char *cluster_key, const char *cluster_hash, const char *nonce,
                           char **ret_identity, char **ret_key, struct error *err)
{
	const char *identity = field(answer, "identity"), *key = field(answer, "key");
	if (!identity || !key)
		return error_set(err, EPROTO, "the server's answer has no identity and key");
	if (cluster_key) {
		char *message = bootstrap_credential_message(nonce, identity, key);
		int r = bootstrap_verify(cluster_key, cluster_hash, message, field(answer, "signature"), err);
		explicit_bzero(message, strlen(message));
		free(message);
		if (r < 0)
			return r;
	}
	*ret_identity = xstrdup(identity);
	*ret_key = xstrdup(key);
	return 0;
}

int join_cluster(const char *server, const char *token_text, const char *node, int timeout_ms, char **ret_identity,
                 char **ret_key, struct error *err)
{
	struct bootstrap_token token;
	int r = bootstrap_token_parse(token_text, true, &token, err);
	if (r < 0)
		return r;
	char identity[16 + BOOTSTRAP_TOKEN_ID_LENGTH], psk[BOOTSTRAP_PSK_SIZE];
	snprintf(identity, sizeof(identity), "token:%s", token.id);
	bootstrap_token_psk(token.id, token.secret, psk);
	explicit_bzero(token.secret, sizeof(token.secret));
	struct client *client = NULL;
	r = client_open(server, identity, psk, timeout_ms, NULL, &client, err);
	explicit_bzero(psk, sizeof(psk));
	if (r == -EACCES)
		return error_set(err, EACCES,
		                 "the server at %s refused join token %s in the DTLS handshake: it has no token with "
		                 "that id, or the secret is wrong (a forged or mistyped token; make a new one with "
		                 "bramble token create)",
		                 server, token.id);
	if (r < 0)
		return r;

	char nonce[BOOTSTRAP_NONCE_HEX_SIZE];
	cJSON *cluster = NULL, *joined = NULL;
	char *message = NULL;
	const char *cluster_key = NULL;
	if ((r = bootstrap_random_nonce(nonce, err)) < 0 ||
	    (r = post(client, "/bootstrap/cluster", nonce, NULL, 205, "cannot check the cluster", &cluster, err)) < 0)
		goto out;
	cluster_key = field(cluster, "clusterKey");
	message = bootstrap_cluster_message(nonce, identity);
	r = bootstrap_verify(cluster_key, token.hash, message, field(cluster, "signature"), err);
	if (r < 0) {
		error_prefix(err, "refusing to join the server at %s", server);
		goto out;
	}
	char refused[160];
	snprintf(refused, sizeof(refused), "the cluster refused to let node %s join with token %s", node, token.id);
	if ((r = bootstrap_random_nonce(nonce, err)) < 0 ||
	    (r = post(client, "/bootstrap/join", nonce, node, 201, refused, &joined, err)) < 0)
		goto out;
	r = take_credential(joined, cluster_key, token.hash, nonce, ret_identity, ret_key, err);
out:
	free(message);
	cJSON_Delete(cluster);
	if (joined) {
		const cJSON *key = cJSON_GetObjectItemCaseSensitive(joined, "key");
		if (cJSON_IsString(key))
			explicit_bzero(key->valuestring, strlen(key->valuestring));
	}
	cJSON_Delete(joined);
	client_close(client);
	return r;
}

int join_rotate(const char *server, const char *identity, const char *key, int timeout_ms, char **ret_identity,
                char **ret_key, struct error *err)
{
	struct client *client = NULL;
	int r = client_open(server, identity, key, timeout_ms, NULL, &client, err);
	if (r < 0)
		return r;
	char nonce[BOOTSTRAP_NONCE_HEX_SIZE];
	cJSON *answer = NULL;
	/* The node's own key authenticated the server: only the cluster knows it. */
	if ((r = bootstrap_random_nonce(nonce, err)) == 0 &&
	    (r = post(client, "/bootstrap/rotate", nonce, NULL, 201, "the cluster refused to rotate the credential",
	              &answer, err)) == 0)
		r = take_credential(answer, NULL, NULL, nonce, ret_identity, ret_key, err);
	if (answer) {
		const cJSON *k = cJSON_GetObjectItemCaseSensitive(answer, "key");
		if (cJSON_IsString(k))
			explicit_bzero(k->valuestring, strlen(k->valuestring));
	}
	cJSON_Delete(answer);
	client_close(client);
	return r;
}
