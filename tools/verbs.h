/* The verbs of the `bramble` multi-call binary, one file each under tools/. Each returns
 * the process's exit code: 0 done, 1 an error, 2 a usage error (tools/cli.h). */
#ifndef BRAMBLE_TOOLS_VERBS_H
#define BRAMBLE_TOOLS_VERBS_H

int version_main(int argc, char **argv);
int init_main(int argc, char **argv);
int token_main(int argc, char **argv);
int image_main(int argc, char **argv);
int run_main(int argc, char **argv);
int container_main(int argc, char **argv);

int get_main(int argc, char **argv);
int describe_main(int argc, char **argv);
int apply_main(int argc, char **argv);
int create_main(int argc, char **argv);
int delete_main(int argc, char **argv);
int edit_main(int argc, char **argv);
int patch_main(int argc, char **argv);
int label_main(int argc, char **argv);
int annotate_main(int argc, char **argv);
int scale_main(int argc, char **argv);
int rollout_main(int argc, char **argv);
int cordon_main(int argc, char **argv);
int uncordon_main(int argc, char **argv);
int drain_main(int argc, char **argv);
int taint_main(int argc, char **argv);
int hollow_main(int argc, char **argv);
int logs_main(int argc, char **argv);
int top_main(int argc, char **argv);

#endif
