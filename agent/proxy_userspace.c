/* The userspace dataplane of the Service proxy, for boards without nf_tables.
 *
 * ClusterIPs are held as /32 addresses on a link of its own (settings.service_link: a dummy,
 * or an empty bridge where the kernel has no dummy driver), so traffic a pod sends to a
 * ClusterIP is delivered to this process; NodePorts are listened on on every address.
 * State, all on the event loop:
 *
 *   listeners  one per (address, port, protocol), kept across changes that keep them (a
 *              change only swaps their endpoints), opened before the old ones close;
 *   TCP relays a client socket and a backend socket with one bounded buffer per direction,
 *              half-closes passed on; closed on error or when both sides are done;
 *   UDP        one connected socket per client (address, port) towards its endpoint,
 *              closed after UDP_IDLE_MS without traffic;
 *   affinity   per listener, client address -> endpoint, until the service's timeout.
 *
 * Bounds: MAX_CONNECTIONS relays, MAX_UDP_SESSIONS per listener, MAX_AFFINITY per
 * listener, RELAY_BUFFER bytes per direction. Limits of the design: the backend sees the
 * board's address, not the client's; a relay already open keeps its endpoint after the
 * endpoint leaves the service.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#include "agent/proxy_backend.h"
#include "platform/error.h"
#include "platform/log.h"
#include "platform/loop.h"
#include "platform/memory.h"
#include "platform/netlink.h"

#define RELAY_BUFFER 65536
#define MAX_CONNECTIONS 4096
#define MAX_UDP_SESSIONS 1024
#define MAX_AFFINITY 4096
#define UDP_IDLE_MS 60000
#define SWEEP_MS 10000
#define UDP_DATAGRAM_MAX 65536

struct listener;

struct affinity {
	struct in_addr client;
	struct proxy_endpoint endpoint;
	uint64_t expires;
};

struct udp_session {
	struct listener *listener;
	struct sockaddr_in client;
	int fd;
	uint64_t last_active;
	struct udp_session *next;
};

struct listener {
	struct user_state *state;
	struct in_addr address;
	uint16_t port;
	uint8_t protocol;
	int fd;
	bool wanted; /* during apply */
	struct proxy_endpoint *endpoints;
	size_t endpoint_count;
	bool affinity_client_ip;
	uint32_t affinity_seconds;
	struct affinity *affinity;
	size_t affinity_count;
	struct udp_session *sessions;
	size_t session_count;
	struct listener *next;
};

struct relay_side {
	struct relay *relay;
	int index; /* 0: client, 1: backend */
};

struct relay {
	struct user_state *state;
	int fd[2];
	struct relay_side side[2];
	char *buffer[2]; /* data read from side i, to write to the other */
	size_t length[2], offset[2];
	bool eof[2], shut[2], connected;
	struct relay *prev, *next;
};

struct user_state {
	struct proxy_settings settings;
	struct netlink *netlink;
	struct loop *loop;
	struct listener *listeners;
	struct relay *relays;
	size_t relay_count;
	struct loop_timer *sweep;
	struct in_addr *addresses; /* ClusterIPs on the service link */
	size_t address_count;
	char *datagram;
};

/* --- endpoints ---------------------------------------------------------------------------- */

static bool pick_endpoint(struct listener *listener, struct in_addr client, struct proxy_endpoint *ret)
{
	if (listener->endpoint_count == 0)
		return false;
	uint64_t now = loop_now(listener->state->loop);
	if (listener->affinity_client_ip) {
		for (size_t i = 0; i < listener->affinity_count; i++) {
			struct affinity *a = &listener->affinity[i];
			if (a->client.s_addr != client.s_addr || a->expires <= now)
				continue;
			for (size_t e = 0; e < listener->endpoint_count; e++)
				if (listener->endpoints[e].address.s_addr == a->endpoint.address.s_addr &&
				    listener->endpoints[e].port == a->endpoint.port) {
					a->expires = now + (uint64_t)listener->affinity_seconds * 1000;
					*ret = a->endpoint;
					return true;
				}
		}
	}
	uint32_t r;
	if (getrandom(&r, sizeof(r), GRND_NONBLOCK) != sizeof(r))
		r = (uint32_t)random();
	*ret = listener->endpoints[r % listener->endpoint_count];
	if (listener->affinity_client_ip) {
		size_t slot = listener->affinity_count;
		for (size_t i = 0; i < listener->affinity_count; i++)
			if (listener->affinity[i].expires <= now ||
			    listener->affinity[i].client.s_addr == client.s_addr) {
				slot = i;
				break;
			}
		if (slot == listener->affinity_count) {
			if (listener->affinity_count >= MAX_AFFINITY)
				return true; /* full: served, not remembered */
			listener->affinity = xrealloc(listener->affinity, (slot + 1) * sizeof(*listener->affinity));
			listener->affinity_count++;
		}
		listener->affinity[slot] =
		        (struct affinity){ client, *ret, now + (uint64_t)listener->affinity_seconds * 1000 };
	}
	return true;
}

