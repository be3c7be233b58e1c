#include "workers.h"

#include <errno.h>
#include <netinet/in.h> /* before linux/netfilter.h, which pulls in linux/in.h */
#include <linux/netfilter.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "log.h"
#include "packet.h"
#include "queue.h"
#include "rules.h"
#include "sni_path.h"

/* Idle workers wake this often, so the heartbeat shows a live loop. */
#define WORKER_IDLE_MS 1000
/* ... and the SNI worker this often, to end held flows near their time. */
#define WORKER_SNI_IDLE_MS 100
/* The socket buffer holds this much per packet the kernel may queue
 * (queue.maxlen): a queued SYN's message takes about 1 KiB of buffer
 * (truesize), so a full queue fits and the limit that bites is maxlen,
 * which the kernel counts as queue_dropped. Memory is only used while
 * packets wait. */
#define WORKER_RCVBUF_PER_PACKET 2048
#define WORKER_RCVBUF_MIN (8 * 1024 * 1024)
#define WORKER_RCVBUF_MAX (1024 * 1024 * 1024)

struct worker {
	struct workers *owner;
	struct queue *queue;
	pthread_t thread;
	unsigned slot; /* this worker's counter slot in every site table */
	uint16_t num; /* its NFQUEUE number */
	bool started;
	bool guard; /* undecided packets go on to the kernel guard */
	struct sni_path *sni; /* the SNI queue's worker (shared endpoints); NULL: a SYN queue's */
	int raw4, raw6; /* for the RSTs of rejected SYNs */
	_Atomic uint64_t active_gen; /* generation in use, 0 while idle */
	_Atomic uint64_t heartbeat;
	/* written by this worker only; read by the control path */
	_Atomic uint64_t figure[WORKERS_N_FIGURES];
};

struct workers {
	_Atomic(struct sites *) sites;
	_Atomic uint64_t gen;
	atomic_bool stopping;
	size_t count;
	struct worker *workers;
};

const struct workers_figure workers_figures[WORKERS_N_FIGURES] = {
	[WORKERS_PACKETS] = { "packets", "packets", NULL, "gatekeeper_packets_total", NULL,
			      "Packets the workers received from the queues." },
	[WORKERS_MALFORMED] = { "malformed", "packets", "malformed",
				"gatekeeper_packets_passed_total", "reason=\"malformed\"",
				"Packets the workers left to the kernel guard (or, backend external, "
				"dropped when malformed), by reason." },
	[WORKERS_NOT_SYN] = { "not_syn", "packets", "not SYN", "gatekeeper_packets_passed_total",
			      "reason=\"not_syn\"", NULL },
	[WORKERS_UNMANAGED] = { "unmanaged", "packets", "unmanaged",
				"gatekeeper_packets_passed_total", "reason=\"unmanaged\"", NULL },
	[WORKERS_SHARED] = { "shared", "packets", "shared", "gatekeeper_packets_passed_total",
			     "reason=\"shared\"", NULL },
	[WORKERS_FRAGMENTS] = { "fragments", "packets", "first fragments",
				"gatekeeper_first_fragments_total", NULL,
				"First fragments of SYNs the workers decided (an evasion attempt, or "
				"a very odd client)." },
	[WORKERS_RST_SENT] = { "rst_sent", "RSTs", "sent", "gatekeeper_rsts_total",
			       "result=\"sent\"", "TCP RSTs for rejected SYNs, by outcome." },
	[WORKERS_RST_FAILED] = { "rst_failed", "RSTs", "failed", "gatekeeper_rsts_total",
				 "result=\"failed\"", NULL },
	[WORKERS_RECV_ERRORS] = { "recv_errors", "errors", "recv", "gatekeeper_worker_errors_total",
				  "kind=\"recv\"", "Errors of the queue workers, by kind." },
	[WORKERS_VERDICT_ERRORS] = { "verdict_errors", "errors", "verdict",
				     "gatekeeper_worker_errors_total", "kind=\"verdict\"", NULL },
	[WORKERS_SNI_PACKETS] = { "sni_packets", "sni", NULL, "gatekeeper_sni_packets_total", NULL,
				  "Packets of the SNI queue: the first client segments of connections "
				  "to shared addresses." },
	[WORKERS_SNI_HELLOS] = { "sni_hellos", "sni", "hellos", "gatekeeper_sni_flows_total",
				 "how=\"hello\"", "Connections to shared addresses decided, by how." },
	[WORKERS_SNI_INVALID] = { "sni_invalid", "sni", "invalid", "gatekeeper_sni_flows_total",
				  "how=\"invalid\"", NULL },
	[WORKERS_SNI_TIMEOUT] = { "sni_timeout", "sni", "timeout", "gatekeeper_sni_flows_total",
				  "how=\"timeout\"", NULL },
	[WORKERS_SNI_FULL] = { "sni_full", "sni", "full", "gatekeeper_sni_flows_total",
			       "how=\"full\"", NULL },
	[WORKERS_SNI_UNKNOWN] = { "sni_unknown", "sni", "unknown name", "gatekeeper_sni_unknown_total",
				  NULL, "Decided connections whose name no site takes (sni.unknown_name)." },
	[WORKERS_SNI_RSTS] = { "sni_rsts", "sni", "RSTs", "gatekeeper_sni_rsts_total", NULL,
			       "RSTs sent to servers and clients of connections refused by name." },
};

