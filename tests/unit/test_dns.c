#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "agent/dns.h"
#include "platform/error.h"
#include "platform/file.h"
#include "platform/loop.h"
#include "platform/netlink.h"
#include "tests/unit/unit.h"

static struct in_addr ip(const char *text)
{
	struct in_addr a;
	CHECK(inet_pton(AF_INET, text, &a) == 1);
	return a;
}

/* A query for name/type with id 0x1234 and RD. */
static size_t make_query(uint8_t *out, const char *name, uint16_t type)
{
	uint8_t header[12] = { 0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0 };
	memcpy(out, header, 12);
	size_t n = 12;
	const char *p = name;
	while (*p) {
		const char *dot = strchr(p, '.');
		size_t label = dot ? (size_t)(dot - p) : strlen(p);
		out[n++] = (uint8_t)label;
		memcpy(out + n, p, label);
		n += label;
		p += label + (dot ? 1 : 0);
	}
	out[n++] = 0;
	out[n++] = (uint8_t)(type >> 8);
	out[n++] = (uint8_t)type;
	out[n++] = 0;
	out[n++] = 1;
	return n;
}

static int rcode(const uint8_t *reply)
{
	return reply[3] & 0x0f;
}

static int answers(const uint8_t *reply)
{
	return reply[6] << 8 | reply[7];
}

static struct dns *table(void)
{
	char path[512];
	snprintf(path, sizeof(path), "%s/resolv.conf", unit_temp_dir());
	const char *text = "search lan\nnameserver 192.0.2.53\nnameserver ::1\nnameserver 192.0.2.54\n";
	struct error err = { 0 };
	CHECK_OK(file_write_atomic(path, text, strlen(text), 0644, &err));
	struct dns_config config = { .resolv_conf = path };
	struct dns *dns;
	CHECK_OK(dns_new(&config, &dns, &err));
	CHECK_INT(dns_upstream_count(dns), ==, 2);
	struct dns_port ports[] = { { "http", IPPROTO_TCP, 80 }, { "dns", IPPROTO_UDP, 53 }, { "", IPPROTO_TCP, 81 } };
	CHECK_OK(dns_set_service(dns, "default", "web", ip("10.43.0.20"), ports, 3, &err));
	CHECK_OK(dns_set_service(dns, "kube-system", "dns", ip("10.43.0.10"), ports + 1, 1, &err));
	return dns;
}

