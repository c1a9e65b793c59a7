/* Joining boards to a cluster: join tokens, the cluster key that proves a server is the
 * cluster a token was made for, and the per-node credentials the control plane issues.
 *
 * Cluster key material. `bramble init` makes an ECDSA P-256 key pair, the cluster key
 * (DATA/cluster.key, the private scalar in hex, 0600; it never leaves the server board).
 * The cluster hash is "sha256:" + hex(SHA-256(the public key as an uncompressed point)),
 * like kubeadm's --discovery-token-ca-cert-hash pins the cluster CA.
 *
 * Join tokens have Kubernetes' bootstrap-token shape, "<id>.<secret>" ([a-z0-9]{6} and
 * [a-z0-9]{16}), and are stored as Kubernetes stores them: a Secret
 * kube-system/bootstrap-token-<id> of type bootstrap.kubernetes.io/token with data
 * token-id, token-secret, expiration (RFC 3339; absent: never), description and
 * usage-bootstrap-authentication. Revoking (`bramble token rm`) keeps the Secret and
 * annotates it bramble.io/revoked-at, so a board that tries it is told "revoked", not
 * "unknown". What a user copies is the join string "<id>.<secret>:sha256:<64 hex>": the
 * token and the hash of the cluster it is for.
 *
 * The join, over DTLS with a PSK derived from the token:
 *   identity  "token:<id>"
 *   key       the first 32 hex digits of HMAC-SHA256(key = secret, "bramble join token <id>")
 *   1. handshake             the server derives the same key from the stored secret;
 *                            an unknown id or a wrong secret fails the handshake (forged)
 *   2. POST /bootstrap/cluster {"nonce"}      -> {"clusterKey","clusterHash","signature"}
 *                            signature = ECDSA(cluster key, SHA-256("bramble-cluster-v1\n"
 *                            nonce "\n" identity)); the board checks the key's hash against
 *                            the token's and the signature before it says anything more
 *   3. POST /bootstrap/join {"node","nonce"}  -> {"identity","key","clusterHash","signature"}
 *                            refused 4.03 when the token is expired or revoked (saying
 *                            which), 4.09 when the node has a credential already;
 *                            signature = ECDSA(SHA-256("bramble-credential-v1\n" nonce "\n"
 *                            identity "\n" key)): the credential comes from the cluster
 * A token holder therefore cannot pose as the cluster: only the cluster key signs.
 * (Limit: someone holding both the token secret and a place on the path can relay a join
 * and read the issued key; a short --ttl keeps that window small.)
 *
 * Node credentials are Secrets kube-system/node-credential-<name> of type
 * bramble.io/node-credential, data: node, generation, key, issued-by, and during a rotation
 * previous-generation and previous-key. The PSK identity of generation G is
 * "node:<name>@<G>" (authorization sees "node:<name>": authz_principal strips "@G").
 *
 *   (none) --join--> G=1 --rotate--> G=2, previous 1 --handshake with G=2--> G=2 --rotate--> ...
 *
 * POST /bootstrap/rotate, called with the current generation G, makes G+1 with a new key and
 * keeps G as previous; called again with G (the board has not switched yet) it answers the
 * same G+1. The first request authenticated with G+1 (bootstrap_on_identity) drops the
 * previous key: the old credential works until the board has switched. A join
 * retried with the same token before the board ever used its credential gets the same
 * credential again (an answer lost on the way is not a refusal).
 */
#ifndef BRAMBLE_CORE_BOOTSTRAP_H
#define BRAMBLE_CORE_BOOTSTRAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <coap3/coap.h>

#include "core/transport.h"

struct bootstrap;
struct bootstrap_cluster_key;
struct error;
struct store;

#define BOOTSTRAP_TOKEN_ID_LENGTH 6
#define BOOTSTRAP_TOKEN_SECRET_LENGTH 16
#define BOOTSTRAP_HASH_SIZE 72          /* "sha256:" + 64 hex + NUL */
#define BOOTSTRAP_PSK_SIZE 33           /* 32 hex + NUL (mbedTLS takes PSKs of up to 32 bytes) */
#define BOOTSTRAP_NODE_KEY_LENGTH 32    /* issued node keys: letters and digits */
#define BOOTSTRAP_SIGNATURE_HEX_MAX 160 /* DER ECDSA P-256, at most 72 bytes, in hex + NUL */
#define BOOTSTRAP_PUBLIC_HEX_SIZE 131   /* 65-byte uncompressed point in hex + NUL */
#define BOOTSTRAP_NONCE_HEX_SIZE 33     /* 16 random bytes in hex + NUL */
#define BOOTSTRAP_TOKEN_TYPE "bootstrap.kubernetes.io/token"
#define BOOTSTRAP_CREDENTIAL_TYPE "bramble.io/node-credential"
#define BOOTSTRAP_REVOKED_ANNOTATION "bramble.io/revoked-at"
#define BOOTSTRAP_NAMESPACE "kube-system"

