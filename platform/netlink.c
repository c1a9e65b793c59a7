#include "platform/netlink.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if_link.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/veth.h>
#include <net/if.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "platform/error.h"
#include "platform/file.h"
#include "platform/memory.h"

/* Requests are small (a few attributes); replies to dumps come in batches up to this. */
#define REPLY_SIZE 32768
/* Bounds on what a dump may return, so a hostile or huge table cannot exhaust memory. */
#define DUMP_MAX_ENTRIES 65536

typedef int (*reply_fn)(const struct nlmsghdr *message, void *data);

struct netlink {
	int fd;
	unsigned port;
	unsigned sequence;
};

/* --- messages ------------------------------------------------------------------------- */

static void reserve_bytes(struct netlink_message *message, size_t size)
{
	size_t need = message->length + NLMSG_ALIGN(size);
	if (need > message->capacity) {
		size_t capacity = message->capacity ? message->capacity : 1024;
		while (capacity < need)
			capacity *= 2;
		message->data = xrealloc(message->data, capacity);
		message->capacity = capacity;
	}
}

static struct nlmsghdr *current_header(struct netlink_message *message)
{
	return (struct nlmsghdr *)(message->data + message->header);
}

static void *append(struct netlink_message *message, size_t size)
{
	reserve_bytes(message, size);
	void *p = message->data + message->length;
	memset(p, 0, NLMSG_ALIGN(size));
	message->length += NLMSG_ALIGN(size);
	current_header(message)->nlmsg_len = (uint32_t)(message->length - message->header);
	return p;
}

void netlink_message_begin(struct netlink_message *message, uint16_t type, uint16_t flags)
{
	reserve_bytes(message, NLMSG_HDRLEN);
	message->header = message->length;
	struct nlmsghdr *header = (struct nlmsghdr *)(message->data + message->length);
	memset(header, 0, NLMSG_HDRLEN);
	message->length += NLMSG_HDRLEN;
	header->nlmsg_len = NLMSG_HDRLEN;
	header->nlmsg_type = type;
	header->nlmsg_flags = flags;
	message->count++;
}

void *netlink_message_reserve(struct netlink_message *message, size_t size)
{
	return append(message, size);
}

void netlink_put(struct netlink_message *message, uint16_t type, const void *data, size_t size)
{
	struct nlattr *attr = append(message, NLA_HDRLEN + size);
	attr->nla_type = type;
	attr->nla_len = (uint16_t)(NLA_HDRLEN + size);
	if (size)
		memcpy((char *)attr + NLA_HDRLEN, data, size);
}

void netlink_put_u32(struct netlink_message *message, uint16_t type, uint32_t value)
{
	netlink_put(message, type, &value, sizeof(value));
}

void netlink_put_be32(struct netlink_message *message, uint16_t type, uint32_t value)
{
	value = htonl(value);
	netlink_put(message, type, &value, sizeof(value));
}

void netlink_put_string(struct netlink_message *message, uint16_t type, const char *value)
{
	netlink_put(message, type, value, strlen(value) + 1);
}

size_t netlink_nest_begin(struct netlink_message *message, uint16_t type)
{
	size_t offset = message->length;
	struct nlattr *attr = append(message, NLA_HDRLEN);
	attr->nla_type = type | NLA_F_NESTED;
	return offset;
}

void netlink_nest_end(struct netlink_message *message, size_t nest)
{
	struct nlattr *attr = (struct nlattr *)(message->data + nest);
	attr->nla_len = (uint16_t)(message->length - nest);
}

void netlink_message_free(struct netlink_message *message)
{
	free(message->data);
	memset(message, 0, sizeof(*message));
}

/* Attributes of a received message: fn(type, payload, size, data) for each well-formed one. */
typedef void (*attribute_fn)(uint16_t type, const void *payload, size_t size, void *data);

static void parse_attributes(const void *start, size_t size, attribute_fn fn, void *data)
{
	const char *p = start;
	while (size >= NLA_HDRLEN) {
		const struct nlattr *attr = (const struct nlattr *)p;
		if (attr->nla_len < NLA_HDRLEN || attr->nla_len > size)
			return;
		fn(attr->nla_type & NLA_TYPE_MASK, p + NLA_HDRLEN, attr->nla_len - NLA_HDRLEN, data);
		size_t step = NLA_ALIGN(attr->nla_len);
		if (step >= size)
			return;
		p += step;
		size -= step;
	}
}

/* The attributes after a message's fixed header of `fixed` bytes. */
static void parse_message_attributes(const struct nlmsghdr *message, size_t fixed, attribute_fn fn, void *data)
{
	size_t offset = NLMSG_HDRLEN + NLMSG_ALIGN(fixed);
	if (message->nlmsg_len > offset)
		parse_attributes((const char *)message + offset, message->nlmsg_len - offset, fn, data);
}

static size_t payload_length(const struct nlmsghdr *message)
{
	return message->nlmsg_len - NLMSG_HDRLEN;
}

static const void *payload(const struct nlmsghdr *message)
{
	return (const char *)message + NLMSG_HDRLEN;
}

static bool string_payload(const void *payload, size_t size)
{
	return size > 0 && memchr(payload, '\0', size) != NULL;
}

static uint32_t u32_payload(const void *payload)
{
	uint32_t value;
	memcpy(&value, payload, sizeof(value));
	return value;
}

/* --- sockets ----------------------------------------------------------------------------- */

