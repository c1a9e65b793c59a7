/* One error object, carried from where a failure happens up to where it is printed.
 *
 * The function that fails fills it (what failed, on which input) and returns the negative
 * code; callers on the way up may prefix context; `main` prints it once. Library-style code
 * never logs an error it returns. A NULL `struct error *` is allowed everywhere: the code is
 * still returned, the message dropped.
 */
#ifndef BRAMBLE_PLATFORM_ERROR_H
#define BRAMBLE_PLATFORM_ERROR_H

#define ERROR_MESSAGE_MAX 512

#define ERROR_FIELD_MAX 192

struct error {
	int code; /* positive errno-style code; 0 when no error is set */
	char message[ERROR_MESSAGE_MAX];
	char field[ERROR_FIELD_MAX]; /* the input field at fault ("spec.containers[0].image"), or "" */
};

/* Sets the error and returns -code. */
int error_set(struct error *err, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Like error_set, with ": <strerror(code)>" appended (crun's crun_make_error). */
int error_set_errno(struct error *err, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Like error_set, naming the input field at fault; the message is "<field>: <text>", as in
 * Kubernetes' validation errors ("spec.replicas: must be greater than or equal to 0"). */
int error_set_field(struct error *err, int code, const char *field, const char *fmt, ...)
        __attribute__((format(printf, 4, 5)));

/* Prefixes context ("loading bramble.conf: ") to an error already set; returns -code
 * (-EIO for a NULL err, which carries no code: keep the code you got and return that). */
int error_prefix(struct error *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

void error_clear(struct error *err);

#endif
