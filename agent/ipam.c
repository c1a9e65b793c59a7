#include "agent/ipam.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "platform/buffer.h"
#include "platform/error.h"
#include "platform/file.h"
#include "platform/log.h"
#include "platform/memory.h"
#include "platform/netlink.h"

/* A /8 holds 16M addresses; the state file is bounded by the pods a board can run. */
#define STATE_FILE_MAX (4 * 1024 * 1024)
#define STATE_HEADER "# bramble pod addresses (agent/ipam); written by the agent, do not edit\n"

struct ipam {
	char *path;
	uint32_t network; /* host order */
	uint8_t prefix;
	uint32_t size; /* addresses in the CIDR */
	char **owners; /* [offset] -> key, or NULL */
	size_t allocated;
	uint32_t last; /* offset handed out last */
};

static bool usable(const struct ipam *ipam, uint32_t offset)
{
	/* network, gateway (.1), broadcast */
	return offset >= 2 && offset < ipam->size - 1;
}

static struct in_addr address_at(const struct ipam *ipam, uint32_t offset)
{
	return (struct in_addr){ htonl(ipam->network + offset) };
}

static int check_key(const char *key, struct error *err)
{
	size_t n = key ? strlen(key) : 0;
	if (n == 0 || n > IPAM_KEY_MAX)
		return error_set(err, EINVAL, "pod key '%s' must be 1 to %d characters", key ? key : "", IPAM_KEY_MAX);
	for (const char *p = key; *p; p++)
		if (isspace((unsigned char)*p) || !isprint((unsigned char)*p))
			return error_set(err, EINVAL, "pod key '%s' may not contain spaces or control characters", key);
	return 0;
}

static int save(struct ipam *ipam, struct error *err)
{
	struct buffer text = BUFFER_INIT;
	char cidr[INET_ADDRSTRLEN], address[INET_ADDRSTRLEN];
	struct in_addr network = address_at(ipam, 0), last = address_at(ipam, ipam->last);
	buffer_append_string(&text, STATE_HEADER);
	buffer_printf(&text, "cidr %s/%u\n", inet_ntop(AF_INET, &network, cidr, sizeof(cidr)), ipam->prefix);
	buffer_printf(&text, "last %s\n", inet_ntop(AF_INET, &last, address, sizeof(address)));
	for (uint32_t offset = 0; offset < ipam->size; offset++) {
		if (!ipam->owners[offset])
			continue;
		struct in_addr a = address_at(ipam, offset);
		buffer_printf(&text, "%s %s\n", inet_ntop(AF_INET, &a, address, sizeof(address)), ipam->owners[offset]);
	}
	int r = file_write_atomic(ipam->path, text.data, text.length, 0600, err);
	buffer_free(&text);
	if (r < 0)
		return error_prefix(err, "saving pod addresses");
	return 0;
}

static int offset_of(const struct ipam *ipam, const char *text, uint32_t *ret_offset)
{
	struct in_addr a;
	if (inet_pton(AF_INET, text, &a) != 1)
		return -EINVAL;
	uint32_t host = ntohl(a.s_addr);
	if (host - ipam->network >= ipam->size)
		return -ERANGE;
	*ret_offset = host - ipam->network;
	return 0;
}

