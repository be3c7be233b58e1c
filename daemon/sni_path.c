#include "sni_path.h"

#include <netinet/in.h> /* before linux/netfilter.h, which pulls in linux/in.h */
#include <linux/netfilter.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "packet.h"
#include "rules_sni.h"
#include "sni_hold.h"

struct sni_path {
	struct sni_hold *hold;
	int raw4, raw6;
	unsigned slot;
	_Atomic uint32_t hold_ms; /* sni.hold: set by a reload, read by the worker */
	/* written by the worker only; read by the control path */
	_Atomic uint64_t figure[SNI_PATH_N_FIGURES];
};

static void bump(struct sni_path *sp, enum sni_path_figure f)
{
	atomic_store_explicit(&sp->figure[f],
			      atomic_load_explicit(&sp->figure[f], memory_order_relaxed) + 1,
			      memory_order_relaxed);
}

struct sni_path *sni_path_new(const struct config *cfg, int raw4, int raw6, unsigned slot)
{
	struct sni_path *sp = calloc(1, sizeof(*sp));

	if (!sp)
		return NULL;
	sp->hold = sni_hold_new(cfg->sni.max_pending, cfg->sni.hold_ms);
	if (!sp->hold) {
		free(sp);
		return NULL;
	}
	sp->raw4 = raw4;
	sp->raw6 = raw6;
	sp->slot = slot;
	atomic_init(&sp->hold_ms, cfg->sni.hold_ms);
	return sp;
}

void sni_path_free(struct sni_path *sp)
{
	if (!sp)
		return;
	sni_hold_free(sp->hold);
	free(sp);
}

void sni_path_set_hold(struct sni_path *sp, uint32_t hold_ms)
{
	atomic_store_explicit(&sp->hold_ms, hold_ms, memory_order_relaxed);
}

/* The hold table is the worker's alone: a reload's sni.hold reaches it
 * here, at the start of a round. */
static void take_hold(struct sni_path *sp)
{
	sni_hold_set_hold_ms(sp->hold, atomic_load_explicit(&sp->hold_ms, memory_order_relaxed));
}

uint64_t sni_path_figure(const struct sni_path *sp, enum sni_path_figure figure)
{
	return sp ? atomic_load_explicit(&sp->figure[figure], memory_order_relaxed) : 0;
}

/* A bare RST from FROM:FROM_PORT to TO:TO_PORT at SEQ. MSG_DONTWAIT: the
 * worker sleeps only in its queue's receive. */
static void send_rst(struct sni_path *sp, int family, const uint8_t *from, const uint8_t *to,
		     uint16_t from_port, uint16_t to_port, uint32_t seq)
{
	uint8_t rst[PACKET_RST_MAX];
	size_t len = packet_build_segment(family, from, to, from_port, to_port, seq, 0, PACKET_TCP_RST,
					  rst, sizeof(rst));
	ssize_t n;

	if (len == 0)
		return;
	if (family == AF_INET) {
		struct sockaddr_in dst = {.sin_family = AF_INET};

		memcpy(&dst.sin_addr, to, 4);
		n = sendto(sp->raw4, rst, len, MSG_DONTWAIT, (struct sockaddr *)&dst, sizeof(dst));
	} else {
		struct sockaddr_in6 dst = {.sin6_family = AF_INET6};

		memcpy(&dst.sin6_addr, to, 16);
		n = sendto(sp->raw6, rst, len, MSG_DONTWAIT, (struct sockaddr *)&dst, sizeof(dst));
	}
	if (n == (ssize_t)len)
		bump(sp, SNI_PATH_RSTS);
}

/* Every packet of decision D gets the verdict of the site that takes its
 * name (none: the unknown-name outcome), in the order they came. */
