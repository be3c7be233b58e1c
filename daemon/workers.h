/* workers: one thread per NFQUEUE, each deciding its queue's SYNs.
 *
 * Workers read the current site table without locks. A reload publishes a
 * new table with workers_swap_sites(), which returns the old one only once
 * no worker can still be reading it (each worker announces the generation
 * it is working with, and idles announced as 0). */
#ifndef GK_WORKERS_H
#define GK_WORKERS_H

#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "sites.h"

struct workers;

/* Packets the workers did not decide themselves, and the RSTs. What a
 * worker cannot decide it leaves to the kernel guard (rules.h): accepted
 * without the decided mark, so the guard drops or rejects it when its
 * endpoint is offline; without a guard (backend external) a malformed
 * packet is dropped instead. */
struct workers_stats {
	uint64_t packets;     /* every packet received from the queues */
	uint64_t malformed;   /* not parseable as IP + TCP: left to the guard */
	uint64_t not_syn;     /* not a SYN without ACK: left to the guard */
	uint64_t unmanaged;   /* no site for address:port: left to the guard */
	uint64_t fragments;   /* first fragments of a SYN, decided like any SYN */
	uint64_t rst_sent;
	uint64_t rst_failed;
	uint64_t recv_errors;
	uint64_t verdict_errors;
};

/* Binds queues CFG->queue.num .. +count-1 and opens the RST sockets;
 * errors are reported here, at start. SYNs wait in the kernel's queue
 * until workers_run() starts the threads. GUARD: the rules have a kernel
 * guard that decides what a worker leaves undecided (every backend but
 * external). */
struct workers *workers_open(const struct config *cfg, struct sites *sites, bool guard);
/* Starts one thread per queue. Called after the privilege drop: Linux
 * capabilities are per thread, and a thread inherits its creator's, so
 * threads started earlier would keep root's or, worse, lose CAP_NET_ADMIN
 * when the main thread alone keeps it and every verdict is refused. */
int workers_run(struct workers *workers);
void workers_stop(struct workers *workers);

/* Publishes SITES; returns the previous table, now unused by any worker. */
struct sites *workers_swap_sites(struct workers *workers, struct sites *sites);
void workers_get_stats(const struct workers *workers, struct workers_stats *out);
/* The oldest time (CLOCK_MONOTONIC, seconds) any worker last went round
 * its loop: a stuck worker shows here, for the watchdog. */
uint64_t workers_oldest_heartbeat(const struct workers *workers);

#endif
