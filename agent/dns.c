#include "agent/dns.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#include "platform/buffer.h"
#include "platform/error.h"
#include "platform/file.h"
#include "platform/log.h"
#include "platform/loop.h"
#include "platform/memory.h"

#define HEADER_SIZE 12
#define NAME_MAX_TEXT 255
#define MAX_POINTER_JUMPS 16
#define UDP_LIMIT 512
#define FORWARD_TIMEOUT_MS 2000
#define TCP_IDLE_MS 10000
#define SWEEP_MS 500
#define RESOLV_CONF_MAX 65536

#define TYPE_A 1
#define TYPE_AAAA 28
#define TYPE_SRV 33
#define TYPE_ANY 255
#define CLASS_IN 1
#define RCODE_NOERROR 0
#define RCODE_FORMERR 1
#define RCODE_SERVFAIL 2
#define RCODE_NXDOMAIN 3
#define RCODE_NOTIMP 4

struct service {
	char namespace[64];
	char name[64];
	struct in_addr cluster_ip;
	struct dns_port *ports;
	size_t port_count;
};

struct tcp_client {
	struct dns *dns;
	int fd;
	uint64_t generation;
	uint64_t last_active;
	uint8_t *buffer; /* 2-byte length + message */
	size_t have;
	struct tcp_client *next;
};

struct pending {
	bool used;
	uint16_t upstream_id, client_id;
	size_t upstream; /* index tried */
	uint64_t deadline;
	/* the client: a UDP address, or a TCP client known by its generation */
	struct sockaddr_in udp_client;
	uint64_t tcp_generation;
	uint8_t *query;
	size_t length;
};

struct dns {
	char domain[128];
	uint32_t ttl;
	struct loop *loop;
	struct in_addr address;
	struct service *services;
	size_t service_count;
	struct sockaddr_in upstreams[DNS_MAX_UPSTREAMS];
	size_t upstream_count;
	int udp_fd, tcp_fd, upstream_fd;
	struct tcp_client *tcp_clients;
	size_t tcp_client_count;
	uint64_t next_generation;
	struct pending pending[DNS_MAX_PENDING];
	size_t pending_count;
	struct loop_timer *sweep;
	uint8_t *message; /* scratch: one received message */
	uint8_t *reply;   /* scratch: one answer */
};

/* --- parsing ----------------------------------------------------------------------------- */

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static void put32(uint8_t *p, uint32_t v)
{
	put16(p, (uint16_t)(v >> 16));
	put16(p + 2, (uint16_t)v);
}

/* A name at *offset, as dotted text (no trailing dot, "" for the root). Compression pointers
 * must point backwards, at most MAX_POINTER_JUMPS of them: a loop cannot be followed. */
static int read_name(const uint8_t *message, size_t length, size_t *offset, char out[NAME_MAX_TEXT + 1])
{
	size_t position = *offset, n = 0;
	bool jumped = false;
	int jumps = 0;
	for (;;) {
		if (position >= length)
			return -EBADMSG;
		uint8_t label = message[position];
		if ((label & 0xc0) == 0xc0) {
			if (position + 1 >= length)
				return -EBADMSG;
			size_t target = (size_t)(label & 0x3f) << 8 | message[position + 1];
			if (!jumped)
				*offset = position + 2;
			if (target >= position || ++jumps > MAX_POINTER_JUMPS)
				return -ELOOP;
			position = target;
			jumped = true;
			continue;
		}
		if (label & 0xc0)
			return -EBADMSG; /* reserved label types */
		if (label == 0) {
			if (!jumped)
				*offset = position + 1;
			out[n] = '\0';
			return 0;
		}
		if (position + 1 + label > length || n + label + 1 > NAME_MAX_TEXT)
			return -EBADMSG;
		if (n)
			out[n++] = '.';
		for (size_t i = 0; i < label; i++) {
			uint8_t c = message[position + 1 + i];
			if (c == '.' || c == '\0')
				return -EBADMSG; /* not representable as text; no service has it */
			out[n++] = (char)c;
		}
		position += 1 + label;
	}
}

/* Writes a dotted name as labels; returns the bytes written or 0 when it does not fit. */
static size_t write_name(uint8_t *out, size_t room, const char *name)
{
	size_t n = 0;
	const char *p = name;
	while (*p) {
		const char *dot = strchr(p, '.');
		size_t label = dot ? (size_t)(dot - p) : strlen(p);
		if (label == 0 || label > 63 || n + 1 + label >= room)
			return 0;
		out[n++] = (uint8_t)label;
		memcpy(out + n, p, label);
		n += label;
		p += label + (dot ? 1 : 0);
	}
	if (n + 1 > room)
		return 0;
	out[n++] = 0;
	return n;
}