int netlink_netns_enter(int netns_fd, int *ret_saved_fd, struct error *err)
{
	int saved = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
	if (saved < 0)
		return error_set_errno(err, errno, "open /proc/thread-self/ns/net");
	if (setns(netns_fd, CLONE_NEWNET) < 0) {
		int e = errno;
		close(saved);
		return error_set_errno(err, e, "enter network namespace (fd %d)", netns_fd);
	}
	*ret_saved_fd = saved;
	return 0;
}

int netlink_netns_leave(int saved_fd, struct error *err)
{
	int r = 0;
	if (setns(saved_fd, CLONE_NEWNET) < 0)
		r = error_set_errno(err, errno, "return to the original network namespace");
	close(saved_fd);
	return r;
}

static int open_socket(int protocol, const char *name, int netns_fd, struct netlink **ret_netlink, struct error *err)
{
	int saved = -1, r;
	if (netns_fd >= 0) {
		r = netlink_netns_enter(netns_fd, &saved, err);
		if (r < 0)
			return r;
	}
	cleanup_close int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, protocol);
	int e = errno;
	if (saved >= 0) {
		r = netlink_netns_leave(saved, err);
		if (r < 0)
			return r;
	}
	if (fd < 0)
		return error_set_errno(err, e, "open a %s socket", name);
	struct sockaddr_nl address = { .nl_family = AF_NETLINK };
	if (bind(fd, (struct sockaddr *)&address, sizeof(address)) < 0)
		return error_set_errno(err, errno, "bind a %s socket", name);
	socklen_t length = sizeof(address);
	if (getsockname(fd, (struct sockaddr *)&address, &length) < 0)
		return error_set_errno(err, errno, "getsockname of a %s socket", name);
	int one = 1;
	/* The kernel's own words on a refused request, without the request echoed back. */
	setsockopt(fd, SOL_NETLINK, NETLINK_EXT_ACK, &one, sizeof(one));
	setsockopt(fd, SOL_NETLINK, NETLINK_CAP_ACK, &one, sizeof(one));
	struct netlink *netlink = xcalloc(1, sizeof(*netlink));
	netlink->fd = steal_fd(&fd);
	netlink->port = address.nl_pid;
	netlink->sequence = (unsigned)getpid() << 12;
	*ret_netlink = netlink;
	return 0;
}

int netlink_open(int netns_fd, struct netlink **ret_netlink, struct error *err)
{
	return open_socket(NETLINK_ROUTE, "NETLINK_ROUTE", netns_fd, ret_netlink, err);
}

int netlink_open_netfilter(int netns_fd, struct netlink **ret_netlink, struct error *err)
{
	return open_socket(NETLINK_NETFILTER, "NETLINK_NETFILTER (nf_tables)", netns_fd, ret_netlink, err);
}

void netlink_close(struct netlink *netlink)
{
	if (!netlink)
		return;
	close(netlink->fd);
	free(netlink);
}

static void ack_attribute(uint16_t type, const void *data, size_t size, void *ctx)
{
	if (type == NLMSGERR_ATTR_MSG && string_payload(data, size))
		*(const char **)ctx = data;
}

/* The error an NLMSG_ERROR carries (0 for an acknowledgement), with its text. */
static int error_message(const struct nlmsghdr *message, struct error *err, const char *what)
{
	if (message->nlmsg_len < NLMSG_HDRLEN + sizeof(struct nlmsgerr))
		return error_set(err, EBADMSG, "%s: short error message from the kernel", what);
	const struct nlmsgerr *e = payload(message);
	if (e->error == 0)
		return 0;
	const char *text = NULL;
	if (message->nlmsg_flags & NLM_F_ACK_TLVS) {
		size_t offset = NLMSG_HDRLEN + sizeof(*e);
		if (!(message->nlmsg_flags & NLM_F_CAPPED))
			offset += e->msg.nlmsg_len - NLMSG_HDRLEN;
		if (offset < message->nlmsg_len)
			parse_attributes((const char *)message + offset, message->nlmsg_len - offset, ack_attribute,
			                 &text);
	}
	int code = e->error < 0 ? -e->error : e->error;
	if (text && text[0])
		return error_set(err, code, "%s: %s (%s)", what, strerror(code), text);
	return error_set(err, code, "%s: %s", what, strerror(code));
}

static int send_all(struct netlink *netlink, struct netlink_message *message, struct error *err, const char *what)
{
	struct sockaddr_nl kernel = { .nl_family = AF_NETLINK };
	for (;;) {
		ssize_t n = sendto(netlink->fd, message->data, message->length, 0, (struct sockaddr *)&kernel,
		                   sizeof(kernel));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return error_set_errno(err, errno, "%s: send to the kernel", what);
		if ((size_t)n != message->length)
			return error_set(err, EIO, "%s: short send to the kernel", what);
		return 0;
	}
}

static ssize_t receive(struct netlink *netlink, char *buffer, size_t size, int flags)
{
	for (;;) {
		struct iovec iov = { buffer, size };
		struct sockaddr_nl from;
		struct msghdr msg = {
			.msg_name = &from, .msg_namelen = sizeof(from), .msg_iov = &iov, .msg_iovlen = 1
		};
		ssize_t n = recvmsg(netlink->fd, &msg, flags);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (msg.msg_flags & MSG_TRUNC)
			return -EMSGSIZE;
		if (from.nl_pid != 0)
			continue; /* not from the kernel */
		return n;
	}
}