static void bump(_Atomic uint64_t *counter)
{
	/* single writer: a relaxed load + store is enough and cheaper than an RMW */
	atomic_store_explicit(counter, atomic_load_explicit(counter, memory_order_relaxed) + 1,
			      memory_order_relaxed);
}

static void send_rst(struct worker *w, const struct packet_tcp *syn)
{
	uint8_t rst[PACKET_RST_MAX];
	size_t len = packet_build_rst(syn, rst, sizeof(rst));
	ssize_t n = -1;

	/* MSG_DONTWAIT: a worker sleeps only in its queue's receive. With the
	 * socket's send buffer full, this RST is lost (counted) and the SYN
	 * still dropped, rather than every managed SYN waiting behind it. */
	if (syn->family == AF_INET) {
		struct sockaddr_in to = {.sin_family = AF_INET};
		memcpy(&to.sin_addr, syn->saddr, 4);
		n = sendto(w->raw4, rst, len, MSG_DONTWAIT, (struct sockaddr *)&to, sizeof(to));
	} else {
		struct sockaddr_in6 to = {.sin6_family = AF_INET6};
		memcpy(&to.sin6_addr, syn->saddr, 16);
		n = sendto(w->raw6, rst, len, MSG_DONTWAIT, (struct sockaddr *)&to, sizeof(to));
	}
	bump(&w->figure[n == (ssize_t)len ? WORKERS_RST_SENT : WORKERS_RST_FAILED]);
}

/* A worker's answer for one packet: the verdict, and whether the packet
 * leaves with the decided mark (RULES_DECIDED_MARK) added to its own. */
struct decision {
	int verdict;
	bool decided;
};

/* What a worker does with a packet it cannot decide: accepted without
 * the mark, the kernel guard behind the queue decides it by its
 * destination (dropped or rejected when that endpoint is offline), never
 * "accepted because malformed". Without a guard it is dropped. */
static struct decision undecided(const struct worker *w)
{
	return (struct decision){w->guard ? NF_ACCEPT : NF_DROP, false};
}

static struct decision decide(struct worker *w, const struct sites *sites,
			      const struct queue_packet *pkt)
{
	struct packet_tcp tcp;
	struct site *site;

	if (packet_parse(pkt->data, pkt->len, &tcp) != PACKET_OK) {
		bump(&w->figure[WORKERS_MALFORMED]);
		return undecided(w);
	}
	if (!packet_is_syn(&tcp)) {
		bump(&w->figure[WORKERS_NOT_SYN]);
		return (struct decision){NF_ACCEPT, false};
	}
	site = sites_lookup(sites, tcp.family, tcp.daddr, tcp.dport);
	if (!site) {
		const struct site_endpoint *shared =
			sites_lookup_shared(sites, tcp.family, tcp.daddr, tcp.dport);
		enum site_verdict v;

		if (!shared) {
			bump(&w->figure[WORKERS_UNMANAGED]);
			return (struct decision){NF_ACCEPT, false};
		}
		/* several sites here: unless every name would get the same
		 * verdict, the SYN passes and its ClientHello decides (the
		 * kernel marks the flow for the SNI queue) */
		bump(&w->figure[WORKERS_SHARED]);
		if (!site_endpoint_agree(shared, tcp.family, tcp.saddr, &v))
			return (struct decision){NF_ACCEPT, true};
		if (v == SITE_VERDICT_REJECT)
			send_rst(w, &tcp);
		return (struct decision){v == SITE_VERDICT_ACCEPT ? NF_ACCEPT : NF_DROP,
					 v == SITE_VERDICT_ACCEPT};
	}
	if (tcp.first_fragment)
		bump(&w->figure[WORKERS_FRAGMENTS]);
	switch (site_decide_from(site, w->slot, tcp.family, tcp.saddr)) {
	case SITE_VERDICT_ACCEPT:
		return (struct decision){NF_ACCEPT, true};
	case SITE_VERDICT_REJECT:
		/* the first fragment of a SYN: the RST refuses it just the same */
		send_rst(w, &tcp);
		return (struct decision){NF_DROP, false};
	case SITE_VERDICT_DROP:
		return (struct decision){NF_DROP, false};
	}
	return undecided(w);
}