/* --- the service table ------------------------------------------------------------------ */

static struct service *find_service(struct dns *dns, const char *namespace, const char *name)
{
	for (size_t i = 0; i < dns->service_count; i++)
		if (strcasecmp(dns->services[i].namespace, namespace) == 0 &&
		    strcasecmp(dns->services[i].name, name) == 0)
			return &dns->services[i];
	return NULL;
}

static bool dns_label(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > 63)
		return false;
	for (const char *p = s; *p; p++)
		if (!isalnum((unsigned char)*p) && *p != '-')
			return false;
	return true;
}

int dns_set_service(struct dns *dns, const char *namespace, const char *name, struct in_addr cluster_ip,
                    const struct dns_port *ports, size_t port_count, struct error *err)
{
	if (!dns_label(namespace) || !dns_label(name))
		return error_set(err, EINVAL, "service %s/%s: the namespace and name must be DNS labels", namespace,
		                 name);
	for (size_t i = 0; i < port_count; i++)
		if (ports[i].name[0] &&
		    (!memchr(ports[i].name, '\0', sizeof(ports[i].name)) || !dns_label(ports[i].name)))
			return error_set(err, EINVAL, "service %s/%s: port name '%.63s' is not a DNS label", namespace,
			                 name, ports[i].name);
	struct service *service = find_service(dns, namespace, name);
	if (!service) {
		if (dns->service_count >= DNS_MAX_SERVICES)
			return error_set(err, ENOSPC, "the cluster DNS holds at most %d services", DNS_MAX_SERVICES);
		dns->services = xrealloc(dns->services, (dns->service_count + 1) * sizeof(*dns->services));
		service = &dns->services[dns->service_count++];
		memset(service, 0, sizeof(*service));
		snprintf(service->namespace, sizeof(service->namespace), "%s", namespace);
		snprintf(service->name, sizeof(service->name), "%s", name);
	}
	free(service->ports);
	service->cluster_ip = cluster_ip;
	service->ports = xcalloc(port_count ? port_count : 1, sizeof(*service->ports));
	if (port_count)
		memcpy(service->ports, ports, port_count * sizeof(*ports));
	service->port_count = port_count;
	return 0;
}

void dns_remove_service(struct dns *dns, const char *namespace, const char *name)
{
	struct service *service = find_service(dns, namespace, name);
	if (!service)
		return;
	free(service->ports);
	*service = dns->services[--dns->service_count];
}

size_t dns_upstream_count(const struct dns *dns)
{
	return dns->upstream_count;
}

/* --- answering ------------------------------------------------------------------------- */

static size_t error_reply(const uint8_t *query, size_t length, uint8_t *reply, int rcode)
{
	memset(reply, 0, HEADER_SIZE);
	memcpy(reply, query, 2);                        /* id */
	reply[2] = (uint8_t)(0x80 | (query[2] & 0x79)); /* QR, opcode, RD */
	reply[3] = (uint8_t)(0x80 | rcode);             /* RA */
	(void)length;
	return HEADER_SIZE;
}

struct answer_builder {
	uint8_t *reply;
	size_t room, length;
	uint16_t answers, additionals;
	size_t udp_limit;
	size_t cut; /* length up to the last answer that fits in udp_limit */
	uint16_t answers_in_cut;
	bool truncated;
};

static bool add_record(struct answer_builder *b, const char *owner, uint16_t type, const uint8_t *rdata,
                       size_t rdlength, bool additional, struct dns *dns)
{
	size_t start = b->length;
	size_t n = owner ? write_name(b->reply + b->length, b->room - b->length, owner) : 0;
	if (owner && n == 0)
		return false;
	if (!owner) { /* the question's name */
		if (b->room - b->length < 2)
			return false;
		put16(b->reply + b->length, 0xc000 | HEADER_SIZE);
		n = 2;
	}
	if (b->room - b->length - n < 10 + rdlength) {
		b->length = start;
		return false;
	}
	uint8_t *p = b->reply + b->length + n;
	put16(p, type);
	put16(p + 2, CLASS_IN);
	put32(p + 4, dns->ttl);
	put16(p + 8, (uint16_t)rdlength);
	memcpy(p + 10, rdata, rdlength);
	b->length += n + 10 + rdlength;
	if (additional)
		b->additionals++;
	else
		b->answers++;
	if (b->length <= b->udp_limit) {
		b->cut = b->length;
		b->answers_in_cut = b->answers;
	} else {
		b->truncated = true;
	}
	return true;
}