/* Reads the state file; -ESTALE when it was written for another CIDR. */
static int load(struct ipam *ipam, const char *cidr, struct error *err)
{
	cleanup_free char *data = NULL;
	int r = file_read(ipam->path, STATE_FILE_MAX, &data, NULL, err);
	if (r == -ENOENT)
		return 0;
	if (r < 0)
		return r;
	unsigned line_number = 0;
	bool have_cidr = false;
	char *save_line = NULL;
	for (char *line = strtok_r(data, "\n", &save_line); line; line = strtok_r(NULL, "\n", &save_line)) {
		line_number++;
		if (line[0] == '#' || line[0] == '\0')
			continue;
		char *space = strchr(line, ' ');
		if (!space)
			return error_set(err, EINVAL, "%s:%u: expected 'NAME VALUE'", ipam->path, line_number);
		*space = '\0';
		const char *value = space + 1;
		if (strcmp(line, "cidr") == 0) {
			struct in_addr network;
			uint8_t prefix;
			if (netlink_parse_cidr(value, false, &network, &prefix, NULL) < 0)
				return error_set(err, EINVAL, "%s:%u: '%s' is not a CIDR", ipam->path, line_number,
				                 value);
			if (ntohl(network.s_addr) != ipam->network || prefix != ipam->prefix) {
				log_warnx("ipam: %s was written for pod CIDR %s, the node's is now %s: starting empty",
				          ipam->path, value, cidr);
				return -ESTALE;
			}
			have_cidr = true;
			continue;
		}
		if (!have_cidr)
			return error_set(err, EINVAL, "%s:%u: the 'cidr' line must come first", ipam->path,
			                 line_number);
		uint32_t offset;
		if (offset_of(ipam, strcmp(line, "last") == 0 ? value : line, &offset) < 0)
			return error_set(err, EINVAL, "%s:%u: '%s' is not an address in %s", ipam->path, line_number,
			                 strcmp(line, "last") == 0 ? value : line, cidr);
		if (strcmp(line, "last") == 0) {
			ipam->last = offset;
			continue;
		}
		if (!usable(ipam, offset))
			return error_set(err, EINVAL, "%s:%u: %s is reserved (network, gateway or broadcast)",
			                 ipam->path, line_number, line);
		if (check_key(value, NULL) < 0)
			return error_set(err, EINVAL, "%s:%u: bad pod key", ipam->path, line_number);
		if (ipam->owners[offset])
			return error_set(err, EINVAL, "%s:%u: %s is listed twice", ipam->path, line_number, line);
		ipam->owners[offset] = xstrdup(value);
		ipam->allocated++;
	}
	return 0;
}

static void clear(struct ipam *ipam)
{
	for (uint32_t i = 0; i < ipam->size; i++) {
		free(ipam->owners[i]);
		ipam->owners[i] = NULL;
	}
	ipam->allocated = 0;
	ipam->last = 1;
}

int ipam_open(const char *state_path, const char *cidr, struct ipam **ret_ipam, struct error *err)
{
	struct in_addr network;
	uint8_t prefix;
	int r = netlink_parse_cidr(cidr, false, &network, &prefix, err);
	if (r < 0)
		return error_prefix(err, "pod CIDR");
	if (prefix < 8 || prefix > 29)
		return error_set(err, EINVAL, "pod CIDR %s: the prefix must be /8 to /29", cidr);
	struct ipam *ipam = xcalloc(1, sizeof(*ipam));
	ipam->path = xstrdup(state_path);
	ipam->network = ntohl(network.s_addr);
	ipam->prefix = prefix;
	ipam->size = 1u << (32 - prefix);
	ipam->owners = xcalloc(ipam->size, sizeof(char *));
	ipam->last = 1;
	r = load(ipam, cidr, err);
	if (r == -ESTALE) {
		clear(ipam);
		r = save(ipam, err);
	}
	if (r < 0) {
		ipam_free(ipam);
		return r;
	}
	*ret_ipam = ipam;
	return 0;
}

int ipam_stored_cidr(const char *state_path, char *buf, size_t size)
{
	cleanup_free char *text = NULL;
	if (file_read(state_path, STATE_FILE_MAX, &text, NULL, NULL) < 0)
		return -ENOENT;
	for (char *line = text, *next; line && *line; line = next) {
		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		struct in_addr network;
		uint8_t prefix;
		if (strncmp(line, "cidr ", 5) == 0 &&
		    netlink_parse_cidr(line + 5, false, &network, &prefix, NULL) == 0) {
			snprintf(buf, size, "%s", line + 5);
			return 0;
		}
	}
	return -ENOENT;
}

void ipam_free(struct ipam *ipam)
{
	if (!ipam)
		return;
	if (ipam->owners)
		clear(ipam);
	free(ipam->owners);
	free(ipam->path);
	free(ipam);
}