/* Sends one request and reads until its acknowledgement (or NLMSG_DONE for a dump), handing
 * every data message to fn. `what` names the operation for the error message. */
static int transact(struct netlink *netlink, struct netlink_message *request, reply_fn fn, void *data,
                    struct error *err, const char *fmt, ...) __attribute__((format(printf, 6, 7)));
static int transact(struct netlink *netlink, struct netlink_message *request, reply_fn fn, void *data,
                    struct error *err, const char *fmt, ...)
{
	char what[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);

	struct nlmsghdr *header = (struct nlmsghdr *)request->data;
	bool dump = (header->nlmsg_flags & NLM_F_DUMP) == NLM_F_DUMP;
	header->nlmsg_flags |= NLM_F_REQUEST | (dump ? 0 : NLM_F_ACK);
	header->nlmsg_seq = ++netlink->sequence;
	uint32_t sequence = header->nlmsg_seq;
	int r = send_all(netlink, request, err, what);
	if (r < 0)
		return r;

	cleanup_free char *buffer = xmalloc(REPLY_SIZE);
	int result = 0;
	for (;;) {
		ssize_t n = receive(netlink, buffer, REPLY_SIZE, 0);
		if (n < 0)
			return error_set(err, (int)-n, "%s: receive from the kernel: %s", what, strerror((int)-n));
		const struct nlmsghdr *message = (const struct nlmsghdr *)buffer;
		size_t length = (size_t)n;
		for (; length >= NLMSG_HDRLEN && message->nlmsg_len >= NLMSG_HDRLEN && message->nlmsg_len <= length;) {
			if (message->nlmsg_seq == sequence && message->nlmsg_pid == netlink->port) {
				if (message->nlmsg_type == NLMSG_DONE)
					return result;
				if (message->nlmsg_type == NLMSG_ERROR) {
					int e = error_message(message, result < 0 ? NULL : err, what);
					return result < 0 ? result : e;
				}
				if (fn && result == 0) {
					int rr = fn(message, data);
					if (rr < 0)
						result = error_set(err, -rr, "%s: %s", what,
						                   rr == -E2BIG ? "too many entries"
						                                : "malformed reply");
				}
			}
			size_t step = NLMSG_ALIGN(message->nlmsg_len);
			if (step >= length)
				break;
			length -= step;
			message = (const struct nlmsghdr *)((const char *)message + step);
		}
	}
}

struct public_reply {
	netlink_reply_fn fn;
	void *data;
};

static int call_public_reply(const struct nlmsghdr *message, void *data)
{
	struct public_reply *reply = data;
	return reply->fn(message, reply->data);
}

int netlink_request(struct netlink *netlink, struct netlink_message *request, netlink_reply_fn fn, void *data,
                    struct error *err, const char *what)
{
	struct public_reply reply = { fn, data };
	return transact(netlink, request, fn ? call_public_reply : NULL, &reply, err, "%s", what);
}

int netlink_send_batch(struct netlink *netlink, struct netlink_message *batch, struct error *err, const char *what)
{
	/* Number the messages; the last one before BATCH_END asks for an acknowledgement. */
	uint32_t first = netlink->sequence + 1;
	struct nlmsghdr *last = NULL;
	size_t offset = 0;
	while (offset + NLMSG_HDRLEN <= batch->length) {
		struct nlmsghdr *header = (struct nlmsghdr *)(batch->data + offset);
		header->nlmsg_flags |= NLM_F_REQUEST;
		header->nlmsg_seq = ++netlink->sequence;
		if (header->nlmsg_type != NFNL_MSG_BATCH_BEGIN && header->nlmsg_type != NFNL_MSG_BATCH_END)
			last = header;
		offset += NLMSG_ALIGN(header->nlmsg_len);
	}
	if (!last)
		return 0;
	last->nlmsg_flags |= NLM_F_ACK;
	uint32_t acked = last->nlmsg_seq;
	int r = send_all(netlink, batch, err, what);
	if (r < 0)
		return r;
	/* The kernel has processed the batch by the time sendto returns: its answers are queued. */
	cleanup_free char *buffer = xmalloc(REPLY_SIZE);
	bool done = false;
	int result = 0;
	for (;;) {
		ssize_t n = receive(netlink, buffer, REPLY_SIZE, MSG_DONTWAIT);
		if (n == -EAGAIN || n == -EWOULDBLOCK)
			break;
		if (n < 0)
			return error_set(err, (int)-n, "%s: receive from the kernel: %s", what, strerror((int)-n));
		const struct nlmsghdr *message = (const struct nlmsghdr *)buffer;
		size_t length = (size_t)n;
		for (; length >= NLMSG_HDRLEN && message->nlmsg_len >= NLMSG_HDRLEN && message->nlmsg_len <= length;) {
			if (message->nlmsg_type == NLMSG_ERROR && message->nlmsg_seq >= first &&
			    message->nlmsg_seq <= netlink->sequence) {
				int e = error_message(message, result < 0 ? NULL : err, what);
				if (e < 0 && result == 0)
					result = e;
				if (e == 0 && message->nlmsg_seq == acked)
					done = true;
			}
			size_t step = NLMSG_ALIGN(message->nlmsg_len);
			if (step >= length)
				break;
			length -= step;
			message = (const struct nlmsghdr *)((const char *)message + step);
		}
	}
	if (result < 0)
		return result;
	if (!done)
		return error_set(err, EPROTO, "%s: the kernel did not acknowledge the batch", what);
	return 0;
}