/* The part of name before ".<domain>", or NULL when name is not inside the domain. */
static const char *inside_domain(const char *name, const char *domain, char *rest, size_t size)
{
	size_t n = strlen(name), d = strlen(domain);
	if (n == d && strcasecmp(name, domain) == 0) {
		rest[0] = '\0';
		return rest;
	}
	if (n <= d + 1 || name[n - d - 1] != '.' || strcasecmp(name + n - d, domain) != 0)
		return NULL;
	if (n - d - 1 >= size)
		return NULL;
	memcpy(rest, name, n - d - 1);
	rest[n - d - 1] = '\0';
	return rest;
}

enum dns_action dns_answer(struct dns *dns, const uint8_t *query, size_t length, uint8_t *reply, size_t reply_max,
                           size_t udp_limit, size_t *ret_reply_length)
{
	if (length < HEADER_SIZE || reply_max < UDP_LIMIT)
		return DNS_DROP;
	if (query[2] & 0x80)
		return DNS_DROP; /* a response: never answer one (no reflection loops) */
	uint8_t opcode = (query[2] >> 3) & 0x0f;
	if (opcode != 0) {
		*ret_reply_length = error_reply(query, length, reply, RCODE_NOTIMP);
		return DNS_REPLY;
	}
	if (get16(query + 4) != 1) {
		*ret_reply_length = error_reply(query, length, reply, RCODE_FORMERR);
		return DNS_REPLY;
	}
	size_t offset = HEADER_SIZE;
	char name[NAME_MAX_TEXT + 1];
	if (read_name(query, length, &offset, name) < 0 || offset + 4 > length) {
		*ret_reply_length = error_reply(query, length, reply, RCODE_FORMERR);
		return DNS_REPLY;
	}
	uint16_t qtype = get16(query + offset), qclass = get16(query + offset + 2);
	char rest_buffer[NAME_MAX_TEXT + 1];
	const char *rest = inside_domain(name, dns->domain, rest_buffer, sizeof(rest_buffer));
	if (!rest)
		return DNS_FORWARD;

	/* authoritative: header, the question again, then answers */
	struct answer_builder b = { reply, reply_max, 0, 0, 0, udp_limit, 0, 0, false };
	memset(reply, 0, HEADER_SIZE);
	memcpy(reply, query, 2);
	reply[2] = (uint8_t)(0x80 | 0x04 | (query[2] & 0x01)); /* QR, AA, RD */
	reply[3] = 0x80;                                       /* RA */
	put16(reply + 4, 1);
	size_t n = write_name(reply + HEADER_SIZE, reply_max - HEADER_SIZE - 4, name);
	if (n == 0 && name[0]) {
		*ret_reply_length = error_reply(query, length, reply, RCODE_FORMERR);
		return DNS_REPLY;
	}
	if (n == 0) { /* the root cannot be inside a domain; for form's sake */
		reply[HEADER_SIZE] = 0;
		n = 1;
	}
	put16(reply + HEADER_SIZE + n, qtype);
	put16(reply + HEADER_SIZE + n + 2, qclass);
	b.length = HEADER_SIZE + n + 4;
	b.cut = b.length;
	int rcode = RCODE_NXDOMAIN;

	/* split rest into at most 6 labels */
	char copy[NAME_MAX_TEXT + 1];
	snprintf(copy, sizeof(copy), "%s", rest);
	char *labels[6];
	size_t count = 0;
	char *save = NULL;
	for (char *l = strtok_r(copy, ".", &save); l; l = strtok_r(NULL, ".", &save)) {
		if (count == 6) {
			count = 7;
			break;
		}
		labels[count++] = l;
	}
	bool is_svc = count >= 1 && count <= 6 && strcasecmp(labels[count - 1], "svc") == 0;
	if (qclass != CLASS_IN && qclass != TYPE_ANY) {
		rcode = RCODE_NXDOMAIN;
	} else if (count == 0 || (is_svc && count <= 2)) {
		rcode = RCODE_NOERROR; /* <domain>, svc.<domain>, <ns>.svc.<domain>: exist, no data */
	} else if (is_svc && count == 3) {
		struct service *service = find_service(dns, labels[1], labels[0]);
		if (service) {
			rcode = RCODE_NOERROR;
			if (qtype == TYPE_A || qtype == TYPE_ANY)
				add_record(&b, NULL, TYPE_A, (const uint8_t *)&service->cluster_ip.s_addr, 4, false,
				           dns);
		}
	} else if (is_svc && count == 5 && labels[0][0] == '_' && labels[1][0] == '_') {
		struct service *service = find_service(dns, labels[3], labels[2]);
		const char *port_name = labels[0] + 1, *protocol = labels[1] + 1;
		uint8_t want = strcasecmp(protocol, "tcp") == 0   ? IPPROTO_TCP
		               : strcasecmp(protocol, "udp") == 0 ? IPPROTO_UDP
		                                                  : 0;
		for (size_t i = 0; service && want && i < service->port_count; i++) {
			const struct dns_port *port = &service->ports[i];
			if (port->protocol != want || !port->name[0] || strcasecmp(port->name, port_name) != 0)
				continue;
			rcode = RCODE_NOERROR;
			if (qtype != TYPE_SRV && qtype != TYPE_ANY)
				break;
			char target[NAME_MAX_TEXT + 1];
			snprintf(target, sizeof(target), "%s.%s.svc.%s", service->name, service->namespace,
			         dns->domain);
			uint8_t rdata[6 + NAME_MAX_TEXT + 2];
			put16(rdata, 0);
			put16(rdata + 2, 100);
			put16(rdata + 4, port->port);
			size_t t = write_name(rdata + 6, sizeof(rdata) - 6, target);
			if (t && add_record(&b, NULL, TYPE_SRV, rdata, 6 + t, false, dns))
				add_record(&b, target, TYPE_A, (const uint8_t *)&service->cluster_ip.s_addr, 4, true,
				           dns);
		}
	}
	reply[3] = (uint8_t)(0x80 | rcode);
	if (b.truncated) {
		b.length = b.cut;
		put16(reply + 6, b.answers_in_cut);
		put16(reply + 10, 0);
		reply[2] |= 0x02; /* TC */
	} else {
		put16(reply + 6, b.answers);
		put16(reply + 10, b.additionals);
	}
	*ret_reply_length = b.length;
	return DNS_REPLY;
}