TEST(dns_answers_services)
{
	struct dns *dns = table();
	uint8_t q[512], r[DNS_MESSAGE_MAX];
	size_t n, rn;
	n = make_query(q, "web.default.svc.cluster.local", 1);
	CHECK_INT(dns_answer(dns, q, n, r, sizeof(r), 512, &rn), ==, DNS_REPLY);
	CHECK_INT(r[0], ==, 0x12);
	CHECK(r[2] & 0x80); /* QR */
	CHECK(r[2] & 0x04); /* AA */
	CHECK_INT(rcode(r), ==, 0);
	CHECK_INT(answers(r), ==, 1);
	CHECK(memcmp(r + rn - 4, "\x0a\x2b\x00\x14", 4) == 0); /* 10.43.0.20 */

	n = make_query(q, "WEB.Default.SVC.cluster.LOCAL", 1); /* case does not matter */
	CHECK_INT(dns_answer(dns, q, n, r, sizeof(r), 512, &rn), ==, DNS_REPLY);
	CHECK_INT(answers(r), ==, 1);

	n = make_query(q, "web.default.svc.cluster.local", 28); /* AAAA: no data */
	CHECK_INT(dns_answer(dns, q, n, r, sizeof(r), 512, &rn), ==, DNS_REPLY);
	CHECK_INT(rcode(r), ==, 0);
	CHECK_INT(answers(r), ==, 0);

	n = make_query(q, "nope.default.svc.cluster.local", 1);
	CHECK_INT(dns_answer(dns, q, n, r, sizeof(r), 512, &rn), ==, DNS_REPLY);
	CHECK_INT(rcode(r), ==, 3);
	n = make_query(q, "web.other.svc.cluster.local", 1);
	CHECK_INT(dns_answer(dns, q, n, r, sizeof(r), 512, &rn), ==, DNS_REPLY);
	CHECK_INT(rcode(r), ==, 3);
	/* the search path's first try for "web.default" from namespace default */
	n = make_query(q, "web.default.default.svc.cluster.local", 1);
	CHECK_INT(dns_answer(dns, q, n, r, sizeof(r), 512, &rn), ==, DNS_REPLY);
	CHECK_INT(rcode(r), ==, 3);
	n = make_query(q, "default.svc.cluster.local", 1);
	CHECK_INT(dns_answer(dns, q, n, r, sizeof(r), 512, &rn), ==, DNS_REPLY);
	CHECK_INT(rcode(r), ==, 0);
	CHECK_INT(answers(r), ==, 0);
	n = make_query(q, "cluster.local", 1);
	CHECK_INT(dns_answer(dns, q, n, r, sizeof(r), 512, &rn), ==, DNS_REPLY);
	CHECK_INT(rcode(r), ==, 0);

	/* SRV for a named port, with the target's address as additional */
	n = make_query(q, "_http._tcp.web.default.svc.cluster.local", 33);
	CHECK_INT(dns_answer(dns, q, n, r, sizeof(r), 512, &rn), ==, DNS_REPLY);
	CHECK_INT(rcode(r), ==, 0);
	CHECK_INT(answers(r), ==, 1);
	CHECK_INT(r[11], ==, 1);
	CHECK(memmem(r, rn,
	             "\x00\x00\x00\x64\x00\x50\x03web\x07"
	             "default",
	             17) != NULL); /* 0 100 80 web.default */
	n = make_query(q, "_dns._udp.web.default.svc.cluster.local", 33);
	CHECK_INT(dns_answer(dns, q, n, r, sizeof(r), 512, &rn), ==, DNS_REPLY);
	CHECK_INT(answers(r), ==, 1);
	n = make_query(q, "_dns._tcp.web.default.svc.cluster.local", 33); /* wrong protocol */
	CHECK_INT(dns_answer(dns, q, n, r, sizeof(r), 512, &rn), ==, DNS_REPLY);
	CHECK_INT(rcode(r), ==, 3);

	/* everything else goes upstream */
	n = make_query(q, "example.org", 1);
	CHECK_INT(dns_answer(dns, q, n, r, sizeof(r), 512, &rn), ==, DNS_FORWARD);
	n = make_query(q, "notcluster.local", 1);
	CHECK_INT(dns_answer(dns, q, n, r, sizeof(r), 512, &rn), ==, DNS_FORWARD);

	dns_remove_service(dns, "default", "web");
	n = make_query(q, "web.default.svc.cluster.local", 1);
	CHECK_INT(dns_answer(dns, q, n, r, sizeof(r), 512, &rn), ==, DNS_REPLY);
	CHECK_INT(rcode(r), ==, 3);
	dns_free(dns);
}

TEST(dns_bad_messages)
{
	struct dns *dns = table();
	uint8_t q[600], r[DNS_MESSAGE_MAX];
	size_t n, rn;
	/* shorter than a header: dropped */
	CHECK_INT(dns_answer(dns, (const uint8_t *)"\x12\x34\x01", 3, r, sizeof(r), 512, &rn), ==, DNS_DROP);
	/* a response: dropped */
	n = make_query(q, "web.default.svc.cluster.local", 1);
	q[2] |= 0x80;
	CHECK_INT(dns_answer(dns, q, n, r, sizeof(r), 512, &rn), ==, DNS_DROP);
	/* truncated question: FORMERR */
	n = make_query(q, "web.default.svc.cluster.local", 1);
	for (size_t cut = 13; cut < n; cut++) {
		CHECK_INT(dns_answer(dns, q, cut, r, sizeof(r), 512, &rn), ==, DNS_REPLY);
		CHECK_INT(rcode(r), ==, 1);
		CHECK_INT(rn, ==, 12);
	}
	/* a compression pointer to itself, and one pointing forward */
	uint8_t loop_query[] = { 0x12, 0x34, 0x01, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 12, 0, 1, 0, 1 };
	CHECK_INT(dns_answer(dns, loop_query, sizeof(loop_query), r, sizeof(r), 512, &rn), ==, DNS_REPLY);
	CHECK_INT(rcode(r), ==, 1);
	uint8_t forward_query[] = { 0x12, 0x34, 0x01, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 14, 0, 1, 0, 1 };
	CHECK_INT(dns_answer(dns, forward_query, sizeof(forward_query), r, sizeof(r), 512, &rn), ==, DNS_REPLY);
	CHECK_INT(rcode(r), ==, 1);
	/* two questions; another opcode */
	n = make_query(q, "web.default.svc.cluster.local", 1);
	q[5] = 2;
	CHECK_INT(dns_answer(dns, q, n, r, sizeof(r), 512, &rn), ==, DNS_REPLY);
	CHECK_INT(rcode(r), ==, 1);
	n = make_query(q, "web.default.svc.cluster.local", 1);
	q[2] = 0x10; /* opcode 2 */
	CHECK_INT(dns_answer(dns, q, n, r, sizeof(r), 512, &rn), ==, DNS_REPLY);
	CHECK_INT(rcode(r), ==, 4);
	/* 512 random bytes, many times: an answer or nothing, never a crash */
	srandom(7);
	for (int i = 0; i < 2000; i++) {
		for (size_t b = 0; b < 512; b++)
			q[b] = (uint8_t)random();
		if (i % 2)
			q[2] &= 0x7f; /* a query, so that the parser runs */
		if (i % 4 == 1)
			q[4] = 0, q[5] = 1;
		enum dns_action a = dns_answer(dns, q, 512, r, sizeof(r), 512, &rn);
		if (a == DNS_REPLY)
			CHECK(rn >= 12 && rn <= 512);
	}
	dns_free(dns);
}