/* --- TCP relays ----------------------------------------------------------------------------- */

static void relay_close(struct relay *relay)
{
	struct user_state *state = relay->state;
	for (int i = 0; i < 2; i++) {
		if (relay->fd[i] >= 0) {
			loop_remove_fd(state->loop, relay->fd[i]);
			close(relay->fd[i]);
		}
		free(relay->buffer[i]);
	}
	if (relay->prev)
		relay->prev->next = relay->next;
	else
		state->relays = relay->next;
	if (relay->next)
		relay->next->prev = relay->prev;
	state->relay_count--;
	free(relay);
}

static void relay_update(struct relay *relay)
{
	for (int i = 0; i < 2; i++) {
		int other = 1 - i;
		uint32_t events = 0;
		if (i == 1 && !relay->connected) {
			events = EPOLLOUT;
		} else {
			if (relay->length[i] == 0 && !relay->eof[i] && (relay->connected || i == 0))
				events |= EPOLLIN;
			if (relay->length[other] > relay->offset[other])
				events |= EPOLLOUT;
		}
		if (i == 0 && !relay->connected)
			events = 0; /* read the client only once the backend answers */
		loop_modify_fd(relay->state->loop, relay->fd[i], events);
	}
	bool done = true;
	for (int i = 0; i < 2; i++) {
		int other = 1 - i;
		if (relay->eof[i] && relay->length[i] == relay->offset[i] && !relay->shut[other]) {
			shutdown(relay->fd[other], SHUT_WR);
			relay->shut[other] = true;
		}
		done = done && relay->eof[i] && relay->shut[other];
	}
	if (done)
		relay_close(relay);
}

static void relay_event(struct loop *loop, int fd, uint32_t events, void *data)
{
	struct relay_side *side = data;
	struct relay *relay = side->relay;
	int i = side->index, other = 1 - i;
	if (i == 1 && !relay->connected) {
		int error = 0;
		socklen_t length = sizeof(error);
		getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length);
		if (error || (events & (EPOLLERR | EPOLLHUP))) {
			relay_close(relay);
			return;
		}
		relay->connected = true;
		relay_update(relay);
		return;
	}
	if (events & EPOLLOUT) {
		/* write what the other side sent */
		while (relay->offset[other] < relay->length[other]) {
			ssize_t n = send(fd, relay->buffer[other] + relay->offset[other],
			                 relay->length[other] - relay->offset[other], MSG_NOSIGNAL);
			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
				break;
			if (n < 0) {
				relay_close(relay);
				return;
			}
			relay->offset[other] += (size_t)n;
		}
		if (relay->offset[other] == relay->length[other])
			relay->offset[other] = relay->length[other] = 0;
	}
	if ((events & (EPOLLIN | EPOLLHUP | EPOLLERR)) && relay->length[i] == 0 && !relay->eof[i]) {
		ssize_t n = recv(fd, relay->buffer[i], RELAY_BUFFER, 0);
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
			/* nothing now */
		} else if (n < 0) {
			relay_close(relay);
			return;
		} else if (n == 0) {
			relay->eof[i] = true;
		} else {
			relay->length[i] = (size_t)n;
			relay->offset[i] = 0;
			/* try at once: the other side is usually writable */
			ssize_t w =
			        send(relay->fd[other], relay->buffer[i], relay->length[i], MSG_NOSIGNAL | MSG_DONTWAIT);
			if (w > 0)
				relay->offset[i] = (size_t)w;
			else if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
				relay_close(relay);
				return;
			}
			if (relay->offset[i] == relay->length[i])
				relay->offset[i] = relay->length[i] = 0;
		}
	}
	relay_update(relay);
}

