/*
 * The client-side commands: `statusgate publish` (one publish over HTTP or
 * AMQP, for shell scripts and backend jobs) and `statusgate demo` (a
 * submission's life cycle played against a running gateway).
 */
#ifndef GW_CLI_H
#define GW_CLI_H

/* main thread; argv[0] is the command name; returns the exit status */
int cmd_publish(int argc, char **argv);
int cmd_demo(int argc, char **argv);

#endif
