/* The verbs of the `bramble` multi-call binary, one file each under tools/. */
#ifndef BRAMBLE_TOOLS_VERBS_H
#define BRAMBLE_TOOLS_VERBS_H

int version_main(int argc, char **argv);
int init_main(int argc, char **argv);
int image_main(int argc, char **argv);
int run_main(int argc, char **argv);

#endif
