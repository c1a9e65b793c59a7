/* rtnetlink from C: links (bridge, veth, dummy), addresses, routes, network namespaces;
 * and the message plumbing the nf_tables code (platform/nftables.c) shares.
 *
 * A `struct netlink` is one NETLINK_ROUTE socket. It is opened in a network namespace
 * (the caller's, or one given by fd: the thread enters it, opens the socket and returns),
 * and every request sent on it acts in that namespace for the socket's whole life: links
 * are named as the namespace knows them. Requests are synchronous (send, wait for the
 * kernel's acknowledgement); the agent makes them from its one thread between loop
 * iterations. Errors name the operation and the object ("add address 10.42.3.1/24 to
 * bramble0: File exists") and carry the kernel's extended message when it gives one.
 *
 * Nothing here shells out to `ip`. Messages are built by hand on the kernel's uapi headers:
 * libmnl would do the same few lines, but its Debian source is not on the mirror the
 * dependencies are built from (tools/deps), and nothing is copied in.
 */
#ifndef BRAMBLE_PLATFORM_NETLINK_H
#define BRAMBLE_PLATFORM_NETLINK_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct error;
struct netlink;

/* The route protocol Bramble marks its own routes with (rtm_protocol), so that a sync can
 * tell them from routes it did not make. Unassigned in /etc/iproute2/rt_protos. */
#define NETLINK_ROUTE_PROTOCOL_BRAMBLE 0x62

/* netns_fd < 0: the caller's namespace. */
int netlink_open(int netns_fd, struct netlink **ret_netlink, struct error *err);
/* A NETLINK_NETFILTER socket, for nf_tables batches (netlink_send_batch). */
int netlink_open_netfilter(int netns_fd, struct netlink **ret_netlink, struct error *err);
void netlink_close(struct netlink *netlink);

/* Enters the network namespace netns_fd on the calling thread; *ret_saved_fd keeps the one
 * to return to with netlink_netns_leave(), which closes it. */
int netlink_netns_enter(int netns_fd, int *ret_saved_fd, struct error *err);
int netlink_netns_leave(int saved_fd, struct error *err);

/* --- messages ---------------------------------------------------------------------------- */
/* A growable buffer of one or more netlink messages. Pointers returned by
 * netlink_message_reserve() are valid until the next call that appends. */
struct netlink_message {
	char *data;
	size_t length;
	size_t capacity;
	size_t header;  /* offset of the message being built */
	unsigned count; /* messages begun */
};

void netlink_message_begin(struct netlink_message *message, uint16_t type, uint16_t flags);
void *netlink_message_reserve(struct netlink_message *message, size_t size);
void netlink_put(struct netlink_message *message, uint16_t type, const void *data, size_t size);
void netlink_put_u32(struct netlink_message *message, uint16_t type, uint32_t value);
void netlink_put_be32(struct netlink_message *message, uint16_t type, uint32_t value);
void netlink_put_string(struct netlink_message *message, uint16_t type, const char *value);
size_t netlink_nest_begin(struct netlink_message *message, uint16_t type);
void netlink_nest_end(struct netlink_message *message, size_t nest);
void netlink_message_free(struct netlink_message *message);

/* Sends one request (the message built last) and waits for the kernel's answer; fn sees each
 * data message of the reply (nlh is a struct nlmsghdr). */
typedef int (*netlink_reply_fn)(const void *nlh, void *data);
int netlink_request(struct netlink *netlink, struct netlink_message *request, netlink_reply_fn fn, void *data,
                    struct error *err, const char *what);

/* Sends every message of an nf_tables batch (the caller frames it with
 * NFNL_MSG_BATCH_BEGIN/END) and collects the kernel's verdict: the whole batch is applied or
 * none of it. */
int netlink_send_batch(struct netlink *netlink, struct netlink_message *batch, struct error *err, const char *what);

/* --- links ------------------------------------------------------------------------------ */
struct netlink_link {
	int index;
	char name[16];
	char kind[16];  /* "bridge", "veth", "dummy", or "" */
	unsigned flags; /* IFF_UP, ... */
	unsigned mtu;
	int master; /* index of the bridge it is attached to, or 0 */
};

/* -ENODEV when there is no such link (and err says so). */
int netlink_link_get(struct netlink *netlink, const char *name, struct netlink_link *ret_link, struct error *err);
int netlink_link_list(struct netlink *netlink, struct netlink_link **ret_links, size_t *ret_count, struct error *err);