/* --- resolv.conf ------------------------------------------------------------------------ */

static int read_upstreams(struct dns *dns, const char *path, struct error *err)
{
	cleanup_free char *text = NULL;
	int r = file_read(path, RESOLV_CONF_MAX, &text, NULL, err);
	if (r < 0)
		return r;
	char *save = NULL;
	for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char address[64];
		if (sscanf(line, " nameserver %63s", address) != 1)
			continue;
		struct in_addr a;
		if (inet_pton(AF_INET, address, &a) != 1) /* IPv6 upstreams: not used by this IPv4 DNS */
			continue;
		if (a.s_addr == dns->address.s_addr || dns->upstream_count == DNS_MAX_UPSTREAMS)
			continue;
		dns->upstreams[dns->upstream_count++] =
		        (struct sockaddr_in){ .sin_family = AF_INET, .sin_port = htons(53), .sin_addr = a };
	}
	return 0;
}

int dns_resolv_conf(enum dns_policy policy, struct in_addr nameserver, const char *namespace, const char *domain,
                    const char *host_resolv_conf, char **ret_text, struct error *err)
{
	cleanup_free char *host = NULL;
	int r = file_read(host_resolv_conf ? host_resolv_conf : "/etc/resolv.conf", RESOLV_CONF_MAX, &host, NULL, err);
	if (r < 0)
		return r;
	if (policy == DNS_POLICY_DEFAULT) {
		*ret_text = steal_pointer(&host);
		return 0;
	}
	if (!dns_label(namespace))
		return error_set(err, EINVAL, "namespace '%s' is not a DNS label", namespace);
	domain = domain ? domain : "cluster.local";
	char address[INET_ADDRSTRLEN];
	inet_ntop(AF_INET, &nameserver, address, sizeof(address));
	struct buffer text = BUFFER_INIT;
	buffer_printf(&text, "# written by bramble (dnsPolicy ClusterFirst)\nnameserver %s\n", address);
	buffer_printf(&text, "search %s.svc.%s svc.%s %s", namespace, domain, domain, domain);
	/* then the board's own search domains, as kubelet does */
	char *save = NULL;
	for (char *line = strtok_r(host, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		if (strncmp(line, "search", 6) != 0 && strncmp(line, "domain", 6) != 0)
			continue;
		char *words = line + 6;
		char *word_save = NULL;
		for (char *w = strtok_r(words, " \t", &word_save); w; w = strtok_r(NULL, " \t", &word_save))
			buffer_printf(&text, " %s", w);
	}
	buffer_append_string(&text, "\noptions ndots:5\n");
	*ret_text = buffer_steal(&text);
	return 0;
}

/* The words of resolv.conf's nameserver, search (and domain) and options lines. */
struct resolv {
	char *nameservers[DNS_MAX_NAMESERVERS];
	char *searches[DNS_MAX_SEARCHES];
	char *options[32];
	size_t nameserver_count, search_count, option_count;
};

/* Appends word unless it is there already or the list is full. */
static void add_word(char **list, size_t *count, size_t max, const char *word)
{
	for (size_t i = 0; i < *count; i++)
		if (strcmp(list[i], word) == 0)
			return;
	if (*count < max)
		list[(*count)++] = xstrdup(word);
}

/* An option replaces the one of the same name (ndots:5 replaces ndots:2). */
static void set_option(struct resolv *r, const char *option)
{
	size_t name_length = strcspn(option, ":");
	for (size_t i = 0; i < r->option_count; i++)
		if (strncmp(r->options[i], option, name_length) == 0 &&
		    (r->options[i][name_length] == '\0' || r->options[i][name_length] == ':')) {
			free(r->options[i]);
			r->options[i] = xstrdup(option);
			return;
		}
	add_word(r->options, &r->option_count, ARRAY_SIZE(r->options), option);
}

char *dns_merge_config(const char *base, const cJSON *dns_config)
{
	struct resolv r = { 0 };
	struct buffer text = BUFFER_INIT;
	char *copy = xstrdup(base ? base : "");
	char *save = NULL;
	for (char *line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		if (line[0] == '#') {
			if (!text.length)
				buffer_printf(&text, "%s\n", line); /* who wrote it */
			continue;
		}
		char *word_save = NULL;
		char *key = strtok_r(line, " \t", &word_save);
		if (!key)
			continue;
		for (char *w = strtok_r(NULL, " \t", &word_save); w; w = strtok_r(NULL, " \t", &word_save)) {
			if (strcmp(key, "nameserver") == 0)
				add_word(r.nameservers, &r.nameserver_count, DNS_MAX_NAMESERVERS, w);
			else if (strcmp(key, "search") == 0 || strcmp(key, "domain") == 0)
				add_word(r.searches, &r.search_count, DNS_MAX_SEARCHES, w);
			else if (strcmp(key, "options") == 0)
				set_option(&r, w);
		}
	}
	free(copy);
	if (!text.length)
		buffer_append_string(&text, "# written by bramble (spec.dnsConfig)\n");
	const cJSON *item;
	cJSON_ArrayForEach(item, cJSON_GetObjectItemCaseSensitive(dns_config, "nameservers"))
	{
		if (cJSON_IsString(item))
			add_word(r.nameservers, &r.nameserver_count, DNS_MAX_NAMESERVERS, item->valuestring);
	}
	cJSON_ArrayForEach(item, cJSON_GetObjectItemCaseSensitive(dns_config, "searches"))
	{
		if (cJSON_IsString(item))
			add_word(r.searches, &r.search_count, DNS_MAX_SEARCHES, item->valuestring);
	}
	cJSON_ArrayForEach(item, cJSON_GetObjectItemCaseSensitive(dns_config, "options"))
	{
		const char *name = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(item, "name"));
		const char *value = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(item, "value"));
		if (!name || !*name)
			continue;
		cleanup_free char *option = value ? xasprintf("%s:%s", name, value) : xstrdup(name);
		set_option(&r, option);
	}
	for (size_t i = 0; i < r.nameserver_count; i++)
		buffer_printf(&text, "nameserver %s\n", r.nameservers[i]);
	const char *const prefixes[] = { "search", "options" };
	char **lists[] = { r.searches, r.options };
	size_t counts[] = { r.search_count, r.option_count };
	for (size_t l = 0; l < 2; l++) {
		if (!counts[l])
			continue;
		buffer_append_string(&text, prefixes[l]);
		for (size_t i = 0; i < counts[l]; i++)
			buffer_printf(&text, " %s", lists[l][i]);
		buffer_append_string(&text, "\n");
	}
	for (size_t i = 0; i < r.nameserver_count; i++)
		free(r.nameservers[i]);
	for (size_t i = 0; i < r.search_count; i++)
		free(r.searches[i]);
	for (size_t i = 0; i < r.option_count; i++)
		free(r.options[i]);
	return buffer_steal(&text);
}