static int check_name(const char *name, struct error *err)
{
	if (!name || !name[0] || strlen(name) >= IFNAMSIZ || strchr(name, '/') || strchr(name, ' '))
		return error_set(err, EINVAL,
		                 "'%s' is not a valid interface name (1 to %d characters, no '/' or space)",
		                 name ? name : "", IFNAMSIZ - 1);
	return 0;
}

/* --- links ------------------------------------------------------------------------------ */

#define cleanup_message __attribute__((cleanup(netlink_message_free)))

static void link_info_attribute(uint16_t type, const void *data, size_t size, void *ctx)
{
	struct netlink_link *link = ctx;
	if (type == IFLA_INFO_KIND)
		snprintf(link->kind, sizeof(link->kind), "%.*s", (int)strnlen(data, size), (const char *)data);
}

static void link_attribute(uint16_t type, const void *data, size_t size, void *ctx)
{
	struct netlink_link *link = ctx;
	switch (type) {
	case IFLA_IFNAME:
		if (string_payload(data, size))
			snprintf(link->name, sizeof(link->name), "%s", (const char *)data);
		break;
	case IFLA_MTU:
		if (size == 4)
			link->mtu = u32_payload(data);
		break;
	case IFLA_MASTER:
		if (size == 4)
			link->master = (int)u32_payload(data);
		break;
	case IFLA_LINKINFO:
		parse_attributes(data, size, link_info_attribute, link);
		break;
	}
}

static int parse_link(const struct nlmsghdr *message, struct netlink_link *link)
{
	if (message->nlmsg_type != RTM_NEWLINK || payload_length(message) < sizeof(struct ifinfomsg))
		return -EBADMSG;
	const struct ifinfomsg *info = payload(message);
	memset(link, 0, sizeof(*link));
	link->index = info->ifi_index;
	link->flags = info->ifi_flags;
	parse_message_attributes(message, sizeof(*info), link_attribute, link);
	return 0;
}

static int one_link(const struct nlmsghdr *message, void *data)
{
	return parse_link(message, data);
}

/* An RTM_*LINK request; addressed to a link by name when name is given. */
static struct ifinfomsg *link_request(struct netlink_message *request, uint16_t type, uint16_t flags, const char *name)
{
	netlink_message_begin(request, type, flags);
	struct ifinfomsg *info = netlink_message_reserve(request, sizeof(*info));
	info->ifi_family = AF_UNSPEC;
	if (name)
		netlink_put_string(request, IFLA_IFNAME, name);
	return info;
}

int netlink_link_get(struct netlink *netlink, const char *name, struct netlink_link *ret_link, struct error *err)
{
	int r = check_name(name, err);
	if (r < 0)
		return r;
	cleanup_message struct netlink_message request = { 0 };
	link_request(&request, RTM_GETLINK, 0, name);
	netlink_put_u32(&request, IFLA_EXT_MASK, RTEXT_FILTER_SKIP_STATS);
	struct netlink_link link = { 0 };
	r = transact(netlink, &request, one_link, &link, err, "look up link %s", name);
	if (r < 0)
		return r;
	if (link.index == 0)
		return error_set(err, ENODEV, "look up link %s: no answer from the kernel", name);
	if (ret_link)
		*ret_link = link;
	return 0;
}

static int link_index(struct netlink *netlink, const char *name, int *ret_index, struct error *err)
{
	struct netlink_link link;
	int r = netlink_link_get(netlink, name, &link, err);
	if (r < 0)
		return r;
	*ret_index = link.index;
	return 0;
}

struct link_list {
	struct netlink_link *links;
	size_t count;
};

static int list_link(const struct nlmsghdr *message, void *data)
{
	struct link_list *list = data;
	if (list->count >= DUMP_MAX_ENTRIES)
		return -E2BIG;
	list->links = xrealloc(list->links, (list->count + 1) * sizeof(*list->links));
	int r = parse_link(message, &list->links[list->count]);
	if (r < 0)
		return r;
	list->count++;
	return 0;
}

int netlink_link_list(struct netlink *netlink, struct netlink_link **ret_links, size_t *ret_count, struct error *err)
{
	cleanup_message struct netlink_message request = { 0 };
	link_request(&request, RTM_GETLINK, NLM_F_DUMP, NULL);
	netlink_put_u32(&request, IFLA_EXT_MASK, RTEXT_FILTER_SKIP_STATS);
	struct link_list list = { NULL, 0 };
	int r = transact(netlink, &request, list_link, &list, err, "list links");
	if (r < 0) {
		free(list.links);
		return r;
	}
	*ret_links = list.links;
	*ret_count = list.count;
	return 0;
}

static int link_create(struct netlink *netlink, const char *name, const char *kind, struct error *err)
{
	int r = check_name(name, err);
	if (r < 0)
		return r;
	cleanup_message struct netlink_message request = { 0 };
	link_request(&request, RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, name);
	size_t linkinfo = netlink_nest_begin(&request, IFLA_LINKINFO);
	netlink_put_string(&request, IFLA_INFO_KIND, kind);
	netlink_nest_end(&request, linkinfo);
	return transact(netlink, &request, NULL, NULL, err, "create %s %s", kind, name);
}

int netlink_bridge_add(struct netlink *netlink, const char *name, struct error *err)
{
	return link_create(netlink, name, "bridge", err);
}

