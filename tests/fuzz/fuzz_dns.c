/* libFuzzer target for the cluster DNS: any bytes as a query (UDP and TCP limits), against a
 * small service table. An answer must be well formed in size; nothing may crash, leak or
 * read out of bounds. Seeds: tests/fuzz/corpus/dns/. */
#include <arpa/inet.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "agent/dns.h"
#include "platform/error.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct dns *table(void)
{
	static struct dns *dns;
	if (dns)
		return dns;
	struct dns_config config = { .resolv_conf = "/nonexistent/resolv.conf" };
	if (dns_new(&config, &dns, NULL) < 0)
		abort();
	struct dns_port ports[] = { { "http", IPPROTO_TCP, 80 }, { "dns", IPPROTO_UDP, 53 } };
	struct in_addr ip = { htonl(0x0a2b0014) };
	dns_set_service(dns, "default", "web", ip, ports, 2, NULL);
	dns_set_service(dns, "kube-system", "dns", ip, ports + 1, 1, NULL);
	return dns;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t reply[DNS_MESSAGE_MAX];
	size_t length = 0;
	if (dns_answer(table(), data, size, reply, sizeof(reply), 512, &length) == DNS_REPLY &&
	    (length < 12 || length > 512))
		abort();
	if (dns_answer(table(), data, size, reply, sizeof(reply), sizeof(reply), &length) == DNS_REPLY &&
	    (length < 12 || length > sizeof(reply)))
		abort();
	return 0;
}
