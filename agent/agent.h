/* The agent daemon's entry point (`bramble agent ...`). */
#ifndef BRAMBLE_AGENT_AGENT_H
#define BRAMBLE_AGENT_AGENT_H

int agent_main(int argc, char **argv);

#endif