static void tcp_accept(struct loop *loop, int fd, uint32_t events, void *data)
{
	struct listener *listener = data;
	struct user_state *state = listener->state;
	for (int accepted = 0; accepted < 64; accepted++) {
		struct sockaddr_in client;
		socklen_t length = sizeof(client);
		int c = accept4(fd, (struct sockaddr *)&client, &length, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (c < 0)
			return;
		struct proxy_endpoint endpoint;
		if (state->relay_count >= MAX_CONNECTIONS || !pick_endpoint(listener, client.sin_addr, &endpoint)) {
			close(c); /* no endpoint: refused, as a closed port would be */
			continue;
		}
		int b = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		struct sockaddr_in to = { .sin_family = AF_INET,
			                  .sin_port = htons(endpoint.port),
			                  .sin_addr = endpoint.address };
		if (b < 0 || (connect(b, (struct sockaddr *)&to, sizeof(to)) < 0 && errno != EINPROGRESS)) {
			if (b >= 0)
				close(b);
			close(c);
			continue;
		}
		int one = 1;
		setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		setsockopt(b, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		struct relay *relay = xcalloc(1, sizeof(*relay));
		relay->state = state;
		relay->fd[0] = c;
		relay->fd[1] = b;
		for (int i = 0; i < 2; i++) {
			relay->side[i] = (struct relay_side){ relay, i };
			relay->buffer[i] = xmalloc(RELAY_BUFFER);
		}
		relay->next = state->relays;
		if (state->relays)
			state->relays->prev = relay;
		state->relays = relay;
		state->relay_count++;
		if (loop_add_fd(state->loop, c, 0, relay_event, &relay->side[0]) < 0 ||
		    loop_add_fd(state->loop, b, EPOLLOUT, relay_event, &relay->side[1]) < 0) {
			relay_close(relay);
			continue;
		}
	}
}

/* --- UDP ------------------------------------------------------------------------------- */

static void session_close(struct udp_session *session)
{
	struct listener *listener = session->listener;
	for (struct udp_session **p = &listener->sessions; *p; p = &(*p)->next)
		if (*p == session) {
			*p = session->next;
			break;
		}
	listener->session_count--;
	loop_remove_fd(listener->state->loop, session->fd);
	close(session->fd);
	free(session);
}

static void session_reply(struct loop *loop, int fd, uint32_t events, void *data)
{
	struct udp_session *session = data;
	struct listener *listener = session->listener;
	for (int i = 0; i < 64; i++) {
		ssize_t n = recv(fd, listener->state->datagram, UDP_DATAGRAM_MAX, MSG_DONTWAIT);
		if (n < 0) {
			if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
				session_close(session); /* the endpoint refused (ICMP) */
			return;
		}
		session->last_active = loop_now(loop);
		sendto(listener->fd, listener->state->datagram, (size_t)n, MSG_DONTWAIT,
		       (struct sockaddr *)&session->client, sizeof(session->client));
	}
}

static void udp_receive(struct loop *loop, int fd, uint32_t events, void *data)
{
	struct listener *listener = data;
	char *datagram = listener->state->datagram;
	for (int i = 0; i < 64; i++) {
		struct sockaddr_in client;
		socklen_t length = sizeof(client);
		ssize_t n = recvfrom(fd, datagram, UDP_DATAGRAM_MAX, MSG_DONTWAIT, (struct sockaddr *)&client, &length);
		if (n < 0)
			return;
		struct udp_session *session = listener->sessions;
		while (session && (session->client.sin_addr.s_addr != client.sin_addr.s_addr ||
		                   session->client.sin_port != client.sin_port))
			session = session->next;
		if (!session) {
			struct proxy_endpoint endpoint;
			if (listener->session_count >= MAX_UDP_SESSIONS ||
			    !pick_endpoint(listener, client.sin_addr, &endpoint))
				continue;
			int s = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
			struct sockaddr_in to = { .sin_family = AF_INET,
				                  .sin_port = htons(endpoint.port),
				                  .sin_addr = endpoint.address };
			if (s < 0 || connect(s, (struct sockaddr *)&to, sizeof(to)) < 0) {
				if (s >= 0)
					close(s);
				continue;
			}
			session = xcalloc(1, sizeof(*session));
			session->listener = listener;
			session->client = client;
			session->fd = s;
			if (loop_add_fd(loop, s, EPOLLIN, session_reply, session) < 0) {
				close(s);
				free(session);
				continue;
			}
			session->next = listener->sessions;
			listener->sessions = session;
			listener->session_count++;
		}
		session->last_active = loop_now(loop);
		send(session->fd, datagram, (size_t)n, MSG_DONTWAIT);
	}
}

static void sweep(struct loop *loop, void *data)
{
	struct user_state *state = data;
	uint64_t now = loop_now(loop);
	for (struct listener *l = state->listeners; l; l = l->next) {
		struct udp_session *s = l->sessions;
		while (s) {
			struct udp_session *next = s->next;
			if (now - s->last_active > UDP_IDLE_MS)
				session_close(s);
			s = next;
		}
	}
	state->sweep = loop_add_timer(loop, SWEEP_MS, sweep, state);
}

/* --- listeners --------------------------------------------------------------------------- */

static void listener_close(struct listener *listener)
{
	while (listener->sessions)
		session_close(listener->sessions);
	loop_remove_fd(listener->state->loop, listener->fd);
	close(listener->fd);
	free(listener->endpoints);
	free(listener->affinity);
	free(listener);
}

static int listener_open(struct user_state *state, struct in_addr address, uint16_t port, uint8_t protocol,
                         struct listener **ret, struct error *err)
{
	char text[INET_ADDRSTRLEN];
	inet_ntop(AF_INET, &address, text, sizeof(text));
	const char *proto = protocol == IPPROTO_TCP ? "TCP" : "UDP";
	int fd =
	        socket(AF_INET, (protocol == IPPROTO_TCP ? SOCK_STREAM : SOCK_DGRAM) | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return error_set_errno(err, errno, "socket for %s:%u/%s", text, port, proto);
	int one = 1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port), .sin_addr = address };
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || (protocol == IPPROTO_TCP && listen(fd, 128) < 0)) {
		int e = errno;
		close(fd);
		return error_set_errno(err, e, "listen on %s:%u/%s", text, port, proto);
	}
	struct listener *listener = xcalloc(1, sizeof(*listener));
	listener->state = state;
	listener->address = address;
	listener->port = port;
	listener->protocol = protocol;
	listener->fd = fd;
	int r = loop_add_fd(state->loop, fd, EPOLLIN, protocol == IPPROTO_TCP ? tcp_accept : udp_receive, listener);
	if (r < 0) {
		close(fd);
		free(listener);
		return error_set_errno(err, -r, "watch %s:%u/%s", text, port, proto);
	}
	*ret = listener;
	return 0;
}