static void worker_batch(struct worker *w, const struct queue_packet *pkts, int n)
{
	struct workers *owner = w->owner;
	const struct sites *sites;

	/* announce the generation before reading the table: a swapper that
	 * sees an older one waits for us to finish */
	atomic_store(&w->active_gen, atomic_load(&owner->gen));
	sites = atomic_load(&owner->sites);
	for (int i = 0; i < n; i++) {
		struct decision d = decide(w, sites, &pkts[i]);

		bump(&w->figure[WORKERS_PACKETS]);
		queue_add_verdict(w->queue, pkts[i].id, d.verdict, d.decided,
				  pkts[i].mark | RULES_DECIDED_MARK);
	}
	atomic_store(&w->active_gen, 0);
	if (queue_flush_verdicts(w->queue) < 0)
		bump(&w->figure[WORKERS_VERDICT_ERRORS]);
}

/* The SNI queue's round: a batch (or, idle, only what is due) decided by
 * sni_path, its per-packet verdicts sent. */
static void sni_round(struct worker *w, const struct queue_packet *pkts, int n)
{
	struct workers *owner = w->owner;
	const struct sites *sites;

	atomic_store(&w->active_gen, atomic_load(&owner->gen));
	sites = atomic_load(&owner->sites);
	if (n > 0)
		sni_path_batch(w->sni, w->queue, sites, pkts, n, clock_now_ms());
	else
		sni_path_expire(w->sni, w->queue, sites, clock_now_ms());
	atomic_store(&w->active_gen, 0);
	if (queue_flush_verdicts(w->queue) < 0)
		bump(&w->figure[WORKERS_VERDICT_ERRORS]);
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct queue_packet pkts[QUEUE_BATCH];

	for (;;) {
		/* one syscall sleeps and receives: no poll() before each batch */
		int n = queue_recv_batch(w->queue, pkts, true);
		unsigned refused;

		if (atomic_load_explicit(&w->owner->stopping, memory_order_relaxed))
			break;
		atomic_store_explicit(&w->heartbeat, clock_coarse_now_s(), memory_order_relaxed);
		refused = queue_take_kernel_errors(w->queue);
		if (refused)
			atomic_fetch_add_explicit(&w->figure[WORKERS_VERDICT_ERRORS], refused, memory_order_relaxed);
		if (w->sni && n >= 0) {
			sni_round(w, pkts, n);
			continue;
		}
		if (n > 0) {
			worker_batch(w, pkts, n);
			continue;
		}
		if (n < 0) {
			bump(&w->figure[WORKERS_RECV_ERRORS]);
			/* a socket that keeps failing must not spin the core */
			struct timespec pause = {.tv_nsec = 10 * 1000 * 1000};
			nanosleep(&pause, NULL);
		}
	}
	return NULL;
}

/* Room in the socket buffer for a full queue (see WORKER_RCVBUF_PER_PACKET). */
static int worker_rcvbuf(uint32_t maxlen)
{
	uint64_t bytes = (uint64_t)maxlen * WORKER_RCVBUF_PER_PACKET;

	if (bytes < WORKER_RCVBUF_MIN)
		bytes = WORKER_RCVBUF_MIN;
	if (bytes > WORKER_RCVBUF_MAX)
		bytes = WORKER_RCVBUF_MAX;
	return (int)bytes;
}

static int worker_open(struct worker *w, const struct config *cfg, uint16_t num, bool sni)
{
	struct queue_options opts = {
		.num = num,
		.fail_open = cfg->queue.fail_open,
		.maxlen = cfg->queue.maxlen,
		.rcvbuf = worker_rcvbuf(cfg->queue.maxlen),
		/* the SNI worker wakes often enough to end held flows on time */
		.idle_ms = sni ? WORKER_SNI_IDLE_MS : WORKER_IDLE_MS,
		.copy_range = sni ? SNI_PATH_COPY_RANGE : 0,
		.per_packet_verdicts = sni,
	};

	w->num = num;
	w->raw4 = socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_RAW);
	w->raw6 = socket(AF_INET6, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_RAW);
	if (w->raw4 < 0 || w->raw6 < 0) {
		log_error_errno("cannot open the raw sockets that send RSTs (needs CAP_NET_RAW)");
		return -1;
	}
	w->queue = queue_open(&opts);
	if (!w->queue)
		return -1;
	if (sni && !(w->sni = sni_path_new(cfg, w->raw4, w->raw6, w->slot))) {
		log_error("the SNI worker: out of memory");
		return -1;
	}
	return 0;
}

struct workers *workers_open(const struct config *cfg, struct sites *sites, bool guard)
{
	struct workers *ws = calloc(1, sizeof(*ws));