TEST(dns_resolv_conf_for_pods)
{
	char path[512];
	snprintf(path, sizeof(path), "%s/resolv.conf", unit_temp_dir());
	const char *host = "search lan home\nnameserver 192.168.1.1\n";
	struct error err = { 0 };
	CHECK_OK(file_write_atomic(path, host, strlen(host), 0644, &err));
	char *text;
	CHECK_OK(dns_resolv_conf(DNS_POLICY_CLUSTER_FIRST, ip("10.42.3.1"), "shop", NULL, path, &text, &err));
	CHECK_STR(text, "# written by bramble (dnsPolicy ClusterFirst)\nnameserver 10.42.3.1\n"
	                "search shop.svc.cluster.local svc.cluster.local cluster.local lan home\noptions ndots:5\n");
	free(text);
	CHECK_OK(dns_resolv_conf(DNS_POLICY_DEFAULT, ip("10.42.3.1"), "shop", NULL, path, &text, &err));
	CHECK_STR(text, host);
	free(text);
	CHECK_INT(dns_resolv_conf(DNS_POLICY_CLUSTER_FIRST, ip("10.42.3.1"), "bad ns", NULL, path, &text, &err), ==,
	          -EINVAL);
}

TEST(dns_config_merges_as_the_kubelet_merges)
{
	cJSON *config =
	        cJSON_Parse("{\"nameservers\":[\"1.1.1.1\",\"10.42.3.1\"],\"searches\":[\"corp.example\",\"lan\"],"
	                    "\"options\":[{\"name\":\"ndots\",\"value\":\"2\"},{\"name\":\"edns0\"}]}");
	/* Over ClusterFirst: nameservers and searches appended without repeats, ndots replaced. */
	char *text = dns_merge_config("# written by bramble (dnsPolicy ClusterFirst)\nnameserver 10.42.3.1\n"
	                              "search shop.svc.cluster.local svc.cluster.local cluster.local lan\n"
	                              "options ndots:5\n",
	                              config);
	CHECK_STR(text, "# written by bramble (dnsPolicy ClusterFirst)\nnameserver 10.42.3.1\nnameserver 1.1.1.1\n"
	                "search shop.svc.cluster.local svc.cluster.local cluster.local lan corp.example\n"
	                "options ndots:2 edns0\n");
	free(text);
	/* dnsPolicy None: dnsConfig alone. */
	text = dns_merge_config(NULL, config);
	CHECK_STR(text, "# written by bramble (spec.dnsConfig)\nnameserver 1.1.1.1\nnameserver 10.42.3.1\n"
	                "search corp.example lan\noptions ndots:2 edns0\n");
	free(text);
	cJSON_Delete(config);
	/* Three nameservers at most; a base with other lines keeps only what resolv.conf means. */
	config = cJSON_Parse("{\"nameservers\":[\"9.9.9.9\",\"8.8.8.8\"]}");
	text = dns_merge_config("nameserver 192.168.1.1\nnameserver 192.168.1.2\nsortlist 10.0.0.0\n", config);
	CHECK_STR(text, "# written by bramble (spec.dnsConfig)\nnameserver 192.168.1.1\nnameserver 192.168.1.2\n"
	                "nameserver 9.9.9.9\n");
	free(text);
	cJSON_Delete(config);
}

/* Runs the loop until fd is readable (5 s at most). */
static bool wait_readable(struct loop *loop, int fd)
{
	for (int i = 0; i < 500; i++) {
		loop_run_once(loop, 0);
		struct pollfd p = { fd, POLLIN, 0 };
		if (poll(&p, 1, 10) > 0)
			return true;
	}
	return false;
}

