/* `bramble edit KIND NAME | TYPE/NAME`: the object in $EDITOR, then a PUT.
 *
 * Rounds: the object is written as YAML (or JSON, -o json) to a private temporary file
 * under a comment header; the editor ($BRAMBLE_EDITOR, $KUBE_EDITOR, $EDITOR, else vi,
 * run by /bin/sh) is started on it; the result is read back. An empty file or an
 * unchanged object cancels (exit 0). Otherwise the object is PUT with the resourceVersion
 * it was read at, so the server refuses it (4.12) when someone changed the object in the
 * meantime: that is reported as such, the edited copy is kept, and the exit code is 1. A
 * change the server refuses as invalid (or text that is not YAML, or a changed name or
 * kind) reopens the editor with the reasons in the header, as kubectl does; saving it
 * again unchanged gives up (exit 1, copy kept). At most EDIT_MAX_ROUNDS rounds.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/client.h"
#include "core/object.h"
#include "platform/buffer.h"
#include "platform/error.h"
#include "platform/file.h"
#include "platform/memory.h"
#include "tools/cli.h"
#include "tools/kinds.h"
#include "tools/manifest.h"
#include "tools/verbs.h"

#define EDIT_MAX_ROUNDS 10

static const char header[] = "# Please edit the object below. Lines beginning with a '#' will be ignored,\n"
                             "# and an empty file will abort the edit. If an error occurs while saving this file will "
                             "be\n"
                             "# reopened with the relevant failures.\n"
                             "#\n";

static void usage(FILE *out)
{
	fputs("usage: bramble edit KIND NAME | TYPE/NAME [-n NAMESPACE] [-o yaml|json] [--config FILE]\n"
	      "\n"
	      "Opens the object in $BRAMBLE_EDITOR, $KUBE_EDITOR or $EDITOR (else vi) and saves what was\n"
	      "changed; a change made by someone else meanwhile is refused, not overwritten.\n",
	      out);
}

static const char *editor(void)
{
	static const char *const variables[] = { "BRAMBLE_EDITOR", "KUBE_EDITOR", "EDITOR" };
	for (size_t i = 0; i < ARRAY_SIZE(variables); i++) {
		const char *value = getenv(variables[i]);
		if (value && value[0])
			return value;
	}
	return "vi";
}

static int run_editor(const char *path, struct error *err)
{
	cleanup_free char *command = xasprintf("%s \"$1\"", editor());
	pid_t pid = fork();
	if (pid < 0)
		return error_set_errno(err, errno, "cannot start the editor");
	if (pid == 0) {
		execl("/bin/sh", "sh", "-c", command, "sh", path, (char *)NULL);
		_exit(127);
	}
	int status;
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return error_set_errno(err, errno, "waiting for the editor");
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		return error_set(err, EIO, "there was a problem with the editor \"%s\" (it exited with %d)", editor(),
		                 WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
	return 0;
}

static char *render(const cJSON *object, bool json, const char *problems)
{
	struct buffer b = BUFFER_INIT;
	buffer_append_string(&b, header);
	if (problems) {
		for (const char *line = problems; *line;) {
			const char *newline = strchr(line, '\n');
			size_t n = newline ? (size_t)(newline - line) : strlen(line);
			buffer_printf(&b, "# %.*s\n", (int)n, line);
			line += n + (newline ? 1 : 0);
		}
		buffer_append_string(&b, "#\n");
	}
	if (json) {
		cli_write_json(object, 0, &b);
		buffer_append_string(&b, "\n");
	} else {
		manifest_write_yaml(object, &b);
	}
	return buffer_steal(&b);
}

/* Whether the text has anything but comments and white space. */
static bool empty(const char *text)
{
	for (const char *line = text; *line;) {
		const char *p = line;
		while (*p == ' ' || *p == '\t' || *p == '\r')
			p++;
		if (*p && *p != '\n' && *p != '#')
			return false;
		const char *newline = strchr(line, '\n');
		if (!newline)
			break;
		line = newline + 1;
	}
	return true;
}

static bool same_identity(const cJSON *a, const cJSON *b)
{
	static const char *const paths[] = { "apiVersion", "kind", "metadata.name", "metadata.namespace" };
	for (size_t i = 0; i < ARRAY_SIZE(paths); i++)
		if (strcmp(cli_string(a, paths[i]), cli_string(b, paths[i])) != 0)
			return false;
	return true;
}