/* --- serving ------------------------------------------------------------------------------ */

static void arm_sweep(struct dns *dns);

static void send_udp(struct dns *dns, const struct sockaddr_in *client, const uint8_t *data, size_t length)
{
	sendto(dns->udp_fd, data, length, MSG_DONTWAIT, (const struct sockaddr *)client, sizeof(*client));
}

static void tcp_client_close(struct tcp_client *client)
{
	struct dns *dns = client->dns;
	for (struct tcp_client **p = &dns->tcp_clients; *p; p = &(*p)->next)
		if (*p == client) {
			*p = client->next;
			break;
		}
	dns->tcp_client_count--;
	loop_remove_fd(dns->loop, client->fd);
	close(client->fd);
	free(client->buffer);
	free(client);
}

static void send_tcp(struct tcp_client *client, const uint8_t *data, size_t length)
{
	uint8_t prefix[2];
	put16(prefix, (uint16_t)length);
	struct iovec iov[2] = { { prefix, 2 }, { (void *)data, length } };
	struct msghdr msg = { .msg_iov = iov, .msg_iovlen = 2 };
	ssize_t n = sendmsg(client->fd, &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
	if (n != (ssize_t)(length + 2))
		tcp_client_close(client); /* answers are small: a client that cannot take one is dropped */
}

static struct tcp_client *tcp_client_by_generation(struct dns *dns, uint64_t generation)
{
	for (struct tcp_client *c = dns->tcp_clients; c; c = c->next)
		if (c->generation == generation)
			return c;
	return NULL;
}

static void deliver(struct dns *dns, struct pending *pending, const uint8_t *data, size_t length)
{
	if (pending->tcp_generation) {
		struct tcp_client *client = tcp_client_by_generation(dns, pending->tcp_generation);
		if (client)
			send_tcp(client, data, length);
	} else {
		send_udp(dns, &pending->udp_client, data, length);
	}
}

static void pending_free(struct dns *dns, struct pending *pending)
{
	free(pending->query);
	memset(pending, 0, sizeof(*pending));
	dns->pending_count--;
}

static int send_upstream(struct dns *dns, struct pending *pending)
{
	const struct sockaddr_in *to = &dns->upstreams[pending->upstream];
	put16(pending->query, pending->upstream_id);
	pending->deadline = loop_now(dns->loop) + FORWARD_TIMEOUT_MS;
	if (sendto(dns->upstream_fd, pending->query, pending->length, MSG_DONTWAIT, (const struct sockaddr *)to,
	           sizeof(*to)) < 0)
		return -errno;
	return 0;
}

static void fail_pending(struct dns *dns, struct pending *pending)
{
	uint8_t reply[HEADER_SIZE];
	put16(pending->query, pending->client_id);
	size_t n = error_reply(pending->query, pending->length, reply, RCODE_SERVFAIL);
	deliver(dns, pending, reply, n);
	pending_free(dns, pending);
}

static void forward(struct dns *dns, const uint8_t *query, size_t length, const struct sockaddr_in *udp_client,
                    uint64_t tcp_generation)
{
	if (dns->upstream_count == 0 || dns->pending_count >= DNS_MAX_PENDING) {
		uint8_t reply[HEADER_SIZE];
		size_t n = error_reply(query, length, reply, RCODE_SERVFAIL);
		if (tcp_generation) {
			struct tcp_client *client = tcp_client_by_generation(dns, tcp_generation);
			if (client)
				send_tcp(client, reply, n);
		} else {
			send_udp(dns, udp_client, reply, n);
		}
		return;
	}
	struct pending *pending = NULL;
	for (size_t i = 0; i < DNS_MAX_PENDING && !pending; i++)
		if (!dns->pending[i].used)
			pending = &dns->pending[i];
	uint16_t id;
	for (;;) { /* a fresh id no pending query has */
		if (getrandom(&id, sizeof(id), GRND_NONBLOCK) != sizeof(id))
			id = (uint16_t)random();
		bool taken = false;
		for (size_t i = 0; i < DNS_MAX_PENDING && !taken; i++)
			taken = dns->pending[i].used && dns->pending[i].upstream_id == id;
		if (!taken)
			break;
	}
	pending->used = true;
	dns->pending_count++;
	pending->upstream_id = id;
	pending->client_id = get16(query);
	pending->upstream = 0;
	pending->tcp_generation = tcp_generation;
	if (udp_client)
		pending->udp_client = *udp_client;
	pending->query = xmalloc(length);
	memcpy(pending->query, query, length);
	pending->length = length;
	if (send_upstream(dns, pending) < 0) {
		fail_pending(dns, pending);
		return;
	}
	arm_sweep(dns);
}

static void handle(struct dns *dns, const uint8_t *query, size_t length, const struct sockaddr_in *udp_client,
                   struct tcp_client *tcp_client)
{
	size_t reply_length = 0;
	enum dns_action action = dns_answer(dns, query, length, dns->reply, DNS_MESSAGE_MAX,
	                                    tcp_client ? DNS_MESSAGE_MAX : UDP_LIMIT, &reply_length);
	if (action == DNS_REPLY) {
		if (tcp_client)
			send_tcp(tcp_client, dns->reply, reply_length);
		else
			send_udp(dns, udp_client, dns->reply, reply_length);
	} else if (action == DNS_FORWARD) {
		forward(dns, query, length, udp_client, tcp_client ? tcp_client->generation : 0);
	}
}

static void udp_readable(struct loop *loop, int fd, uint32_t events, void *data)
{
	struct dns *dns = data;
	for (int i = 0; i < 64; i++) {
		struct sockaddr_in client;
		socklen_t length = sizeof(client);
		ssize_t n =
		        recvfrom(fd, dns->message, DNS_MESSAGE_MAX, MSG_DONTWAIT, (struct sockaddr *)&client, &length);
		if (n < 0)
			return;
		handle(dns, dns->message, (size_t)n, &client, NULL);
	}
}

static void upstream_readable(struct loop *loop, int fd, uint32_t events, void *data)
{
	struct dns *dns = data;
	for (int i = 0; i < 64; i++) {
		struct sockaddr_in from;
		socklen_t length = sizeof(from);
		ssize_t n =
		        recvfrom(fd, dns->message, DNS_MESSAGE_MAX, MSG_DONTWAIT, (struct sockaddr *)&from, &length);
		if (n < 0)
			return;
		if (n < HEADER_SIZE || !(dns->message[2] & 0x80))
			continue;
		uint16_t id = get16(dns->message);
		for (size_t p = 0; p < DNS_MAX_PENDING; p++) {
			struct pending *pending = &dns->pending[p];
			const struct sockaddr_in *asked = &dns->upstreams[pending->upstream];
			if (!pending->used || pending->upstream_id != id ||
			    from.sin_addr.s_addr != asked->sin_addr.s_addr || from.sin_port != asked->sin_port)
				continue;
			put16(dns->message, pending->client_id);
			size_t out = (size_t)n;
			if (!pending->tcp_generation && out > UDP_LIMIT) {
				/* too long for the client's UDP: the header and question with TC */
				out = UDP_LIMIT;
				dns->message[2] |= 0x02;
			}
			deliver(dns, pending, dns->message, out);
			pending_free(dns, pending);
			break;
		}
	}
}

static void tcp_readable(struct loop *loop, int fd, uint32_t events, void *data)
{
	struct tcp_client *client = data;
	struct dns *dns = client->dns;
	ssize_t n = recv(fd, client->buffer + client->have, 2 + DNS_MESSAGE_MAX - client->have, MSG_DONTWAIT);
	if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
		tcp_client_close(client);
		return;
	}
	if (n < 0)
		return;
	client->have += (size_t)n;
	client->last_active = loop_now(loop);
	while (client->have >= 2) {
		size_t length = get16(client->buffer);
		if (client->have < 2 + length)
			return;
		uint64_t generation = client->generation;
		handle(dns, client->buffer + 2, length, NULL, client);
		if (!tcp_client_by_generation(dns, generation))
			return; /* closed while answering */
		memmove(client->buffer, client->buffer + 2 + length, client->have - 2 - length);
		client->have -= 2 + length;
	}
}

