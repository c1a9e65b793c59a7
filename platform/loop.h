/* The event loop: file descriptors, one-shot timers, signals and child processes, on epoll.
 *
 * Every long-lived part of Bramble (the CoAP endpoint, the kubelet's sync loop, probes,
 * the proxy) is driven from one loop in one thread. There is no periodic tick: a loop with
 * nothing due sleeps in epoll_wait until a descriptor, a signal or the earliest timer wakes
 * it, so an idle board costs no CPU.
 *
 * Prepare hooks run before every wait and may shorten it: libcoap plugs its own
 * retransmission timers in through one (see core/transport.c).
 *
 * Signals given to loop_add_signal() and SIGCHLD (once a child is watched) are blocked and
 * read through a signalfd; whoever spawns a process must unblock them in the child.
 */
#ifndef BRAMBLE_PLATFORM_LOOP_H
#define BRAMBLE_PLATFORM_LOOP_H

#include <stdint.h>
#include <sys/types.h>

struct loop;
struct loop_timer;

typedef void (*loop_fd_fn)(struct loop *loop, int fd, uint32_t events, void *data);
typedef void (*loop_timer_fn)(struct loop *loop, void *data);
typedef void (*loop_signal_fn)(struct loop *loop, int signo, void *data);
typedef void (*loop_child_fn)(struct loop *loop, pid_t pid, int wait_status, void *data);
/* Returns how many milliseconds the loop may sleep before calling back, or -1 for no limit. */
typedef int64_t (*loop_prepare_fn)(struct loop *loop, void *data);

#define LOOP_MAX_PREPARE_HOOKS 4

int loop_new(struct loop **ret_loop);
void loop_free(struct loop *loop);

/* events: EPOLLIN / EPOLLOUT ... The callback may remove any watcher, including its own. */
int loop_add_fd(struct loop *loop, int fd, uint32_t events, loop_fd_fn fn, void *data);
int loop_modify_fd(struct loop *loop, int fd, uint32_t events);
int loop_remove_fd(struct loop *loop, int fd);

/* A one-shot timer. The handle is valid until the callback runs or the timer is cancelled. */
struct loop_timer *loop_add_timer(struct loop *loop, uint64_t delay_ms, loop_timer_fn fn, void *data);
void loop_cancel_timer(struct loop *loop, struct loop_timer *timer);

int loop_add_signal(struct loop *loop, int signo, loop_signal_fn fn, void *data);

/* Calls fn once when the child exits, after reaping it. */
int loop_watch_child(struct loop *loop, pid_t pid, loop_child_fn fn, void *data);

int loop_add_prepare(struct loop *loop, loop_prepare_fn fn, void *data);

/* The loop's notion of now (monotonic milliseconds), refreshed on every wake-up. */
uint64_t loop_now(struct loop *loop);

/* Runs one iteration, waiting at most timeout_ms (-1: until something happens). */
int loop_run_once(struct loop *loop, int timeout_ms);
/* Runs until loop_stop(); returns 0 or a negative errno. */
int loop_run(struct loop *loop);
void loop_stop(struct loop *loop);

#endif
