/* queue: one NFQUEUE, spoken to over libmnl with libnetfilter_queue's
 * message builders.
 *
 * The packet path is batched: queue_recv_batch() drains up to a batch of
 * queued packets in one recvmmsg(), the caller decides each, and
 * queue_flush_verdicts() sends all of the batch's verdicts in one sendto(),
 * a run of equal verdicts as one batch verdict.
 * Only the first PACKET_COPY_RANGE bytes of each packet are copied to us
 * (queue_options.copy_range for a queue that reads payloads). */
#ifndef GK_QUEUE_H
#define GK_QUEUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define QUEUE_BATCH 64

struct queue;

struct queue_options {
	uint16_t num;
	bool fail_open;
	uint32_t maxlen;
	int rcvbuf;       /* bytes */
	unsigned idle_ms; /* a waiting queue_recv_batch() returns after this; 0: never */
	/* Bytes of each packet copied to us; 0: PACKET_COPY_RANGE (headers
	 * only). The SNI queue wants the ClientHello too. */
	uint32_t copy_range;
	/* Every verdict its own message: a batch verdict decides every packet
	 * up to its id, and the SNI queue holds some packets' verdicts while
	 * it decides later ones. */
	bool per_packet_verdicts;
};

/* One queued packet of the current batch. */
struct queue_packet {
	uint32_t id;
	uint32_t mark; /* the packet's mark when it was queued (0: none) */
	const uint8_t *data; /* the copied bytes, valid until the next recv */
	size_t len;
};

/* What the kernel says about a queue in /proc/net/netfilter/nfnetlink_queue. */
struct queue_kernel_stats {
	uint64_t queue_total, queue_dropped, user_dropped;
	uint32_t peer_portid;
};

/* Binds queue OPTS->num. Fails (-1, errno set, message logged) when the
 * queue is taken by another process (EBUSY) or nfnetlink_queue is absent. */
struct queue *queue_open(const struct queue_options *opts);
void queue_close(struct queue *queue);
int queue_fd(const struct queue *queue);
uint16_t queue_num(const struct queue *queue);

/* Receives up to QUEUE_BATCH packets in one recvmmsg(). With WAIT it
 * sleeps until the first one arrives (or idle_ms pass, or queue_wake()),
 * then takes the others already waiting without sleeping; without WAIT it
 * never sleeps. Returns how many were stored in PKTS (0: none came), or -1
 * on error. Messages that are not packets (acks, errors, wake-ups) are
 * skipped. */
int queue_recv_batch(struct queue *queue, struct queue_packet *pkts, bool wait);
/* Makes a queue_recv_batch() sleeping in another thread return; 0 or -1. */
int queue_wake(struct queue *queue);

/* How many verdicts the kernel refused (NLMSG_ERROR replies) since the
 * last call; the count is reset. Same thread as queue_recv_batch. */
unsigned queue_take_kernel_errors(struct queue *queue);

/* Adds a verdict (NF_ACCEPT / NF_DROP) to the pending batch; with
 * SET_MARK the packet leaves with mark MARK (the whole mark: pass the
 * packet's own bits along). Add them in the order the packets were
 * received: consecutive ids with the same verdict and mark go to the
 * kernel as one batch verdict. */
void queue_add_verdict(struct queue *queue, uint32_t id, int verdict, bool set_mark,
		       uint32_t mark);
/* Sends the pending verdicts in one message; 0 or -1. */
int queue_flush_verdicts(struct queue *queue);

/* Whether the kernel has nfnetlink_queue, built in, loaded, or loadable
 * on demand (asking for it through nfnetlink makes the kernel load it;
 * we never run modprobe). Needs CAP_NET_ADMIN. */
bool queue_subsystem_present(void);

/* 0 and *OUT filled, or -1 if the queue is not listed. */
int queue_read_kernel_stats(uint16_t num, struct queue_kernel_stats *out);

#endif
