/* The agent's side of `bramble logs`: answers the log requests the control plane relays
 * (core/logrelay.h) from the container log files of the pods running here,
 * <log-dir>/<ns>_<pod>_<uid>/<container>/<restart>.log. See log_server.c.
 */
#ifndef BRAMBLE_AGENT_LOG_SERVER_H
#define BRAMBLE_AGENT_LOG_SERVER_H

#include <stdbool.h>
#include <stddef.h>

struct buffer;
struct link;
struct log_server;
struct loop;

#define LOG_SERVER_MAX_STREAMS 16             /* follows open at once; the oldest goes first */
#define LOG_SERVER_MAX_ANSWER (1024 * 1024)   /* bytes of one answer: the end of the log is kept */
#define LOG_SERVER_MAX_READ (8 * 1024 * 1024) /* bytes of a log file read for an answer */
#define LOG_SERVER_POLL_MS 250                /* a followed file is looked at this often */
#define LOG_SERVER_KEEPALIVE_MS 5000          /* an idle follow asks whether it is still wanted */

struct log_server *log_server_new(struct loop *loop, struct link *link, const char *node_name, const char *log_dir);
void log_server_free(struct log_server *server);

/* Log file content as `kubectl logs` shows it, appended to out: CRI records
 * ("<time> stdout F <message>") become their message (with "<time> " in front when
 * timestamps), partial records (P) are joined; other lines are shown as they are. At line
 * starts only; *at_line_start carries the state across calls. */
void log_server_render(const char *text, size_t length, bool timestamps, bool *at_line_start, struct buffer *out);

/* Keeps the last `lines` lines of text (lines < 0: all): returns the offset they start at. */
size_t log_server_tail_offset(const char *text, size_t length, long lines);

/* The log file of a container directory: the highest <restart>.log, or the one before it
 * (previous). 0 and the path (caller frees), or -ENOENT. */
int log_server_pick_file(const char *dir, bool previous, char **ret_path);

#endif