TEST(dns_serves_udp_tcp_and_forwards)
{
	CHECK_OK(unshare(CLONE_NEWNET));
	struct error err = { 0 };
	struct netlink *nl;
	CHECK_OK(netlink_open(-1, &nl, &err));
	CHECK_OK(netlink_link_set_up(nl, "lo", true, &err));
	netlink_close(nl);
	/* a fake upstream on 127.0.0.1:53 */
	int upstream = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in up = { .sin_family = AF_INET, .sin_port = htons(53), .sin_addr = ip("127.0.0.1") };
	CHECK_OK(bind(upstream, (struct sockaddr *)&up, sizeof(up)));
	char path[512];
	snprintf(path, sizeof(path), "%s/resolv.conf", unit_temp_dir());
	CHECK_OK(file_write_atomic(path, "nameserver 127.0.0.1\n", 21, 0644, &err));
	struct loop *loop;
	CHECK_OK(loop_new(&loop));
	struct dns_config config = { .address = ip("127.0.0.2"), .resolv_conf = path, .loop = loop };
	struct dns *dns;
	CHECK_OK(dns_new(&config, &dns, &err));
	CHECK_OK(dns_set_service(dns, "default", "web", ip("10.43.0.20"), NULL, 0, &err));

	struct sockaddr_in server = { .sin_family = AF_INET, .sin_port = htons(53), .sin_addr = ip("127.0.0.2") };
	int client = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	CHECK_OK(connect(client, (struct sockaddr *)&server, sizeof(server)));
	uint8_t q[512], r[1024];
	size_t n = make_query(q, "web.default.svc.cluster.local", 1);
	CHECK_INT(send(client, q, n, 0), ==, (ssize_t)n);
	CHECK(wait_readable(loop, client));
	CHECK_INT(recv(client, r, sizeof(r), 0), >, 12);
	CHECK_INT(answers(r), ==, 1);

	/* forwarded: the upstream sees another id, the client gets its own back */
	n = make_query(q, "example.org", 1);
	CHECK_INT(send(client, q, n, 0), ==, (ssize_t)n);
	CHECK(wait_readable(loop, upstream));
	struct sockaddr_in from;
	socklen_t fromlen = sizeof(from);
	ssize_t got = recvfrom(upstream, r, sizeof(r), 0, (struct sockaddr *)&from, &fromlen);
	CHECK_INT(got, ==, (ssize_t)n);
	CHECK(memcmp(r + 2, q + 2, n - 2) == 0);
	r[2] |= 0x80;
	r[3] = 0x83; /* NXDOMAIN from upstream */
	CHECK_INT(sendto(upstream, r, (size_t)got, 0, (struct sockaddr *)&from, fromlen), ==, got);
	CHECK(wait_readable(loop, client));
	CHECK_INT(recv(client, r, sizeof(r), 0), ==, (ssize_t)n);
	CHECK_INT(r[0], ==, 0x12);
	CHECK_INT(r[1], ==, 0x34);
	CHECK_INT(rcode(r), ==, 3);

	/* an upstream that never answers: SERVFAIL */
	CHECK_INT(send(client, q, n, 0), ==, (ssize_t)n);
	CHECK(wait_readable(loop, upstream));
	CHECK(recv(upstream, r, sizeof(r), 0) > 0);
	CHECK(wait_readable(loop, client));
	CHECK_INT(recv(client, r, sizeof(r), 0), ==, 12);
	CHECK_INT(rcode(r), ==, 2);

	/* TCP, two queries on one connection */
	int tcp = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	CHECK_OK(connect(tcp, (struct sockaddr *)&server, sizeof(server)));
	n = make_query(q + 2, "web.default.svc.cluster.local", 1);
	q[0] = 0;
	q[1] = (uint8_t)n;
	CHECK_INT(send(tcp, q, n + 2, 0), ==, (ssize_t)n + 2);
	CHECK_INT(send(tcp, q, n + 2, 0), ==, (ssize_t)n + 2);
	size_t have = 0;
	while (have < 2 * (n + 2 + 16)) {
		CHECK(wait_readable(loop, tcp));
		ssize_t k = recv(tcp, r + have, sizeof(r) - have, 0);
		CHECK(k > 0);
		have += (size_t)k;
	}
	CHECK_INT(r[0] << 8 | r[1], ==, (int)n + 16);
	CHECK_INT(answers(r + 2), ==, 1);
	close(tcp);
	close(client);
	close(upstream);
	dns_free(dns);
	loop_free(loop);
}