	if (!ws)
		return NULL;
	atomic_init(&ws->sites, sites);
	atomic_init(&ws->gen, 1);
	atomic_init(&ws->stopping, false);
	ws->count = (cfg->queue.count ? cfg->queue.count : 1) + (sites_shared_count(sites) ? 1 : 0);
	ws->workers = calloc(ws->count, sizeof(*ws->workers));
	if (!ws->workers) {
		log_error_errno("workers");
		goto fail;
	}
	for (size_t i = 0; i < ws->count; i++) {
		ws->workers[i].owner = ws;
		ws->workers[i].slot = (unsigned)i;
		ws->workers[i].guard = guard;
		ws->workers[i].raw4 = ws->workers[i].raw6 = -1;
		atomic_init(&ws->workers[i].heartbeat, clock_coarse_now_s());
	}
	/* the SNI worker, if any, is the last: queue and counter slot next
	 * to the SYN queues' (sites.c keeps one slot more for it) */
	for (size_t i = 0; i < ws->count; i++)
		if (worker_open(&ws->workers[i], cfg, (uint16_t)(cfg->queue.num + i),
				i == (size_t)(cfg->queue.count ? cfg->queue.count : 1)) < 0)
			goto fail;
	return ws;
fail:
	workers_close(ws);
	return NULL;
}

int workers_run(struct workers *ws)
{
	for (size_t i = 0; i < ws->count; i++) {
		errno = pthread_create(&ws->workers[i].thread, NULL, worker_main, &ws->workers[i]);
		if (errno) {
			log_error_errno("cannot start a worker thread");
			return -1;
		}
		ws->workers[i].started = true;
		/* `top -H`, /proc/PID/task/TID/comm: which thread serves which
		 * queue, for an operator (and the soak's sampler) to watch */
		char name[16];
		snprintf(name, sizeof(name), "gk-queue%u", (unsigned)ws->workers[i].num);
		(void)pthread_setname_np(ws->workers[i].thread, name);
	}
	return 0;
}

void workers_close(struct workers *ws)
{
	if (!ws)
		return;
	atomic_store(&ws->stopping, true);
	for (size_t i = 0; ws->workers && i < ws->count; i++) {
		struct worker *w = &ws->workers[i];
		/* if the wake-up is lost (buffer full), packets or the idle
		 * timeout end the wait just the same */
		if (w->started && queue_wake(w->queue) < 0)
			log_warn_errno("cannot wake the worker of queue %u", queue_num(w->queue));
	}
	for (size_t i = 0; ws->workers && i < ws->count; i++) {
		struct worker *w = &ws->workers[i];
		if (w->started)
			pthread_join(w->thread, NULL);
		sni_path_free(w->sni); /* held packets: the kernel drops them with the queue */
		queue_close(w->queue);
		if (w->raw4 >= 0)
			close(w->raw4);
		if (w->raw6 >= 0)
			close(w->raw6);
	}
	free(ws->workers);
	free(ws);
}

struct sites *workers_swap_sites(struct workers *ws, struct sites *sites)
{
	struct sites *old = atomic_exchange(&ws->sites, sites);

	workers_quiesce(ws);
	return old;
}

/* A worker reads the site table, and the allow-lists it points to, only
 * between announcing a generation and announcing 0. Once every worker is
 * idle or announces the new generation, it can no longer hold a pointer
 * read before the bump: what was unpublished before this call may go. */
void workers_quiesce(struct workers *ws)
{
	uint64_t gen = atomic_fetch_add(&ws->gen, 1) + 1;

	for (size_t i = 0; i < ws->count; i++) {
		/* a batch is at most QUEUE_BATCH decisions: this wait is microseconds */
		for (;;) {
			uint64_t active = atomic_load(&ws->workers[i].active_gen);
			if (active == 0 || active >= gen)
				break;
			sched_yield();
		}
	}
}

void workers_set_sni_hold(struct workers *ws, uint32_t hold_ms)
{
	for (size_t i = 0; i < ws->count; i++)
		if (ws->workers[i].sni)
			sni_path_set_hold(ws->workers[i].sni, hold_ms);
}

void workers_get_stats(const struct workers *ws, struct workers_stats *out)
{
	memset(out, 0, sizeof(*out));
	for (size_t i = 0; i < ws->count; i++) {
		const struct worker *w = &ws->workers[i];

		for (size_t f = 0; f < WORKERS_N_FIGURES; f++)
			out->figure[f] += atomic_load(&w->figure[f]);
		for (size_t f = 0; w->sni && f < SNI_PATH_N_FIGURES; f++)
			out->figure[WORKERS_SNI_PACKETS + f] += sni_path_figure(w->sni, f);
	}
}

uint64_t workers_oldest_heartbeat(const struct workers *ws)
{
	uint64_t oldest = UINT64_MAX;

	for (size_t i = 0; i < ws->count; i++) {
		uint64_t hb = atomic_load(&ws->workers[i].heartbeat);
		if (hb < oldest)
			oldest = hb;
	}
	return oldest;
}
