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

/* The workers' figures: every packet, those they did not decide
 * themselves, and the RSTs. What a worker cannot decide it leaves to the
 * kernel guard (rules.h): accepted without the decided mark, so the guard
 * drops or rejects it when its endpoint is offline; without a guard
 * (backend external) a malformed packet is dropped instead.
 *
 * A new figure is a value here, a row of workers_figures[] (workers.c),
 * and the place that counts it: stats (text, JSON), metrics and the exit
 * log line all render from the table. */
enum workers_figure_id {
	WORKERS_PACKETS,        /* every packet received from the queues */
	WORKERS_MALFORMED,      /* not parseable as IP + TCP: left to the guard */
	WORKERS_NOT_SYN,        /* not a SYN without ACK: left to the guard */
	WORKERS_UNMANAGED,      /* no site for address:port: left to the guard */
	WORKERS_SHARED,         /* SYNs to shared endpoints passed on to their hello */
	WORKERS_FRAGMENTS,      /* first fragments of a SYN, decided like any SYN */
	WORKERS_RST_SENT,
	WORKERS_RST_FAILED,
	WORKERS_RECV_ERRORS,
	WORKERS_VERDICT_ERRORS,
	/* the SNI worker's (sni_path.h), in enum sni_path_figure's order */
	WORKERS_SNI_PACKETS,
	WORKERS_SNI_HELLOS,
	WORKERS_SNI_INVALID,
	WORKERS_SNI_TIMEOUT,
	WORKERS_SNI_FULL,
	WORKERS_SNI_UNKNOWN,
	WORKERS_SNI_RSTS,
	WORKERS_N_FIGURES
};

struct workers_stats {
	uint64_t figure[WORKERS_N_FIGURES]; /* by enum workers_figure_id */
};

/* How each figure is shown. Rows of one Prometheus family, and of one
 * text line, are next to each other. */
struct workers_figure {
	const char *name;   /* JSON member of stats, and word of the exit log line */
	const char *line;   /* gatekeeperctl stats: the line it is on */
	const char *word;   /* ... its word there; NULL for the line's total */
	const char *metric; /* Prometheus family (a counter) */
	const char *label;  /* its label pair, or NULL */
	const char *help;   /* the family's HELP text, on its first row */
};

extern const struct workers_figure workers_figures[WORKERS_N_FIGURES];

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
void workers_close(struct workers *workers);

/* Publishes SITES; returns the previous table, now unused by any worker. */
struct sites *workers_swap_sites(struct workers *workers, struct sites *sites);
/* Returns once no worker can still use a pointer it read from the site
 * table before the call (e.g. an allow-list replaced at run time). */
void workers_quiesce(struct workers *workers);
/* sni.hold for the SNI worker, if there is one (a reload). */
void workers_set_sni_hold(struct workers *workers, uint32_t hold_ms);
void workers_get_stats(const struct workers *workers, struct workers_stats *out);
/* The oldest time (CLOCK_MONOTONIC, seconds) any worker last went round
 * its loop: a stuck worker shows here, for the watchdog. */
uint64_t workers_oldest_heartbeat(const struct workers *workers);

#endif
