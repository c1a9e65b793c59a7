/* The board's side of joining a cluster and rotating its credential (the protocol and its
 * checks are in core/bootstrap.h). Both are one synchronous exchange bounded by timeout_ms:
 * joining runs at start-up before the agent's loop, rotating from the one-shot
 * `bramble agent --rotate-credential`. Refusals say which: a forged token (handshake
 * refused), a server whose cluster key does not match the token's hash, an expired or
 * revoked token, a node name that already has a credential.
 */
#ifndef BRAMBLE_AGENT_JOIN_H
#define BRAMBLE_AGENT_JOIN_H

struct error;

/* Joins node to the cluster at server with the join string token_text
 * ("<id>.<secret>:sha256:<hash>"); the issued identity and key on success. */
int join_cluster(const char *server, const char *token_text, const char *node, int timeout_ms, char **ret_identity,
                 char **ret_key, struct error *err);

/* Asks for the next generation of the node credential (identity, key). */
int join_rotate(const char *server, const char *identity, const char *key, int timeout_ms, char **ret_identity,
                char **ret_key, struct error *err);

#endif