static void tcp_accept(struct loop *loop, int fd, uint32_t events, void *data)
{
	struct dns *dns = data;
	for (int i = 0; i < 16; i++) {
		int c = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (c < 0)
			return;
		if (dns->tcp_client_count >= DNS_MAX_TCP_CLIENTS) {
			close(c);
			continue;
		}
		struct tcp_client *client = xcalloc(1, sizeof(*client));
		client->dns = dns;
		client->fd = c;
		client->generation = ++dns->next_generation;
		client->last_active = loop_now(loop);
		client->buffer = xmalloc(2 + DNS_MESSAGE_MAX);
		if (loop_add_fd(loop, c, EPOLLIN, tcp_readable, client) < 0) {
			close(c);
			free(client->buffer);
			free(client);
			continue;
		}
		client->next = dns->tcp_clients;
		dns->tcp_clients = client;
		dns->tcp_client_count++;
		arm_sweep(dns);
	}
}

static void sweep(struct loop *loop, void *data)
{
	struct dns *dns = data;
	dns->sweep = NULL;
	uint64_t now = loop_now(loop);
	for (size_t i = 0; i < DNS_MAX_PENDING; i++) {
		struct pending *pending = &dns->pending[i];
		if (!pending->used || pending->deadline > now)
			continue;
		if (pending->upstream + 1 < dns->upstream_count) {
			pending->upstream++;
			if (send_upstream(dns, pending) == 0)
				continue;
		}
		fail_pending(dns, pending);
	}
	struct tcp_client *c = dns->tcp_clients;
	while (c) {
		struct tcp_client *next = c->next;
		if (now - c->last_active > TCP_IDLE_MS)
			tcp_client_close(c);
		c = next;
	}
	arm_sweep(dns);
}

