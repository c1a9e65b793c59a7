/* Request/response latency over TCP, for the network bench (tests/bench/network.sh):
 *
 *   bench-rr serve PORT                 answers every byte it reads with one byte, forever
 *   bench-rr rr ADDRESS PORT COUNT      one connection, COUNT one-byte round trips
 *   bench-rr crr ADDRESS PORT COUNT     COUNT times: connect, one round trip, close
 *
 * The clients print "p50 X us, p99 Y us over N" (crr includes the connection set-up, which
 * is where a userspace proxy costs most).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static int compare(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

/* One thread, poll over every connection: no fork per connection to blur crr. */
static int serve(int port)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 128) < 0) {
		perror("bench-rr serve");
		return 1;
	}
	enum { MAX_FDS = 1024 };
	static struct pollfd fds[MAX_FDS];
	nfds_t count = 1;
	fds[0] = (struct pollfd){ .fd = fd, .events = POLLIN };
	for (;;) {
		if (poll(fds, count, -1) < 0)
			continue;
		for (nfds_t i = count; i-- > 1;) {
			if (!fds[i].revents)
				continue;
			char buf[256];
			ssize_t n = read(fds[i].fd, buf, sizeof(buf));
			if (n <= 0 || write(fds[i].fd, buf, (size_t)n) != n) {
				close(fds[i].fd);
				fds[i] = fds[--count];
			}
		}
		if (fds[0].revents & POLLIN) {
			int c = accept4(fd, NULL, NULL, SOCK_CLOEXEC);
			if (c >= 0 && count < MAX_FDS) {
				setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
				fds[count++] = (struct pollfd){ .fd = c, .events = POLLIN };
			} else if (c >= 0) {
				close(c);
			}
		}
	}
}

static int connect_to(const char *address, int port)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	if (fd < 0 || inet_pton(AF_INET, address, &sa.sin_addr) != 1 ||
	    connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return fd;
}

static int round_trip(int fd)
{
	char byte = 'x';
	return write(fd, &byte, 1) == 1 && read(fd, &byte, 1) == 1 ? 0 : -1;
}

int main(int argc, char **argv)
{
	if (argc == 3 && strcmp(argv[1], "serve") == 0)
		return serve(atoi(argv[2]));
	if (argc != 5 || (strcmp(argv[1], "rr") != 0 && strcmp(argv[1], "crr") != 0)) {
		fprintf(stderr, "usage: bench-rr serve PORT | bench-rr rr|crr ADDRESS PORT COUNT\n");
		return 2;
	}
	bool per_connection = strcmp(argv[1], "crr") == 0;
	int port = atoi(argv[3]), count = atoi(argv[4]);
	if (count <= 0 || count > 1000000)
		count = 1000;
	double *samples = calloc((size_t)count, sizeof(double));
	int fd = per_connection ? -1 : connect_to(argv[2], port);
	if (!samples || (!per_connection && fd < 0)) {
		fprintf(stderr, "bench-rr: connect %s:%d: %s\n", argv[2], port, strerror(errno));
		return 1;
	}
	for (int i = 0; i < count; i++) {
		double start = now_us();
		if (per_connection && (fd = connect_to(argv[2], port)) < 0) {
			fprintf(stderr, "bench-rr: connect %s:%d: %s\n", argv[2], port, strerror(errno));
			return 1;
		}
		if (round_trip(fd) < 0) {
			fprintf(stderr, "bench-rr: round trip %d failed\n", i);
			return 1;
		}
		if (per_connection)
			close(fd);
		samples[i] = now_us() - start;
	}
	qsort(samples, (size_t)count, sizeof(double), compare);
	printf("p50 %.0f us, p99 %.0f us over %d\n", samples[count / 2], samples[(count * 99) / 100], count);
	free(samples);
	return 0;
}
