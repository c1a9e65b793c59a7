/* libFuzzer target for what a joining board and the server read from outside: any bytes as
 * a join string (bramble.conf's [agent] token), as a cluster key file, and as a server's
 * cluster key and signature to verify. Nothing may crash, leak or read out of bounds; a
 * string accepted must format back to itself. Seeds: tests/fuzz/corpus/bootstrap/. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/bootstrap.h"
#include "platform/error.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 4096)
		return 0;
	char *text = malloc(size + 1);
	memcpy(text, data, size);
	text[size] = '\0';
	struct bootstrap_token token;
	struct error err;
	if (bootstrap_token_parse(text, false, &token, &err) == 0 && strlen(text) == size) {
		char again[160];
		bootstrap_token_format(&token, again, sizeof(again));
		if (strcmp(again, text) != 0)
			abort();
	}
	struct bootstrap_cluster_key *key = NULL;
	if (bootstrap_cluster_key_parse(text, &key, &err) == 0)
		bootstrap_cluster_key_free(key);
	/* "public key hex|signature hex": verified against a fixed hash. */
	char *bar = strchr(text, '|');
	if (bar) {
		*bar = '\0';
		bootstrap_verify(text, "sha256:0000000000000000000000000000000000000000000000000000000000000000",
		                 "message", bar + 1, &err);
	}
	char node[64];
	unsigned long generation;
	bootstrap_node_identity(text, node, &generation);
	free(text);
	return 0;
}
