/* checker: the health-check process, `gatekeeperd --checker` (started by
 * checker_link.c, never by hand). It parses what checked servers send
 * (TLS, HTTP), so it runs with nothing worth taking:
 *
 *   - a fresh exec: no memory of the daemon (no config, no state, no
 *     queue or netlink socket), an empty environment, fds 0-2 and 3 only;
 *   - no capability at all (effective, permitted, inheritable, ambient;
 *     the bounding set too when it may clear it, i.e. started as root);
 *     started as root (a daemon without `user:`) it becomes nobody;
 *   - no-new-privs, then a seccomp allow-list (libseccomp) that kills it
 *     on any other system call: no socket(), no open(), no exec, no
 *     fork; only I/O on the fds it was given, connect, epoll/poll, the
 *     clock, memory and exit.
 *
 * It reads RUN and CANCEL records on fd 3 and answers each RUN with one
 * RESULT (checker_proto.h); it exits at EOF or on any malformed record. */
#ifndef GK_CHECKER_H
#define GK_CHECKER_H

/* The process's main: never returns. FD is the socket to the daemon. */
_Noreturn void checker_main(int fd, int verbose);

#endif
