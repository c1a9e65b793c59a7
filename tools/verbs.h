/* The verbs of the `bramble` multi-call binary, one file each under tools/. Each returns
 * the process's exit code: 0 done, 1 an error, 2 a usage error (tools/cli.h). */
#ifndef BRAMBLE_TOOLS_VERBS_H
#define BRAMBLE_TOOLS_VERBS_H

int version_main(int argc, char **argv);
int init_main(int argc, char **argv);
int image_main(int argc, char **argv);
int run_main(int argc, char **argv);

int get_main(int argc, char **argv);
int apply_main(int argc, char **argv);
int delete_main(int argc, char **argv);

#endif