int netlink_dummy_add(struct netlink *netlink, const char *name, struct error *err)
{
	return link_create(netlink, name, "dummy", err);
}

int netlink_veth_add(struct netlink *netlink, const char *name, const char *peer_name, int peer_netns_fd,
                     struct error *err)
{
	int r = check_name(name, err);
	if (r < 0)
		return r;
	r = check_name(peer_name, err);
	if (r < 0)
		return r;
	cleanup_message struct netlink_message request = { 0 };
	link_request(&request, RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, name);
	size_t linkinfo = netlink_nest_begin(&request, IFLA_LINKINFO);
	netlink_put_string(&request, IFLA_INFO_KIND, "veth");
	size_t infodata = netlink_nest_begin(&request, IFLA_INFO_DATA);
	size_t peer = netlink_nest_begin(&request, VETH_INFO_PEER);
	struct ifinfomsg *peer_info = netlink_message_reserve(&request, sizeof(*peer_info));
	peer_info->ifi_family = AF_UNSPEC;
	netlink_put_string(&request, IFLA_IFNAME, peer_name);
	if (peer_netns_fd >= 0)
		netlink_put_u32(&request, IFLA_NET_NS_FD, (uint32_t)peer_netns_fd);
	netlink_nest_end(&request, peer);
	netlink_nest_end(&request, infodata);
	netlink_nest_end(&request, linkinfo);
	return transact(netlink, &request, NULL, NULL, err, "create veth pair %s/%s", name, peer_name);
}

int netlink_link_delete(struct netlink *netlink, const char *name, struct error *err)
{
	int r = check_name(name, err);
	if (r < 0)
		return r;
	cleanup_message struct netlink_message request = { 0 };
	link_request(&request, RTM_DELLINK, 0, name);
	return transact(netlink, &request, NULL, NULL, err, "delete link %s", name);
}

int netlink_link_set_netns(struct netlink *netlink, const char *name, int netns_fd, struct error *err)
{
	int r = check_name(name, err);
	if (r < 0)
		return r;
	cleanup_message struct netlink_message request = { 0 };
	link_request(&request, RTM_NEWLINK, 0, name);
	netlink_put_u32(&request, IFLA_NET_NS_FD, (uint32_t)netns_fd);
	return transact(netlink, &request, NULL, NULL, err, "move link %s to network namespace (fd %d)", name,
	                netns_fd);
}

int netlink_link_rename(struct netlink *netlink, const char *name, const char *new_name, struct error *err)
{
	int index;
	int r = check_name(new_name, err);
	if (r < 0)
		return r;
	r = link_index(netlink, name, &index, err);
	if (r < 0)
		return r;
	cleanup_message struct netlink_message request = { 0 };
	struct ifinfomsg *info = link_request(&request, RTM_NEWLINK, 0, NULL);
	info->ifi_index = index;
	netlink_put_string(&request, IFLA_IFNAME, new_name);
	return transact(netlink, &request, NULL, NULL, err, "rename link %s to %s", name, new_name);
}

int netlink_link_set_up(struct netlink *netlink, const char *name, bool up, struct error *err)
{
	int r = check_name(name, err);
	if (r < 0)
		return r;
	cleanup_message struct netlink_message request = { 0 };
	netlink_message_begin(&request, RTM_NEWLINK, 0);
	struct ifinfomsg *info = netlink_message_reserve(&request, sizeof(*info));
	info->ifi_family = AF_UNSPEC;
	info->ifi_change = IFF_UP;
	info->ifi_flags = up ? IFF_UP : 0;
	netlink_put_string(&request, IFLA_IFNAME, name);
	return transact(netlink, &request, NULL, NULL, err, "set link %s %s", name, up ? "up" : "down");
}

int netlink_link_set_mtu(struct netlink *netlink, const char *name, unsigned mtu, struct error *err)
{
	int r = check_name(name, err);
	if (r < 0)
		return r;
	if (mtu < 68 || mtu > 65535)
		return error_set(err, EINVAL, "set MTU of %s: %u is outside 68..65535", name, mtu);
	cleanup_message struct netlink_message request = { 0 };
	link_request(&request, RTM_NEWLINK, 0, name);
	netlink_put_u32(&request, IFLA_MTU, mtu);
	return transact(netlink, &request, NULL, NULL, err, "set MTU of %s to %u", name, mtu);
}

int netlink_link_set_master(struct netlink *netlink, const char *name, const char *master, struct error *err)
{
	int r = check_name(name, err);
	if (r < 0)
		return r;
	int master_index = 0;
	if (master) {
		r = link_index(netlink, master, &master_index, err);
		if (r < 0)
			return r;
	}
	cleanup_message struct netlink_message request = { 0 };
	link_request(&request, RTM_NEWLINK, 0, name);
	netlink_put_u32(&request, IFLA_MASTER, (uint32_t)master_index);
	if (master)
		return transact(netlink, &request, NULL, NULL, err, "attach %s to %s", name, master);
	return transact(netlink, &request, NULL, NULL, err, "detach %s from its bridge", name);
}

int netlink_bridge_port_set_hairpin(struct netlink *netlink, const char *name, bool on, struct error *err)
{
	int index;
	int r = link_index(netlink, name, &index, err);
	if (r < 0)
		return r;
	cleanup_message struct netlink_message request = { 0 };
	struct ifinfomsg *info = link_request(&request, RTM_SETLINK, 0, NULL);
	info->ifi_family = AF_BRIDGE;
	info->ifi_index = index;
	size_t nest = netlink_nest_begin(&request, IFLA_PROTINFO);
	uint8_t mode = on ? 1 : 0;
	netlink_put(&request, IFLA_BRPORT_MODE, &mode, sizeof(mode));
	netlink_nest_end(&request, nest);
	return transact(netlink, &request, NULL, NULL, err, "set hairpin mode of bridge port %s", name);
}