static struct listener *find_listener(struct listener *list, struct in_addr address, uint16_t port, uint8_t protocol)
{
	for (; list; list = list->next)
		if (list->address.s_addr == address.s_addr && list->port == port && list->protocol == protocol)
			return list;
	return NULL;
}

static void set_endpoints(struct listener *listener, const struct proxy_entry *entry,
                          const struct proxy_service_port *port)
{
	free(listener->endpoints);
	size_t n = port->endpoint_count;
	listener->endpoints = xcalloc(n ? n : 1, sizeof(*listener->endpoints));
	if (n)
		memcpy(listener->endpoints, port->endpoints, n * sizeof(*listener->endpoints));
	listener->endpoint_count = n;
	listener->affinity_client_ip = entry->service.affinity_client_ip;
	listener->affinity_seconds = entry->service.affinity_timeout_seconds;
	listener->wanted = true;
}

static int ensure_address(struct user_state *state, struct in_addr address, struct error *err)
{
	for (size_t i = 0; i < state->address_count; i++)
		if (state->addresses[i].s_addr == address.s_addr)
			return 0;
	int r = netlink_address_add(state->netlink, state->settings.service_link, address, 32, err);
	if (r < 0)
		return r;
	state->addresses = xrealloc(state->addresses, (state->address_count + 1) * sizeof(*state->addresses));
	state->addresses[state->address_count++] = address;
	return 0;
}