/* A timer only while something may time out: an idle DNS costs no wake-ups. */
static void arm_sweep(struct dns *dns)
{
	if (!dns->sweep && (dns->pending_count || dns->tcp_client_count))
		dns->sweep = loop_add_timer(dns->loop, SWEEP_MS, sweep, dns);
}

static int bind_socket(int type, struct in_addr address, uint16_t port, struct error *err)
{
	char text[INET_ADDRSTRLEN];
	inet_ntop(AF_INET, &address, text, sizeof(text));
	int fd = socket(AF_INET, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return error_set_errno(err, errno, "DNS socket");
	int one = 1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port), .sin_addr = address };
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || (type == SOCK_STREAM && listen(fd, 32) < 0)) {
		int e = errno;
		close(fd);
		return error_set_errno(err, e, "DNS: listen on %s:%u/%s", text, port,
		                       type == SOCK_STREAM ? "TCP" : "UDP");
	}
	return fd;
}

int dns_new(const struct dns_config *config, struct dns **ret_dns, struct error *err)
{
	struct dns *dns = xcalloc(1, sizeof(*dns));
	dns->udp_fd = dns->tcp_fd = dns->upstream_fd = -1;
	snprintf(dns->domain, sizeof(dns->domain), "%s", config->domain ? config->domain : "cluster.local");
	dns->ttl = config->ttl ? config->ttl : 5;
	dns->loop = config->loop;
	dns->address = config->address;
	int r = read_upstreams(dns, config->resolv_conf ? config->resolv_conf : "/etc/resolv.conf", err);
	if (r < 0 && r != -ENOENT)
		goto fail;
	if (dns->loop) {
		uint16_t port = config->port ? config->port : 53;
		dns->message = xmalloc(DNS_MESSAGE_MAX);
		dns->reply = xmalloc(DNS_MESSAGE_MAX);
		r = dns->udp_fd = bind_socket(SOCK_DGRAM, config->address, port, err);
		if (r < 0)
			goto fail;
		r = dns->tcp_fd = bind_socket(SOCK_STREAM, config->address, port, err);
		if (r < 0)
			goto fail;
		r = dns->upstream_fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (r < 0) {
			r = error_set_errno(err, errno, "DNS upstream socket");
			goto fail;
		}
		if ((r = loop_add_fd(dns->loop, dns->udp_fd, EPOLLIN, udp_readable, dns)) < 0 ||
		    (r = loop_add_fd(dns->loop, dns->tcp_fd, EPOLLIN, tcp_accept, dns)) < 0 ||
		    (r = loop_add_fd(dns->loop, dns->upstream_fd, EPOLLIN, upstream_readable, dns)) < 0) {
			error_set_errno(err, -r, "DNS: watch sockets");
			goto fail;
		}
	}
	*ret_dns = dns;
	return 0;
fail:
	dns_free(dns);
	return r;
}

void dns_free(struct dns *dns)
{
	if (!dns)
		return;
	while (dns->tcp_clients)
		tcp_client_close(dns->tcp_clients);
	for (size_t i = 0; i < DNS_MAX_PENDING; i++)
		if (dns->pending[i].used)
			pending_free(dns, &dns->pending[i]);
	if (dns->sweep)
		loop_cancel_timer(dns->loop, dns->sweep);
	int fds[] = { dns->udp_fd, dns->tcp_fd, dns->upstream_fd };
	for (size_t i = 0; i < 3; i++)
		if (fds[i] >= 0) {
			if (dns->loop)
				loop_remove_fd(dns->loop, fds[i]);
			close(fds[i]);
		}
	for (size_t i = 0; i < dns->service_count; i++)
		free(dns->services[i].ports);
	free(dns->services);
	free(dns->message);
	free(dns->reply);
	free(dns);
}