/* --- addresses -------------------------------------------------------------------------- */

static int address_request(struct netlink *netlink, uint16_t type, uint16_t flags, const char *name,
                           struct in_addr address, uint8_t prefix_length, struct error *err)
{
	if (prefix_length > 32)
		return error_set(err, EINVAL, "prefix length /%u is longer than 32", prefix_length);
	int index;
	int r = link_index(netlink, name, &index, err);
	if (r < 0)
		return r;
	cleanup_message struct netlink_message request = { 0 };
	netlink_message_begin(&request, type, flags);
	struct ifaddrmsg *ifa = netlink_message_reserve(&request, sizeof(*ifa));
	ifa->ifa_family = AF_INET;
	ifa->ifa_prefixlen = prefix_length;
	ifa->ifa_index = (unsigned)index;
	ifa->ifa_scope = RT_SCOPE_UNIVERSE;
	netlink_put(&request, IFA_LOCAL, &address, sizeof(address));
	netlink_put(&request, IFA_ADDRESS, &address, sizeof(address));
	if (type == RTM_NEWADDR && prefix_length < 31) {
		struct in_addr broadcast = { address.s_addr | htonl(0xffffffffu >> prefix_length) };
		if (prefix_length == 0)
			broadcast.s_addr = 0xffffffffu;
		netlink_put(&request, IFA_BROADCAST, &broadcast, sizeof(broadcast));
	}
	char text[INET_ADDRSTRLEN];
	inet_ntop(AF_INET, &address, text, sizeof(text));
	if (type == RTM_NEWADDR)
		return transact(netlink, &request, NULL, NULL, err, "add address %s/%u to %s", text, prefix_length,
		                name);
	return transact(netlink, &request, NULL, NULL, err, "delete address %s/%u from %s", text, prefix_length, name);
}

int netlink_address_add(struct netlink *netlink, const char *name, struct in_addr address, uint8_t prefix_length,
                        struct error *err)
{
	return address_request(netlink, RTM_NEWADDR, NLM_F_CREATE | NLM_F_REPLACE, name, address, prefix_length, err);
}

int netlink_address_delete(struct netlink *netlink, const char *name, struct in_addr address, uint8_t prefix_length,
                           struct error *err)
{
	return address_request(netlink, RTM_DELADDR, 0, name, address, prefix_length, err);
}

struct address_list {
	int index; /* 0: all */
	struct netlink_address *addresses;
	size_t count;
};

static void address_attribute(uint16_t type, const void *data, size_t size, void *ctx)
{
	struct netlink_address *address = ctx;
	if (type == IFA_LOCAL && size == sizeof(struct in_addr))
		memcpy(&address->address, data, sizeof(struct in_addr));
}

static int list_address(const struct nlmsghdr *message, void *data)
{
	struct address_list *list = data;
	if (message->nlmsg_type != RTM_NEWADDR || payload_length(message) < sizeof(struct ifaddrmsg))
		return -EBADMSG;
	const struct ifaddrmsg *ifa = payload(message);
	if (ifa->ifa_family != AF_INET || (list->index && (int)ifa->ifa_index != list->index))
		return 0;
	if (list->count >= DUMP_MAX_ENTRIES)
		return -E2BIG;
	struct netlink_address address = { .index = (int)ifa->ifa_index, .prefix_length = ifa->ifa_prefixlen };
	parse_message_attributes(message, sizeof(*ifa), address_attribute, &address);
	list->addresses = xrealloc(list->addresses, (list->count + 1) * sizeof(*list->addresses));
	list->addresses[list->count++] = address;
	return 0;
}

int netlink_address_list(struct netlink *netlink, const char *name, struct netlink_address **ret_addresses,
                         size_t *ret_count, struct error *err)
{
	struct address_list list = { 0, NULL, 0 };
	if (name) {
		int r = link_index(netlink, name, &list.index, err);
		if (r < 0)
			return r;
	}
	cleanup_message struct netlink_message request = { 0 };
	netlink_message_begin(&request, RTM_GETADDR, NLM_F_DUMP);
	struct ifaddrmsg *ifa = netlink_message_reserve(&request, sizeof(*ifa));
	ifa->ifa_family = AF_INET;
	int r = transact(netlink, &request, list_address, &list, err, "list addresses");
	if (r < 0) {
		free(list.addresses);
		return r;
	}
	*ret_addresses = list.addresses;
	*ret_count = list.count;
	return 0;
}

/* --- routes ----------------------------------------------------------------------------- */

