/* sni_path: what the SNI queue's worker does with its packets — the
 * client segments of connections to shared endpoints whose ClientHello is
 * still to be decided (rules_sni.h queues exactly those).
 *
 * Each segment goes into the hold table (sni_hold.h); once a hello names a
 * server (or is no hello, or is held too long) every held packet of the
 * flow gets the verdict of the site that takes the name
 * (site_endpoint_decide): accepted with RULES_SNI_DECIDED added to its own
 * mark (the kernel then clears the flow's PENDING bit and queues nothing
 * more of it), or dropped, with an RST to the server at the first held
 * byte (it received none of them) and, for reject, one to the client at
 * its ack. The verdicts are per packet (the queue must be opened with
 * per_packet_verdicts) and added in the order the packets came. */
#ifndef GK_SNI_PATH_H
#define GK_SNI_PATH_H

#include <stdint.h>

#include "clienthello.h"
#include "config.h"
#include "queue.h"
#include "sites.h"

/* The queue's copy range: a hello's worth of payload after the headers. */
#define SNI_PATH_COPY_RANGE (CLIENTHELLO_MAX + 256)

enum sni_path_figure {
	SNI_PATH_PACKETS,   /* every packet of the SNI queue */
	SNI_PATH_HELLOS,    /* flows decided by their hello's name (or its absence) */
	SNI_PATH_INVALID,   /* not a ClientHello, two versions of it, too large */
	SNI_PATH_TIMEOUT,   /* held past sni.hold */
	SNI_PATH_FULL,      /* sni.max_pending flows held already */
	SNI_PATH_UNKNOWN,   /* no site took the name: sni.unknown_name decided */
	SNI_PATH_RSTS,      /* RSTs sent (to servers and clients) */
	SNI_PATH_N_FIGURES
};

struct sni_path;

/* RAW4 / RAW6: the worker's raw sockets (sent RSTs); SLOT: its counter
 * slot in every site table. NULL out of memory. */
struct sni_path *sni_path_new(const struct config *cfg, int raw4, int raw6, unsigned slot);
void sni_path_free(struct sni_path *sp);

/* Decides PKTS[0..N) of the SNI queue QUEUE against SITES, and what the
 * clock (NOW_MS) says is due; the verdicts are added to QUEUE, not sent. */
void sni_path_batch(struct sni_path *sp, struct queue *queue, const struct sites *sites,
		    const struct queue_packet *pkts, int n, uint64_t now_ms);
/* Held flows past their time only (an idle round). */
void sni_path_expire(struct sni_path *sp, struct queue *queue, const struct sites *sites,
		     uint64_t now_ms);
/* Every held flow, by the unknown-name outcome, before the queue closes. */
void sni_path_drain(struct sni_path *sp, struct queue *queue, const struct sites *sites);

/* A reload's sni.hold, for flows held from the worker's next round on
 * (any thread). */
void sni_path_set_hold(struct sni_path *sp, uint32_t hold_ms);

uint64_t sni_path_figure(const struct sni_path *sp, enum sni_path_figure figure);

#endif
