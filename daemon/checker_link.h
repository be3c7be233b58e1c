/* checker_link: the daemon's side of the health-check process: starts it
 * (a fresh exec of our own binary, `gatekeeperd --checker`, fd 3 one end
 * of a SOCK_SEQPACKET socketpair, an empty environment, no other fd, no
 * ambient capability, no-new-privs, nice 10), carries the messages of
 * checker_proto.h, and ends it (SIGKILL, reaped at once) when it dies,
 * hangs or says something malformed; the next start waits a backoff that
 * doubles from 250 ms to 30 s and is reset by the first good result. */
#ifndef GK_CHECKER_LINK_H
#define GK_CHECKER_LINK_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "checker_proto.h"

struct checker_link;

struct checker_link *checker_link_new(void);
/* Ends the process (if any) and frees. */
void checker_link_free(struct checker_link *link);

/* The socket (-1 while no checker runs) and the process id (0: none). */
int checker_link_fd(const struct checker_link *link);
pid_t checker_link_pid(const struct checker_link *link);
unsigned checker_link_starts(const struct checker_link *link);
/* When the next start may happen (clock_now_ms), while none runs. */
uint64_t checker_link_next_start_ms(const struct checker_link *link);
/* Starts the checker. 0, or -1 (logged; retried after the backoff). */
int checker_link_start(struct checker_link *link);
/* Ends the checker: logs WHY with how it ended, reaps it, arms the
 * backoff. */
void checker_link_fail(struct checker_link *link, const char *why);
/* A good result came: the next failure starts its backoff afresh. */
void checker_link_healthy(struct checker_link *link);

/* 0, or -1 with the checker ended (a full socket means a stuck checker). */
int checker_link_run(struct checker_link *link, const struct checker_job *job, int sock,
		     int ca_fd);
int checker_link_cancel(struct checker_link *link, uint32_t slot, uint32_t generation);
/* One result: 1 (in RES), 0 (none waiting), -1 (the checker ended: EOF,
 * an error or a malformed message; already logged and reaped). */
int checker_link_recv(struct checker_link *link, struct checker_result *res);

#endif