static int route_request(struct netlink *netlink, uint16_t type, uint16_t flags, const struct netlink_route *route,
                         struct error *err, const char *verb)
{
	char destination[INET_ADDRSTRLEN], gateway[INET_ADDRSTRLEN];
	inet_ntop(AF_INET, &route->destination, destination, sizeof(destination));
	inet_ntop(AF_INET, &route->gateway, gateway, sizeof(gateway));
	if (route->prefix_length > 32)
		return error_set(err, EINVAL, "%s route %s/%u: prefix length longer than 32", verb, destination,
		                 route->prefix_length);
	int index = 0;
	if (route->device[0]) {
		int r = link_index(netlink, route->device, &index, err);
		if (r < 0)
			return error_prefix(err, "%s route %s/%u", verb, destination, route->prefix_length);
	} else if (route->onlink) {
		return error_set(err, EINVAL, "%s route %s/%u: onlink needs a device", verb, destination,
		                 route->prefix_length);
	}
	bool has_gateway = route->gateway.s_addr != INADDR_ANY;
	if (!has_gateway && !index && type == RTM_NEWROUTE)
		return error_set(err, EINVAL, "%s route %s/%u: needs a gateway or a device", verb, destination,
		                 route->prefix_length);

	cleanup_message struct netlink_message request = { 0 };
	netlink_message_begin(&request, type, flags);
	struct rtmsg *rtm = netlink_message_reserve(&request, sizeof(*rtm));
	rtm->rtm_family = AF_INET;
	rtm->rtm_dst_len = route->prefix_length;
	rtm->rtm_table = RT_TABLE_MAIN;
	if (type == RTM_NEWROUTE) {
		rtm->rtm_protocol = route->protocol ? route->protocol : RTPROT_BOOT;
		rtm->rtm_scope = has_gateway ? RT_SCOPE_UNIVERSE : RT_SCOPE_LINK;
		rtm->rtm_type = RTN_UNICAST;
	} else {
		rtm->rtm_protocol = route->protocol; /* 0 matches any */
		rtm->rtm_scope = RT_SCOPE_NOWHERE;
	}
	if (route->onlink)
		rtm->rtm_flags |= RTNH_F_ONLINK;
	if (route->prefix_length)
		netlink_put(&request, RTA_DST, &route->destination, sizeof(route->destination));
	if (has_gateway)
		netlink_put(&request, RTA_GATEWAY, &route->gateway, sizeof(route->gateway));
	if (index)
		netlink_put_u32(&request, RTA_OIF, (uint32_t)index);
	return transact(netlink, &request, NULL, NULL, err, "%s route %s/%u%s%s%s%s", verb, destination,
	                route->prefix_length, has_gateway ? " via " : "", has_gateway ? gateway : "",
	                index ? " dev " : "", route->device);
}

int netlink_route_add(struct netlink *netlink, const struct netlink_route *route, struct error *err)
{
	return route_request(netlink, RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL, route, err, "add");
}

int netlink_route_replace(struct netlink *netlink, const struct netlink_route *route, struct error *err)
{
	return route_request(netlink, RTM_NEWROUTE, NLM_F_CREATE | NLM_F_REPLACE, route, err, "replace");
}

int netlink_route_delete(struct netlink *netlink, const struct netlink_route *route, struct error *err)
{
	return route_request(netlink, RTM_DELROUTE, 0, route, err, "delete");
}

struct route_entry {
	struct netlink_route route;
	int index;
	uint32_t table;
};

struct route_list {
	uint8_t protocol;
	struct route_entry *entries;
	size_t count;
};

static void route_attribute(uint16_t type, const void *data, size_t size, void *ctx)
{
	struct route_entry *entry = ctx;
	switch (type) {
	case RTA_DST:
		if (size == sizeof(struct in_addr))
			memcpy(&entry->route.destination, data, sizeof(struct in_addr));
		break;
	case RTA_GATEWAY:
		if (size == sizeof(struct in_addr))
			memcpy(&entry->route.gateway, data, sizeof(struct in_addr));
		break;
	case RTA_OIF:
		if (size == 4)
			entry->index = (int)u32_payload(data);
		break;
	case RTA_TABLE:
		if (size == 4)
			entry->table = u32_payload(data);
		break;
	}
}

static int list_route(const struct nlmsghdr *message, void *data)
{
	struct route_list *list = data;
	if (message->nlmsg_type != RTM_NEWROUTE || payload_length(message) < sizeof(struct rtmsg))
		return -EBADMSG;
	const struct rtmsg *rtm = payload(message);
	if (rtm->rtm_family != AF_INET || rtm->rtm_type != RTN_UNICAST)
		return 0;
	if (list->protocol && rtm->rtm_protocol != list->protocol)
		return 0;
	struct route_entry entry = { .table = rtm->rtm_table };
	entry.route.prefix_length = rtm->rtm_dst_len;
	entry.route.protocol = rtm->rtm_protocol;
	entry.route.onlink = (rtm->rtm_flags & RTNH_F_ONLINK) != 0;
	parse_message_attributes(message, sizeof(*rtm), route_attribute, &entry);
	if (entry.table != RT_TABLE_MAIN)
		return 0;
	if (list->count >= DUMP_MAX_ENTRIES)
		return -E2BIG;
	list->entries = xrealloc(list->entries, (list->count + 1) * sizeof(*list->entries));
	list->entries[list->count++] = entry;
	return 0;
}