int edit_main(int argc, char **argv)
{
	enum { OPT_CONFIG = 256 };
	static const struct option long_options[] = {
		{ "namespace", required_argument, NULL, 'n' },
		{ "output", required_argument, NULL, 'o' },
		{ "config", required_argument, NULL, OPT_CONFIG },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *namespace = "default", *config = NULL;
	bool json = false;
	int opt;
	optind = 1;
	while ((opt = getopt_long(argc, argv, "n:o:h", long_options, NULL)) != -1) {
		switch (opt) {
		case 'n':
			namespace
			= optarg;
			break;
		case 'o':
			if (strcmp(optarg, "json") != 0 && strcmp(optarg, "yaml") != 0)
				return cli_usage_error(NULL, "edit writes yaml or json, not '%s'", optarg);
			json = strcmp(optarg, "json") == 0;
			break;
		case OPT_CONFIG:
			config = optarg;
			break;
		case 'h':
			usage(stdout);
			return CLI_OK;
		default:
			usage(stderr);
			return CLI_USAGE;
		}
	}
	struct error err = { 0 };
	struct kinds_selection *selection = xcalloc(1, sizeof(*selection));
	int r = kinds_select(argc - optind, argv + optind, selection, &err);
	if (r == 0 && selection->count != 1)
		r = error_set(&err, EINVAL, "edit takes one object: KIND NAME or TYPE/NAME");
	if (r < 0) {
		free(selection);
		return r == -ENOENT ? cli_fail(&err) : cli_usage_error(usage, "%s", err.message);
	}
	const struct kind *kind = selection->kinds[0];
	const char *name = selection->names[0];
	free(selection);
	char type[KINDS_NAME_MAX], resource[KINDS_NAME_MAX];
	kinds_type(kind, type, sizeof(type));
	kinds_resource(kind, resource, sizeof(resource));
	struct client *client = NULL;
	if (cli_connect(config, &client, &err) < 0)
		return cli_fail(&err);
	cJSON *original = NULL, *edited = NULL;
	char *text = NULL, *shown = NULL, *problems = NULL;
	int status = CLI_ERROR, fd = -1;
	bool keep_copy = false;
	const char *directory = getenv("TMPDIR") && getenv("TMPDIR")[0] ? getenv("TMPDIR") : "/tmp";
	char *path = xasprintf("%s/bramble-edit-XXXXXX.%s", directory, json ? "json" : "yaml");
	if (cli_object_call(client, CLIENT_GET, kind, namespace, name, NULL, NULL, &original, &err) < 0) {
		cli_print_error(&err);
		free(path);
		path = NULL;
		goto out;
	}
	if ((fd = mkstemps(path, 5)) < 0) { /* ".yaml", ".json" */
		error_set_errno(&err, errno, "cannot create a file to edit in %s", directory);
		cli_print_error(&err);
		free(path);
		path = NULL;
		goto out;
	}
	close(fd);
	const char *rv = object_string_at(original, "metadata.resourceVersion");
	for (int round = 0; round < EDIT_MAX_ROUNDS; round++) {
		free(shown);
		shown = render(edited ? edited : original, json, problems);
		if (file_write_atomic(path, shown, strlen(shown), 0600, &err) < 0 || run_editor(path, &err) < 0) {
			cli_print_error(&err);
			keep_copy = edited != NULL;
			goto out;
		}
		free(text);
		text = NULL;
		size_t size;
		if (file_read(path, MANIFEST_MAX_FILE_SIZE, &text, &size, &err) < 0) {
			cli_print_error(&err);
			goto out;
		}
		if (empty(text)) {
			fputs("Edit cancelled, saved file was empty.\n", stderr);
			status = CLI_OK;
			goto out;
		}
		if (problems && strcmp(text, shown) == 0) {
			fprintf(stderr, "Edit cancelled, no valid changes were saved.\n%s\n", problems);
			keep_copy = true;
			goto out;
		}
		free(problems);
		problems = NULL;
		struct manifest m = { 0 };
		r = manifest_parse(path, text, size, &m, &err);
		if (r == 0 && m.count != 1)
			r = error_set(&err, EINVAL, "the file must hold exactly one object, not %zu", m.count);
		if (r < 0) {
			manifest_free(&m);
			problems = xasprintf("The edited file had a syntax error: %s", err.message);
			continue;
		}
		cJSON_Delete(edited);
		edited = steal_pointer(&m.documents[0].object);
		manifest_free(&m);
		if (cJSON_Compare(edited, original, 1)) {
			fputs("Edit cancelled, no changes made.\n", stderr);
			status = CLI_OK;
			goto out;
		}
		if (!same_identity(edited, original)) {
			problems = xstrdup(
			        "At least one of apiVersion, kind, name and namespace was changed: they cannot be.");
			continue;
		}
		/* The version that was read, whatever the file says: a newer one on the server is a
		 * change someone else made. */
		cJSON *metadata = object_metadata(edited);
		cJSON_DeleteItemFromObjectCaseSensitive(metadata, "resourceVersion");
		if (rv)
			cJSON_AddStringToObject(metadata, "resourceVersion", rv);
		r = cli_object_call(client, CLIENT_PUT, kind, namespace, name, NULL, edited, NULL, &err);
		if (r == 0) {
			printf("%s/%s edited\n", type, name);
			status = CLI_OK;
			goto out;
		}
		if (r == -ESTALE) {
			fprintf(stderr,
			        "error: %s \"%s\" was changed on the server while it was being edited (it is no longer "
			        "at "
			        "resourceVersion %s): your changes were not saved.\n"
			        "Run bramble edit again to edit the latest version.\n",
			        resource, name, rv ? rv : "?");
			keep_copy = true;
			goto out;
		}
		if (r != -EINVAL) {
			cli_print_error(&err);
			keep_copy = true;
			goto out;
		}
		problems = xasprintf("%s \"%s\" was not valid:\n* %s", resource, name, err.message);
	}
	fprintf(stderr, "error: gave up after %d rounds of editing\n", EDIT_MAX_ROUNDS);
	keep_copy = true;
out:
	if (path && keep_copy) {
		/* The file holds what was last saved in the editor. */
		fprintf(stderr, "A copy of your changes has been stored to \"%s\"\n", path);
	} else if (path) {
		unlink(path);
	}
	free(path);
	free(text);
	free(shown);
	free(problems);
	cJSON_Delete(original);
	cJSON_Delete(edited);
	client_close(client);
	return status;
}