static void apply(struct sni_path *sp, struct queue *queue, const struct sites *sites,
		  const struct sni_decision *d)
{
	const struct sni_flow *f = &d->flow;
	const struct site_endpoint *e = sites_lookup_shared(sites, f->family, f->daddr, f->dport);
	enum site_verdict verdict = SITE_VERDICT_ACCEPT;
	struct site *site = NULL;

	switch (d->result) {
	case SNI_NAME:
	case SNI_NO_NAME:
		bump(sp, SNI_PATH_HELLOS);
		break;
	case SNI_INVALID:
		bump(sp, SNI_PATH_INVALID);
		break;
	case SNI_TIMEOUT:
		bump(sp, SNI_PATH_TIMEOUT);
		break;
	case SNI_FULL:
		bump(sp, SNI_PATH_FULL);
		break;
	case SNI_HELD:
		return;
	}
	if (e) {
		verdict = site_endpoint_decide(e, d->result == SNI_NAME ? d->name : NULL, sp->slot,
					       f->family, f->saddr, &site);
		if (!site)
			bump(sp, SNI_PATH_UNKNOWN);
	} else if ((site = sites_lookup(sites, f->family, f->daddr, f->dport))) {
		/* a reload left one site at the endpoint: its state decides the
		 * flows held from before (an offline one's name never gets its
		 * certificate); no site left there: unmanaged, accepted */
		verdict = site_decide_from(site, sp->slot, f->family, f->saddr);
	}
	for (size_t i = 0; i < d->n_ids; i++)
		queue_add_verdict(queue, d->ids[i], verdict == SITE_VERDICT_ACCEPT ? NF_ACCEPT : NF_DROP,
				  verdict == SITE_VERDICT_ACCEPT, d->marks[i] | RULES_SNI_DECIDED);
	if (verdict == SITE_VERDICT_ACCEPT || d->n_ids == 0)
		return;
	/* the server accepted a connection that will carry nothing: free it */
	send_rst(sp, f->family, f->saddr, f->daddr, f->sport, f->dport, d->first_seq);
	if (verdict == SITE_VERDICT_REJECT)
		send_rst(sp, f->family, f->daddr, f->saddr, f->dport, f->sport, d->ack);
}

void sni_path_expire(struct sni_path *sp, struct queue *queue, const struct sites *sites,
		     uint64_t now_ms)
{
	struct sni_decision d;

	take_hold(sp);
	while (sni_hold_expire(sp->hold, now_ms, &d))
		apply(sp, queue, sites, &d);
}

void sni_path_drain(struct sni_path *sp, struct queue *queue, const struct sites *sites)
{
	struct sni_decision d;

	while (sni_hold_drain(sp->hold, &d))
		apply(sp, queue, sites, &d);
}

void sni_path_batch(struct sni_path *sp, struct queue *queue, const struct sites *sites,
		    const struct queue_packet *pkts, int n, uint64_t now_ms)
{
	take_hold(sp);
	for (int i = 0; i < n; i++) {
		const struct queue_packet *pkt = &pkts[i];
		struct packet_tcp tcp;
		struct sni_flow flow = {0};
		struct sni_decision d;
		size_t captured = 0;

		bump(sp, SNI_PATH_PACKETS);
		/* what cannot be read cannot be the hello the server will read
		 * either: dropped, the client resends it */
		if (packet_parse(pkt->data, pkt->len, &tcp) != PACKET_OK || tcp.first_fragment) {
			bump(sp, SNI_PATH_INVALID);
			queue_add_verdict(queue, pkt->id, NF_DROP, false, 0);
			continue;
		}
		if (tcp.payload_offset < pkt->len)
			captured = pkt->len - tcp.payload_offset;
		if (captured > tcp.payload_len)
			captured = tcp.payload_len;
		flow.family = (uint8_t)tcp.family;
		memcpy(flow.saddr, tcp.saddr, 16);
		memcpy(flow.daddr, tcp.daddr, 16);
		flow.sport = tcp.sport;
		flow.dport = tcp.dport;
		if (tcp.flags & (PACKET_TCP_RST | PACKET_TCP_SYN)) {
			/* the client gives up, or an odd SYN: nothing to hold */
			queue_add_verdict(queue, pkt->id, NF_ACCEPT, true, pkt->mark | RULES_SNI_SEEN);
			continue;
		}
		sni_hold_segment(sp->hold, &flow, tcp.seq, tcp.ack, pkt->data + tcp.payload_offset,
				 captured, pkt->id, pkt->mark, now_ms, &d);
		if (captured == 0 && d.n_ids == 0) {
			/* the handshake's ACK (or a bare ACK): on its way, the
			 * flow stays PENDING (SEEN: the guard leaves it be) */
			queue_add_verdict(queue, pkt->id, NF_ACCEPT, true, pkt->mark | RULES_SNI_SEEN);
			continue;
		}
		apply(sp, queue, sites, &d);
	}
	sni_path_expire(sp, queue, sites, now_ms);
}