struct bootstrap_token {
	char id[BOOTSTRAP_TOKEN_ID_LENGTH + 1];
	char secret[BOOTSTRAP_TOKEN_SECRET_LENGTH + 1];
	char hash[BOOTSTRAP_HASH_SIZE]; /* "" when the text had none */
};

/* "<id>.<secret>" or "<id>.<secret>:sha256:<hex>"; need_hash: the hash must be there. */
int bootstrap_token_parse(const char *text, bool need_hash, struct bootstrap_token *ret_token, struct error *err);
int bootstrap_token_generate(struct bootstrap_token *ret_token, struct error *err);
/* The join string (with the hash when there is one). */
void bootstrap_token_format(const struct bootstrap_token *token, char *buf, size_t size);
/* The PSK of "token:<id>": 32 hex digits of HMAC-SHA256(secret, "bramble join token <id>"). */
void bootstrap_token_psk(const char *id, const char *secret, char key[BOOTSTRAP_PSK_SIZE]);

/* "node:<name>@<generation>" -> name and generation (0 when there is no "@G"); -EINVAL when
 * the identity is not a node's. */
int bootstrap_node_identity(const char *identity, char name[64], unsigned long *ret_generation);

/* A random key of BOOTSTRAP_NODE_KEY_LENGTH letters and digits (a nonce: 32 hex). */
int bootstrap_random_key(char key[BOOTSTRAP_NODE_KEY_LENGTH + 1], struct error *err);
int bootstrap_random_nonce(char nonce[BOOTSTRAP_NONCE_HEX_SIZE], struct error *err);

/* --- the cluster key ------------------------------------------------------------------- */

/* A new key pair; its private part as text for DATA/cluster.key. */
int bootstrap_cluster_key_generate(char **ret_text, struct error *err);
int bootstrap_cluster_key_parse(const char *text, struct bootstrap_cluster_key **ret_key, struct error *err);
void bootstrap_cluster_key_free(struct bootstrap_cluster_key *key);
const char *bootstrap_cluster_key_hash(const struct bootstrap_cluster_key *key);
const char *bootstrap_cluster_key_public(const struct bootstrap_cluster_key *key); /* hex */
int bootstrap_cluster_key_sign(struct bootstrap_cluster_key *key, const char *message,
                               char signature[BOOTSTRAP_SIGNATURE_HEX_MAX], struct error *err);

/* Checks that public_hex hashes to expected_hash (-EKEYREJECTED otherwise, naming both)
 * and that signature is its signature of message (-EBADMSG otherwise). */
int bootstrap_verify(const char *public_hex, const char *expected_hash, const char *message, const char *signature,
                     struct error *err);

/* The signed texts. */
char *bootstrap_cluster_message(const char *nonce, const char *identity);
char *bootstrap_credential_message(const char *nonce, const char *identity, const char *key);

/* --- the server side ------------------------------------------------------------------- */

struct bootstrap_options {
	struct transport *transport;
	struct store *store;
	struct bootstrap_cluster_key *cluster_key; /* borrowed; NULL: no joins (4.04) */
	/* Identities that are neither tokens nor issued node credentials (the credentials file). */
	transport_psk_lookup_fn fallback;
	void *fallback_data;
};

/* Registers /bootstrap/cluster, /bootstrap/join and /bootstrap/rotate on the transport. */
int bootstrap_new(const struct bootstrap_options *options, struct bootstrap **ret_bootstrap, struct error *err);
void bootstrap_free(struct bootstrap *bootstrap);

/* transport_psk_lookup_fn over tokens, issued node credentials, then the fallback. */
int bootstrap_psk_lookup(const char *identity, uint8_t *key, void *data);

/* A request authenticated as identity (apiserver_options.on_identity): a node's first one
 * with a new generation drops the previous key. Cheap: only generations issued and not yet
 * used are looked at (a short list in memory, rebuilt from the store at start). */
void bootstrap_on_identity(void *data, const char *identity);

#endif