static int user_apply(void *data, const struct proxy_entry *const *entries, size_t count, struct error *err)
{
	struct user_state *state = data;
	struct listener *fresh = NULL;
	int r = 0;
	for (struct listener *l = state->listeners; l; l = l->next)
		l->wanted = false;
	/* open what is missing; nothing is closed until all of it could be opened */
	for (size_t i = 0; i < count && r == 0; i++) {
		const struct proxy_entry *entry = entries[i];
		r = ensure_address(state, entry->service.cluster_ip, err);
		for (size_t p = 0; p < entry->service.port_count && r == 0; p++) {
			const struct proxy_service_port *port = &entry->ports[p];
			struct {
				struct in_addr address;
				uint16_t port;
			} binds[2] = { { entry->service.cluster_ip, port->port }, { { INADDR_ANY }, port->node_port } };
			for (int b = 0; b < (port->node_port ? 2 : 1) && r == 0; b++) {
				struct listener *l = find_listener(state->listeners, binds[b].address, binds[b].port,
				                                   port->protocol);
				if (!l)
					l = find_listener(fresh, binds[b].address, binds[b].port, port->protocol);
				if (!l) {
					r = listener_open(state, binds[b].address, binds[b].port, port->protocol, &l,
					                  err);
					if (r < 0)
						break;
					l->next = fresh;
					fresh = l;
				}
				/* endpoints are swapped below, once everything is open */
				l->wanted = true;
			}
		}
	}
	if (r < 0) {
		while (fresh) {
			struct listener *next = fresh->next;
			listener_close(fresh);
			fresh = next;
		}
		return r;
	}
	/* commit: endpoints, then drop what is no longer wanted */
	for (size_t i = 0; i < count; i++) {
		const struct proxy_entry *entry = entries[i];
		for (size_t p = 0; p < entry->service.port_count; p++) {
			const struct proxy_service_port *port = &entry->ports[p];
			struct listener *l =
			        find_listener(state->listeners, entry->service.cluster_ip, port->port, port->protocol);
			if (!l)
				l = find_listener(fresh, entry->service.cluster_ip, port->port, port->protocol);
			set_endpoints(l, entry, port);
			if (port->node_port) {
				l = find_listener(state->listeners, (struct in_addr){ INADDR_ANY }, port->node_port,
				                  port->protocol);
				if (!l)
					l = find_listener(fresh, (struct in_addr){ INADDR_ANY }, port->node_port,
					                  port->protocol);
				set_endpoints(l, entry, port);
			}
		}
	}
	struct listener **p = &state->listeners;
	while (*p) {
		struct listener *l = *p;
		if (!l->wanted) {
			*p = l->next;
			listener_close(l);
		} else {
			p = &l->next;
		}
	}
	while (fresh) {
		struct listener *next = fresh->next;
		fresh->next = state->listeners;
		state->listeners = fresh;
		fresh = next;
	}
	/* ClusterIPs no longer used */
	for (size_t a = 0; a < state->address_count;) {
		bool used = false;
		for (size_t i = 0; i < count && !used; i++)
			used = entries[i]->service.cluster_ip.s_addr == state->addresses[a].s_addr;
		if (used) {
			a++;
			continue;
		}
		netlink_address_delete(state->netlink, state->settings.service_link, state->addresses[a], 32, NULL);
		state->addresses[a] = state->addresses[--state->address_count];
	}
	return 0;
}

static int user_start(const struct proxy_settings *settings, void **ret_state, struct error *err)
{
	struct user_state *state = xcalloc(1, sizeof(*state));
	state->settings = *settings;
	state->loop = settings->loop;
	int r = netlink_open(-1, &state->netlink, err);
	if (r < 0)
		goto fail;
	/* a link left by a crashed run goes first, with its addresses */
	netlink_link_delete(state->netlink, settings->service_link, NULL);
	r = netlink_dummy_add(state->netlink, settings->service_link, err);
	if (r == -EOPNOTSUPP)
		r = netlink_bridge_add(state->netlink, settings->service_link, err);
	if (r == 0)
		r = netlink_link_set_up(state->netlink, settings->service_link, true, err);
	if (r < 0)
		goto fail;
	state->datagram = xmalloc(UDP_DATAGRAM_MAX);
	state->sweep = loop_add_timer(state->loop, SWEEP_MS, sweep, state);
	*ret_state = state;
	return 0;
fail:
	netlink_close(state->netlink);
	free(state);
	return r;
}

static int user_stop(void *data, struct error *err)
{
	struct user_state *state = data;
	while (state->relays)
		relay_close(state->relays);
	while (state->listeners) {
		struct listener *next = state->listeners->next;
		listener_close(state->listeners);
		state->listeners = next;
	}
	if (state->sweep) {
		loop_cancel_timer(state->loop, state->sweep);
		state->sweep = NULL;
	}
	state->address_count = 0;
	int r = netlink_link_delete(state->netlink, state->settings.service_link, err);
	return r == -ENODEV ? 0 : r;
}

static void user_free(void *data)
{
	struct user_state *state = data;
	if (!state)
		return;
	while (state->relays)
		relay_close(state->relays);
	while (state->listeners) {
		struct listener *next = state->listeners->next;
		listener_close(state->listeners);
		state->listeners = next;
	}
	if (state->sweep)
		loop_cancel_timer(state->loop, state->sweep);
	netlink_close(state->netlink);
	free(state->addresses);
	free(state->datagram);
	free(state);
}

const struct proxy_backend_ops proxy_userspace_ops = {
	.name = "userspace",
	.start = user_start,
	.apply = user_apply,
	.stop = user_stop,
	.free = user_free,
};