/* Create: -EEXIST when the name is taken. */
int netlink_bridge_add(struct netlink *netlink, const char *name, struct error *err);
int netlink_dummy_add(struct netlink *netlink, const char *name, struct error *err);
/* A veth pair: `name` here, `peer_name` in peer_netns_fd (or here when < 0). */
int netlink_veth_add(struct netlink *netlink, const char *name, const char *peer_name, int peer_netns_fd,
                     struct error *err);
/* -ENODEV when missing. */
int netlink_link_delete(struct netlink *netlink, const char *name, struct error *err);
int netlink_link_set_netns(struct netlink *netlink, const char *name, int netns_fd, struct error *err);
int netlink_link_rename(struct netlink *netlink, const char *name, const char *new_name, struct error *err);
int netlink_link_set_up(struct netlink *netlink, const char *name, bool up, struct error *err);
int netlink_link_set_mtu(struct netlink *netlink, const char *name, unsigned mtu, struct error *err);
/* master NULL: detach from any bridge. */
int netlink_link_set_master(struct netlink *netlink, const char *name, const char *master, struct error *err);
/* A bridge port's hairpin mode: frames may leave by the port they came in (a pod reaching
 * itself through its Service's address, with the bridge's traffic seen by netfilter). */
int netlink_bridge_port_set_hairpin(struct netlink *netlink, const char *name, bool on, struct error *err);

/* --- IPv4 addresses ----------------------------------------------------------------------- */
struct netlink_address {
	int index;
	struct in_addr address;
	uint8_t prefix_length;
};

/* Adding an address the link already has is not an error. */
int netlink_address_add(struct netlink *netlink, const char *name, struct in_addr address, uint8_t prefix_length,
                        struct error *err);
/* -EADDRNOTAVAIL when the link does not have it. */
int netlink_address_delete(struct netlink *netlink, const char *name, struct in_addr address, uint8_t prefix_length,
                           struct error *err);
/* name NULL: every link's. */
int netlink_address_list(struct netlink *netlink, const char *name, struct netlink_address **ret_addresses,
                         size_t *ret_count, struct error *err);

/* --- IPv4 routes (main table) ----------------------------------------------------------------- */
struct netlink_route {
	struct in_addr destination; /* 0.0.0.0/0 is the default route */
	uint8_t prefix_length;
	struct in_addr gateway; /* INADDR_ANY: none (a route to a directly attached network) */
	char device[16];        /* "" to let the kernel find it from the gateway */
	bool onlink;            /* the gateway is on the link even if no address says so */
	uint8_t protocol;       /* 0 means RTPROT_BOOT; NETLINK_ROUTE_PROTOCOL_BRAMBLE for ours */
};

/* add: -EEXIST when the destination has a route; replace: adds or overwrites. */
int netlink_route_add(struct netlink *netlink, const struct netlink_route *route, struct error *err);
int netlink_route_replace(struct netlink *netlink, const struct netlink_route *route, struct error *err);
/* -ESRCH when there is no such route. */
int netlink_route_delete(struct netlink *netlink, const struct netlink_route *route, struct error *err);
/* Unicast routes of the main table; protocol 0: every protocol. */
int netlink_route_list(struct netlink *netlink, uint8_t protocol, struct netlink_route **ret_routes, size_t *ret_count,
                       struct error *err);

/* --- sysctl ---------------------------------------------------------------------------------- */
/* Writes /proc/sys/<key, dots as slashes>. Network keys act in the caller's namespace at the
 * time of the call (enter another with netlink_netns_enter). */
int netlink_sysctl_write(const char *key, const char *value, struct error *err);
int netlink_sysctl_read(const char *key, char *buf, size_t size, struct error *err);
int netlink_enable_ipv4_forwarding(struct error *err);

/* --- IPv4 text --------------------------------------------------------------------------- */
/* "10.42.3.0/24": the network (host bits must be zero unless allow_host_bits). */
int netlink_parse_cidr(const char *text, bool allow_host_bits, struct in_addr *ret_address, uint8_t *ret_prefix,
                       struct error *err);
/* Does [a/alen] overlap [b/blen]? */
bool netlink_cidr_overlaps(struct in_addr a, uint8_t alen, struct in_addr b, uint8_t blen);
bool netlink_cidr_contains(struct in_addr network, uint8_t prefix, struct in_addr address);

#endif
