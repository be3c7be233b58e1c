#include "cut.h"

#include <arpa/inet.h>
#include <errno.h>
#include <libmnl/libmnl.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_conntrack.h>
#include <linux/netfilter/nf_conntrack_tcp.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "log.h"
#include "packet.h"
#include "rules.h"

struct cut {
	int raw4, raw6;
	struct mnl_socket *nl;
	unsigned seq;
	uint64_t next_ms; /* when the next round is due (monotonic) */
	bool dump_warned;
};

/* A connection of a cut site as conntrack lists it, oriented client to
 * server whatever direction conntrack saw first. */
struct flow {
	int family;
	uint8_t client[16], server[16];
	uint16_t client_port, server_port; /* host order */
};

/* What one round gathers, per site (indexed as sites_at). */
struct round {
	struct cut *cut;
	struct sites *sites;
	size_t *flows;
	uint64_t *probes;
	uint32_t seq_base, ack_base;
};

static int open_raw(int family)
{
	int fd = socket(family, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_RAW);
	unsigned mark = RULES_CHECK_MARK;

	if (fd < 0)
		return -1;
	/* the cut rules let the probes pass; without the mark they would be
	 * answered with a RST at output like any packet of the flow */
	if (setsockopt(fd, SOL_SOCKET, SO_MARK, &mark, sizeof(mark)) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

struct cut *cut_open(void)
{
	struct cut *cut = calloc(1, sizeof(*cut));
	struct timeval tv = {.tv_sec = 1};

	if (!cut)
		return NULL;
	cut->raw4 = open_raw(AF_INET);
	cut->raw6 = open_raw(AF_INET6);
	if (cut->raw4 < 0 || cut->raw6 < 0) {
		log_error_errno("cut: cannot open the marked raw sockets of the probes (needs "
				"CAP_NET_RAW and CAP_NET_ADMIN)");
		goto fail;
	}
	cut->nl = mnl_socket_open2(NETLINK_NETFILTER, SOCK_CLOEXEC);
	if (!cut->nl || mnl_socket_bind(cut->nl, 0, MNL_SOCKET_AUTOPID) < 0) {
		log_error_errno("cut: cannot open the conntrack netlink socket");
		goto fail;
	}
	/* a dump always ends, but never wait on a kernel that does not answer */
	setsockopt(mnl_socket_get_fd(cut->nl), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	return cut;
fail:
	cut_close(cut);
	return NULL;
}

void cut_close(struct cut *cut)
{
	if (!cut)
		return;
	if (cut->raw4 > 0)
		close(cut->raw4);
	if (cut->raw6 > 0)
		close(cut->raw6);
	if (cut->nl)
		mnl_socket_close(cut->nl);
	free(cut);
}

static bool any_cut(const struct sites *sites)
{
	for (size_t i = 0; i < sites_count(sites); i++)
		if (site_cut(sites_at(sites, i)))
			return true;
	return false;
}

/* ---- sending ---- */

static void send_one(struct round *r, int family, const uint8_t *saddr, const uint8_t *daddr,
		     uint16_t sport, uint16_t dport, uint32_t seq, size_t site_index)
{
	uint8_t pkt[PACKET_RST_MAX];
	size_t len = packet_build_segment(family, saddr, daddr, sport, dport, seq, r->ack_base,
					  PACKET_TCP_ACK, pkt, sizeof(pkt));
	ssize_t n;

	if (family == AF_INET) {
		struct sockaddr_in to = {.sin_family = AF_INET};

		memcpy(&to.sin_addr, daddr, 4);
		n = sendto(r->cut->raw4, pkt, len, MSG_DONTWAIT, (struct sockaddr *)&to, sizeof(to));
	} else {
		struct sockaddr_in6 to = {.sin6_family = AF_INET6};

		memcpy(&to.sin6_addr, daddr, 16);
		n = sendto(r->cut->raw6, pkt, len, MSG_DONTWAIT, (struct sockaddr *)&to, sizeof(to));
	}
	if (n == (ssize_t)len)
		r->probes[site_index]++;
}

/* Both ends, two probes each: sequence numbers 2^31 apart, so at least one
 * lies outside the end's window whatever it is (a window is < 2^30). */
static void probe_flow(struct round *r, const struct flow *f, size_t site_index)
{
	for (uint32_t k = 0; k < 2; k++) {
		uint32_t seq = r->seq_base + k * 0x80000000u;

		send_one(r, f->family, f->client, f->server, f->client_port, f->server_port, seq,
			 site_index);
		send_one(r, f->family, f->server, f->client, f->server_port, f->client_port, seq,
			 site_index);
	}
}

/* ---- the conntrack dump ---- */

#define MAX_ATTR 32

static int attr_cb(const struct nlattr *attr, void *data)
{
	const struct nlattr **tb = data;
	uint16_t type = mnl_attr_get_type(attr);

	if (type < MAX_ATTR)
		tb[type] = attr;
	return MNL_CB_OK;
}

static bool nested(const struct nlattr *attr, const struct nlattr **tb)
{
	memset(tb, 0, MAX_ATTR * sizeof(*tb));
	return attr && mnl_attr_parse_nested(attr, attr_cb, tb) >= 0;
}

/* CTA_TUPLE_ORIG into SRC/DST and their ports; false if it is not TCP or
 * not of FAMILY's size. */
static bool parse_tuple(const struct nlattr *tuple, int family, uint8_t *src, uint8_t *dst,
			uint16_t *sport, uint16_t *dport)
{
	const struct nlattr *tb[MAX_ATTR], *ip[MAX_ATTR], *proto[MAX_ATTR];
	size_t alen = family == AF_INET ? 4 : 16;
	int src_type = family == AF_INET ? CTA_IP_V4_SRC : CTA_IP_V6_SRC;
	int dst_type = family == AF_INET ? CTA_IP_V4_DST : CTA_IP_V6_DST;

	if (!nested(tuple, tb) || !nested(tb[CTA_TUPLE_IP], ip) ||
	    !nested(tb[CTA_TUPLE_PROTO], proto))
		return false;
	if (!ip[src_type] || !ip[dst_type] || mnl_attr_get_payload_len(ip[src_type]) != alen ||
	    mnl_attr_get_payload_len(ip[dst_type]) != alen)
		return false;
	if (!proto[CTA_PROTO_NUM] || mnl_attr_get_payload_len(proto[CTA_PROTO_NUM]) < 1 ||
	    mnl_attr_get_u8(proto[CTA_PROTO_NUM]) != IPPROTO_TCP)
		return false;
	if (!proto[CTA_PROTO_SRC_PORT] || !proto[CTA_PROTO_DST_PORT] ||
	    mnl_attr_get_payload_len(proto[CTA_PROTO_SRC_PORT]) < 2 ||
	    mnl_attr_get_payload_len(proto[CTA_PROTO_DST_PORT]) < 2)
		return false;
	memset(src, 0, 16);
	memset(dst, 0, 16);
	memcpy(src, mnl_attr_get_payload(ip[src_type]), alen);
	memcpy(dst, mnl_attr_get_payload(ip[dst_type]), alen);
	*sport = ntohs(mnl_attr_get_u16(proto[CTA_PROTO_SRC_PORT]));
	*dport = ntohs(mnl_attr_get_u16(proto[CTA_PROTO_DST_PORT]));
	return true;
}

/* Connections one end may still hold. CLOSE is one of them: a RST seen by
 * conntrack (the cut's own, sent to the end whose packet met the rule) puts
 * the flow there while the other end, idle, still holds it; it is probed
 * until conntrack forgets the flow (10 s), and an end that has no socket
 * any more just answers with a RST of its own. TIME_WAIT (both ends sent
 * their FIN) is left alone. */
static bool tcp_open(const struct nlattr *protoinfo)
{
	const struct nlattr *tb[MAX_ATTR], *tcp[MAX_ATTR];
	uint8_t state;

	if (!nested(protoinfo, tb) || !nested(tb[CTA_PROTOINFO_TCP], tcp) ||
	    !tcp[CTA_PROTOINFO_TCP_STATE] || mnl_attr_get_payload_len(tcp[CTA_PROTOINFO_TCP_STATE]) < 1)
		return false;
	state = mnl_attr_get_u8(tcp[CTA_PROTOINFO_TCP_STATE]);
	return state == TCP_CONNTRACK_ESTABLISHED || state == TCP_CONNTRACK_FIN_WAIT ||
	       state == TCP_CONNTRACK_CLOSE_WAIT || state == TCP_CONNTRACK_LAST_ACK ||
	       state == TCP_CONNTRACK_CLOSE;
}

/* The cut site whose endpoint ADDR:PORT is, or NULL. */
static struct site *cut_site(struct sites *sites, int family, const uint8_t *addr, uint16_t port,
			     size_t *index)
{
	struct site *site = sites_lookup(sites, family, addr, port);

	if (!site || !site_cut(site))
		return NULL;
	for (size_t i = 0; i < sites_count(sites); i++)
		if (sites_at(sites, i) == site)
			*index = i;
	return site;
}

static int entry_cb(const struct nlmsghdr *nlh, void *data)
{
	struct round *r = data;
	const struct nfgenmsg *nfg = mnl_nlmsg_get_payload(nlh);
	const struct nlattr *tb[MAX_ATTR] = {0};
	struct flow f = {.family = nfg->nfgen_family};
	uint8_t src[16], dst[16];
	uint16_t sport, dport;
	struct site *site;
	size_t index = 0;

	if (f.family != AF_INET && f.family != AF_INET6)
		return MNL_CB_OK;
	if (mnl_attr_parse(nlh, sizeof(*nfg), attr_cb, tb) < 0 || !tb[CTA_TUPLE_ORIG] ||
	    !parse_tuple(tb[CTA_TUPLE_ORIG], f.family, src, dst, &sport, &dport) ||
	    !tcp_open(tb[CTA_PROTOINFO]))
		return MNL_CB_OK;
	/* conntrack's "original" is the direction it saw first: the SYN's for
	 * a connection it saw open, either for one it picked up mid-stream */
	if ((site = cut_site(r->sites, f.family, dst, dport, &index))) {
		memcpy(f.client, src, 16);
		memcpy(f.server, dst, 16);
		f.client_port = sport;
		f.server_port = dport;
	} else if ((site = cut_site(r->sites, f.family, src, sport, &index))) {
		memcpy(f.client, dst, 16);
		memcpy(f.server, src, 16);
		f.client_port = dport;
		f.server_port = sport;
	} else {
		return MNL_CB_OK;
	}
	/* the allow-list's sources are let in while offline: not cut either */
	if (site_allows(site, f.family, f.client))
		return MNL_CB_OK;
	r->flows[index]++;
	probe_flow(r, &f, index);
	return MNL_CB_OK;
}

static int dump_family(struct round *r, int family)
{
	struct cut *cut = r->cut;
	char buf[32768]; /* MNL_SOCKET_BUFFER_SIZE is 8 KiB at most; larger reads fewer times */
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	struct nfgenmsg *nfg;
	unsigned portid = mnl_socket_get_portid(cut->nl), seq = ++cut->seq;
	ssize_t n;
	int rc;

	nlh->nlmsg_type = (NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_GET;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
	nlh->nlmsg_seq = seq;
	nfg = mnl_nlmsg_put_extra_header(nlh, sizeof(*nfg));
	nfg->nfgen_family = (uint8_t)family;
	nfg->version = NFNETLINK_V0;
	nfg->res_id = 0;
	if (mnl_socket_sendto(cut->nl, nlh, nlh->nlmsg_len) < 0)
		return -1;
	for (;;) {
		n = mnl_socket_recvfrom(cut->nl, buf, sizeof(buf));
		if (n <= 0)
			return -1;
		rc = mnl_cb_run(buf, (size_t)n, seq, portid, entry_cb, r);
		if (rc == MNL_CB_STOP)
			return 0;
		if (rc < 0)
			return -1;
	}
}

void cut_round(struct cut *cut, struct sites *sites)
{
	size_t n = sites_count(sites);
	struct round r = {.cut = cut, .sites = sites};
	uint32_t rnd[2] = {0};

	if (!cut || !any_cut(sites))
		return;
	cut->next_ms = clock_now_ms() + CUT_ROUND_MS;
	r.flows = calloc(n, sizeof(*r.flows));
	r.probes = calloc(n, sizeof(*r.probes));
	if (!r.flows || !r.probes) {
		free(r.flows);
		free(r.probes);
		return;
	}
	/* unpredictable, so nobody on the path can guess and pre-empt them */
	if (getrandom(rnd, sizeof(rnd), GRND_NONBLOCK) != sizeof(rnd)) {
		rnd[0] = (uint32_t)clock_now_us();
		rnd[1] = rnd[0] * 2654435761u;
	}
	r.seq_base = rnd[0];
	r.ack_base = rnd[1];
	for (int f = 0; f < 2; f++) {
		if (dump_family(&r, f ? AF_INET6 : AF_INET) < 0 && !cut->dump_warned) {
			log_warn_errno("cut: the conntrack listing failed: idle connections of cut "
				       "sites are not probed (busy ones are still cut)");
			cut->dump_warned = true;
		}
	}
	for (size_t i = 0; i < n; i++) {
		struct site *site = sites_at(sites, i);

		if (site_cut(site))
			site_cut_count(site, r.flows[i], r.probes[i]);
	}
	free(r.flows);
	free(r.probes);
}

void cut_tick(struct cut *cut, struct sites *sites)
{
	if (cut && any_cut(sites) && clock_now_ms() >= cut->next_ms)
		cut_round(cut, sites);
}

int cut_timeout_ms(const struct cut *cut, const struct sites *sites)
{
	uint64_t now;

	if (!cut || !any_cut(sites))
		return -1;
	now = clock_now_ms();
	return now >= cut->next_ms ? 0 : (int)(cut->next_ms - now);
}