static int find(const struct ipam *ipam, const char *key, uint32_t *ret_offset)
{
	for (uint32_t offset = 0; offset < ipam->size; offset++)
		if (ipam->owners[offset] && strcmp(ipam->owners[offset], key) == 0) {
			*ret_offset = offset;
			return 0;
		}
	return -ENOENT;
}

int ipam_lookup(const struct ipam *ipam, const char *key, struct in_addr *ret_address)
{
	uint32_t offset;
	if (!key || find(ipam, key, &offset) < 0)
		return -ENOENT;
	*ret_address = address_at(ipam, offset);
	return 0;
}

int ipam_allocate(struct ipam *ipam, const char *key, struct in_addr *ret_address, struct error *err)
{
	int r = check_key(key, err);
	if (r < 0)
		return r;
	uint32_t offset;
	if (find(ipam, key, &offset) == 0) {
		*ret_address = address_at(ipam, offset);
		return 0;
	}
	for (uint32_t step = 1; step <= ipam->size; step++) {
		offset = (ipam->last + step) % ipam->size;
		if (!usable(ipam, offset) || ipam->owners[offset])
			continue;
		uint32_t previous_last = ipam->last;
		ipam->owners[offset] = xstrdup(key);
		ipam->allocated++;
		ipam->last = offset;
		r = save(ipam, err);
		if (r < 0) { /* not handed out unless it is on disk */
			free(ipam->owners[offset]);
			ipam->owners[offset] = NULL;
			ipam->allocated--;
			ipam->last = previous_last;
			return r;
		}
		*ret_address = address_at(ipam, offset);
		return 0;
	}
	char network[INET_ADDRSTRLEN];
	struct in_addr n = address_at(ipam, 0);
	return error_set(err, ENOSPC, "pod CIDR %s/%u is exhausted: all %zu pod addresses are in use",
	                 inet_ntop(AF_INET, &n, network, sizeof(network)), ipam->prefix, ipam_capacity(ipam));
}

int ipam_release(struct ipam *ipam, const char *key, struct error *err)
{
	uint32_t offset;
	if (!key || find(ipam, key, &offset) < 0)
		return 0;
	char *owner = ipam->owners[offset];
	ipam->owners[offset] = NULL;
	ipam->allocated--;
	int r = save(ipam, err);
	if (r < 0) {
		ipam->owners[offset] = owner;
		ipam->allocated++;
		return r;
	}
	free(owner);
	return 0;
}

int ipam_reconcile(struct ipam *ipam, const char *const *live_keys, size_t live_count, struct error *err)
{
	bool changed = false;
	for (uint32_t offset = 0; offset < ipam->size; offset++) {
		if (!ipam->owners[offset])
			continue;
		bool live = false;
		for (size_t i = 0; i < live_count && !live; i++)
			live = live_keys[i] && strcmp(live_keys[i], ipam->owners[offset]) == 0;
		if (live)
			continue;
		struct in_addr a = address_at(ipam, offset);
		char text[INET_ADDRSTRLEN];
		log_info("ipam: released %s of %s (no such pod any more)", inet_ntop(AF_INET, &a, text, sizeof(text)),
		         ipam->owners[offset]);
		free(ipam->owners[offset]);
		ipam->owners[offset] = NULL;
		ipam->allocated--;
		changed = true;
	}
	return changed ? save(ipam, err) : 0;
}

struct in_addr ipam_gateway(const struct ipam *ipam)
{
	return address_at(ipam, 1);
}

struct in_addr ipam_network(const struct ipam *ipam)
{
	return address_at(ipam, 0);
}

uint8_t ipam_prefix_length(const struct ipam *ipam)
{
	return ipam->prefix;
}

size_t ipam_allocated_count(const struct ipam *ipam)
{
	return ipam->allocated;
}

size_t ipam_capacity(const struct ipam *ipam)
{
	return ipam->size - 3;
}