int netlink_route_list(struct netlink *netlink, uint8_t protocol, struct netlink_route **ret_routes, size_t *ret_count,
                       struct error *err)
{
	cleanup_message struct netlink_message request = { 0 };
	netlink_message_begin(&request, RTM_GETROUTE, NLM_F_DUMP);
	struct rtmsg *rtm = netlink_message_reserve(&request, sizeof(*rtm));
	rtm->rtm_family = AF_INET;
	struct route_list list = { protocol, NULL, 0 };
	int r = transact(netlink, &request, list_route, &list, err, "list routes");
	if (r < 0) {
		free(list.entries);
		return r;
	}
	struct netlink_link *links = NULL;
	size_t link_count = 0;
	if (list.count) {
		r = netlink_link_list(netlink, &links, &link_count, err);
		if (r < 0) {
			free(list.entries);
			return r;
		}
	}
	struct netlink_route *routes = xcalloc(list.count ? list.count : 1, sizeof(*routes));
	for (size_t i = 0; i < list.count; i++) {
		routes[i] = list.entries[i].route;
		for (size_t j = 0; j < link_count; j++)
			if (links[j].index == list.entries[i].index)
				snprintf(routes[i].device, sizeof(routes[i].device), "%s", links[j].name);
	}
	free(links);
	free(list.entries);
	*ret_routes = routes;
	*ret_count = list.count;
	return 0;
}

/* --- sysctl ----------------------------------------------------------------------------- */

static int sysctl_path(const char *key, char *path, size_t size, struct error *err)
{
	if (!key[0] || strstr(key, "..") || key[0] == '/' || key[0] == '.')
		return error_set(err, EINVAL, "'%s' is not a sysctl key", key);
	int n = snprintf(path, size, "/proc/sys/%s", key);
	if (n < 0 || (size_t)n >= size)
		return error_set(err, ENAMETOOLONG, "sysctl key '%s' is too long", key);
	for (char *p = path + strlen("/proc/sys/"); *p; p++)
		if (*p == '.')
			*p = '/';
	return 0;
}

int netlink_sysctl_write(const char *key, const char *value, struct error *err)
{
	char path[256];
	int r = sysctl_path(key, path, sizeof(path), err);
	if (r < 0)
		return r;
	cleanup_close int fd = open(path, O_WRONLY | O_CLOEXEC | O_TRUNC);
	if (fd < 0)
		return error_set_errno(err, errno, "sysctl %s: open %s", key, path);
	if (file_write_all(fd, value, strlen(value)) < 0)
		return error_set_errno(err, errno, "sysctl %s = %s: write", key, value);
	return 0;
}

int netlink_sysctl_read(const char *key, char *buf, size_t size, struct error *err)
{
	char path[256];
	int r = sysctl_path(key, path, sizeof(path), err);
	if (r < 0)
		return r;
	cleanup_close int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return error_set_errno(err, errno, "sysctl %s: open %s", key, path);
	ssize_t n = read(fd, buf, size - 1);
	if (n < 0)
		return error_set_errno(err, errno, "sysctl %s: read", key);
	buf[n] = '\0';
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
		buf[--n] = '\0';
	return 0;
}

int netlink_enable_ipv4_forwarding(struct error *err)
{
	return netlink_sysctl_write("net.ipv4.ip_forward", "1", err);
}

/* --- IPv4 text ------------------------------------------------------------------------ */

static uint32_t mask_of(uint8_t prefix)
{
	return prefix ? 0xffffffffu << (32 - prefix) : 0;
}

int netlink_parse_cidr(const char *text, bool allow_host_bits, struct in_addr *ret_address, uint8_t *ret_prefix,
                       struct error *err)
{
	const char *slash = text ? strchr(text, '/') : NULL;
	if (!slash || slash == text || (size_t)(slash - text) >= INET_ADDRSTRLEN)
		return error_set(err, EINVAL, "'%s' is not an IPv4 CIDR (like 10.42.0.0/16)", text ? text : "");
	char address_text[INET_ADDRSTRLEN];
	memcpy(address_text, text, (size_t)(slash - text));
	address_text[slash - text] = '\0';
	struct in_addr address;
	if (inet_pton(AF_INET, address_text, &address) != 1)
		return error_set(err, EINVAL, "'%s' is not an IPv4 CIDR: '%s' is not an IPv4 address", text,
		                 address_text);
	const char *p = slash + 1;
	unsigned prefix = 0;
	if (!*p || strlen(p) > 2)
		return error_set(err, EINVAL, "'%s' is not an IPv4 CIDR: the prefix length must be 0 to 32", text);
	for (; *p; p++) {
		if (*p < '0' || *p > '9')
			return error_set(err, EINVAL, "'%s' is not an IPv4 CIDR: the prefix length must be 0 to 32",
			                 text);
		prefix = prefix * 10 + (unsigned)(*p - '0');
	}
	if (prefix > 32)
		return error_set(err, EINVAL, "'%s' is not an IPv4 CIDR: the prefix length must be 0 to 32", text);
	if (!allow_host_bits && (ntohl(address.s_addr) & ~mask_of((uint8_t)prefix)))
		return error_set(err, EINVAL, "'%s' has host bits set: the network is %s/%u", text,
		                 inet_ntop(AF_INET,
		                           &(struct in_addr){ htonl(ntohl(address.s_addr) & mask_of((uint8_t)prefix)) },
		                           address_text, sizeof(address_text)),
		                 prefix);
	*ret_address = address;
	*ret_prefix = (uint8_t)prefix;
	return 0;
}

bool netlink_cidr_contains(struct in_addr network, uint8_t prefix, struct in_addr address)
{
	uint32_t mask = mask_of(prefix);
	return (ntohl(network.s_addr) & mask) == (ntohl(address.s_addr) & mask);
}

bool netlink_cidr_overlaps(struct in_addr a, uint8_t alen, struct in_addr b, uint8_t blen)
{
	uint8_t shorter = alen < blen ? alen : blen;
	return netlink_cidr_contains(a, shorter, b);
}
