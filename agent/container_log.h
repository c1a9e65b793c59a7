/* Container logs: what a container writes to stdout and stderr, kept in size-capped,
 * rotated files in the CRI log format that `kubectl logs` readers understand:
 *
 *   2026-11-22T04:00:00.123456789Z stdout F a whole line
 *   2026-11-22T04:00:00.123457000Z stderr P the start of a line longer than the buffer
 *
 * The agent reads each container's pipes from its event loop (container_log_pump) and
 * appends here; when the file would pass max_bytes it is rotated (path -> path.1 -> ...
 * up to max_files, the oldest dropped), so a chatty container costs a bounded amount of
 * SD card. No fsync: logs are not worth an SD card write per line.
 */
#ifndef BRAMBLE_AGENT_CONTAINER_LOG_H
#define BRAMBLE_AGENT_CONTAINER_LOG_H

#include <stdbool.h>
#include <stddef.h>

struct error;
struct loop;
struct container_log;

#define CONTAINER_LOG_DEFAULT_MAX_BYTES (1024 * 1024)
#define CONTAINER_LOG_DEFAULT_MAX_FILES 2
#define CONTAINER_LOG_LINE_MAX (16 * 1024) /* longer lines are split into P records */

int container_log_open(const char *path, size_t max_bytes, unsigned max_files, struct container_log **ret_log,
                       struct error *err);
void container_log_close(struct container_log *log);

/* Appends output of one stream ("stdout" or "stderr"); complete lines become F records, a
 * trailing partial line is held until its end arrives (or the stream ends). */
int container_log_write(struct container_log *log, const char *stream, const char *data, size_t length);
/* Writes what is held for stream as a final record (the stream has ended). */
int container_log_flush(struct container_log *log, const char *stream);

/* Reads fd (a pipe's read end, made non-blocking) from the loop into the log under stream;
 * at end of file flushes, stops watching and closes fd. *open_streams is decremented then,
 * so a caller knows when every stream of a container has ended. */
int container_log_pump(struct loop *loop, struct container_log *log, const char *stream, int fd, int *open_streams,
                       struct error *err);

#endif
