#include "queue.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
#include <libmnl/libmnl.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_queue.h>
#include <libnetfilter_queue/libnetfilter_queue.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"
#include "packet.h"

/* A queued packet's message: headers and attributes plus the copied bytes. */
#define QUEUE_MSG_OVERHEAD 512
/* One verdict message: nlmsghdr + nfgenmsg + NFQA_VERDICT_HDR + NFQA_MARK. */
#define QUEUE_VERDICT_SIZE 64
/* Config messages and their acks are small. */
#define QUEUE_CONFIG_BUF 8192

static const struct sockaddr_nl kernel_addr = {.nl_family = AF_NETLINK};

struct queue {
	struct mnl_socket *nl;
	int fd;
	uint32_t portid;
	uint16_t num;
	uint32_t seq;
	struct mmsghdr msgs[QUEUE_BATCH];
	struct iovec iov[QUEUE_BATCH];
	uint8_t *rx; /* QUEUE_BATCH messages of msg_size bytes */
	size_t msg_size;
	bool per_packet; /* never a batch verdict (queue_options) */
	/* verdicts waiting to be sent: a run of equal verdicts is one
	 * NFQNL_MSG_VERDICT_BATCH, so the pending run is kept open here */
	_Alignas(8) char tx[QUEUE_BATCH * QUEUE_VERDICT_SIZE]; /* netlink messages: aligned */
	size_t tx_len;
	unsigned tx_count;
	bool run_open;
	uint32_t run_last_id;
	int run_verdict;
	bool run_set_mark;
	uint32_t run_mark;
	unsigned run_len;
	unsigned kernel_errors; /* refused verdicts, since the last take */
};

/* Sends a config message and waits for the kernel's ack, so a refused bind
 * (queue taken, no nfnetlink_queue) is reported here, not lost. */
static int queue_config(struct queue *queue, struct nlmsghdr *nlh)
{
	char buf[QUEUE_CONFIG_BUF];
	ssize_t n;

	nlh->nlmsg_flags |= NLM_F_ACK;
	nlh->nlmsg_seq = ++queue->seq;
	if (mnl_socket_sendto(queue->nl, nlh, nlh->nlmsg_len) < 0)
		return -1;
	n = mnl_socket_recvfrom(queue->nl, buf, sizeof(buf));
	if (n < 0)
		return -1;
	return mnl_cb_run(buf, (size_t)n, queue->seq, queue->portid, NULL, NULL) < 0 ? -1 : 0;
}

static int queue_bind(struct queue *queue, const struct queue_options *opts)
{
	char buf[QUEUE_CONFIG_BUF];
	struct nlmsghdr *nlh;
	uint32_t flags = NFQA_CFG_F_GSO | (opts->fail_open ? NFQA_CFG_F_FAIL_OPEN : 0);

	nlh = nfq_nlmsg_put(buf, NFQNL_MSG_CONFIG, opts->num);
	nfq_nlmsg_cfg_put_cmd(nlh, AF_UNSPEC, NFQNL_CFG_CMD_BIND);
	if (queue_config(queue, nlh) < 0) {
		log_error_errno("cannot bind NFQUEUE %u%s", opts->num,
				errno == EBUSY ? " (another process holds it)" : "");
		return -1;
	}
	nlh = nfq_nlmsg_put(buf, NFQNL_MSG_CONFIG, opts->num);
	nfq_nlmsg_cfg_put_params(nlh, NFQNL_COPY_PACKET,
				 opts->copy_range ? opts->copy_range : PACKET_COPY_RANGE);
	nfq_nlmsg_cfg_put_qmaxlen(nlh, opts->maxlen);
	mnl_attr_put_u32(nlh, NFQA_CFG_FLAGS, htonl(flags));
	mnl_attr_put_u32(nlh, NFQA_CFG_MASK, htonl(NFQA_CFG_F_GSO | NFQA_CFG_F_FAIL_OPEN));
	if (queue_config(queue, nlh) < 0) {
		log_error_errno("cannot configure NFQUEUE %u", opts->num);
		return -1;
	}
	return 0;
}

static void queue_tune_socket(struct queue *queue, int rcvbuf, unsigned idle_ms)
{
	int fd = queue->fd;
	int one = 1;
	struct timeval idle = {.tv_sec = idle_ms / 1000, .tv_usec = (idle_ms % 1000) * 1000};

	/* A burst larger than the buffer must not turn into an error on recv:
	 * the kernel counts what it could not deliver (queue_user_dropped). */
	if (setsockopt(fd, SOL_NETLINK, NETLINK_NO_ENOBUFS, &one, sizeof(one)) < 0)
		log_warn_errno("NFQUEUE: NETLINK_NO_ENOBUFS");
	if (rcvbuf > 0 && setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof(rcvbuf)) < 0 &&
	    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf)) < 0)
		log_warn_errno("NFQUEUE: receive buffer of %d bytes", rcvbuf);
	/* a waiting receive returns after this long even when nothing comes */
	if (idle_ms > 0 && setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &idle, sizeof(idle)) < 0)
		log_warn_errno("NFQUEUE: receive timeout");
}

struct queue *queue_open(const struct queue_options *opts)
{
	struct queue *queue = calloc(1, sizeof(*queue));

	if (!queue)
		return NULL;
	queue->num = opts->num;
	queue->per_packet = opts->per_packet_verdicts;
	queue->msg_size = QUEUE_MSG_OVERHEAD + (opts->copy_range ? opts->copy_range : PACKET_COPY_RANGE);
	queue->rx = malloc(QUEUE_BATCH * queue->msg_size);
	if (!queue->rx) {
		log_error("NFQUEUE %u: out of memory", opts->num);
		goto fail;
	}
	queue->nl = mnl_socket_open(NETLINK_NETFILTER);
	if (!queue->nl) {
		log_error_errno("cannot open a netfilter netlink socket");
		goto fail;
	}
	if (mnl_socket_bind(queue->nl, 0, MNL_SOCKET_AUTOPID) < 0) {
		log_error_errno("cannot bind the netfilter netlink socket");
		goto fail;
	}
	queue->fd = mnl_socket_get_fd(queue->nl);
	queue->portid = mnl_socket_get_portid(queue->nl);
	if (queue_bind(queue, opts) < 0)
		goto fail;
	queue_tune_socket(queue, opts->rcvbuf, opts->idle_ms);
	for (size_t i = 0; i < QUEUE_BATCH; i++) {
		queue->iov[i].iov_base = queue->rx + i * queue->msg_size;
		queue->iov[i].iov_len = queue->msg_size;
		queue->msgs[i].msg_hdr.msg_iov = &queue->iov[i];
		queue->msgs[i].msg_hdr.msg_iovlen = 1;
	}
	return queue;
fail:
	queue_close(queue);
	return NULL;
}

void queue_close(struct queue *queue)
{
	if (!queue)
		return;
	if (queue->nl)
		mnl_socket_close(queue->nl);
	free(queue->rx);
	free(queue);
}

int queue_fd(const struct queue *queue)
{
	return queue->fd;
}

uint16_t queue_num(const struct queue *queue)
{
	return queue->num;
}

/* Extracts id, mark and payload from one NFQNL_MSG_PACKET; 0 or -1. A
 * direct walk over the attributes with the bounds checks inline: only three
 * of them matter here, and the walk is a good part of our own per-packet
 * work. */
static int queue_parse_packet(const struct nlmsghdr *nlh, struct queue_packet *pkt)
{
	const struct nfqnl_msg_packet_hdr *ph = NULL;
	const uint8_t *p = (const uint8_t *)nlh + NLMSG_HDRLEN + NLMSG_ALIGN(sizeof(struct nfgenmsg));
	const uint8_t *end = (const uint8_t *)nlh + nlh->nlmsg_len;

	if (NFNL_MSG_TYPE(nlh->nlmsg_type) != NFQNL_MSG_PACKET)
		return -1;
	pkt->data = NULL;
	pkt->len = 0;
	pkt->mark = 0;
	while (end - p >= (ptrdiff_t)sizeof(struct nlattr)) {
		const struct nlattr *attr = (const struct nlattr *)p;
		size_t len = attr->nla_len;

		if (len < sizeof(*attr) || len > (size_t)(end - p))
			return -1;
		switch (attr->nla_type & NLA_TYPE_MASK) {
		case NFQA_PACKET_HDR:
			if (len - NLA_HDRLEN < sizeof(*ph))
				return -1;
			ph = (const void *)(p + NLA_HDRLEN);
			break;
		case NFQA_PAYLOAD:
			pkt->data = p + NLA_HDRLEN;
			pkt->len = len - NLA_HDRLEN;
			break;
		case NFQA_MARK: /* sent only when the packet has one */
			if (len - NLA_HDRLEN < sizeof(uint32_t))
				return -1;
			{
				uint32_t be;
				memcpy(&be, p + NLA_HDRLEN, sizeof(be));
				pkt->mark = ntohl(be);
			}
			break;
		}
		p += NLA_ALIGN(len);
	}
	if (!ph)
		return -1;
	pkt->id = ntohl(ph->packet_id);
	return 0;
}

/* Verdicts carry no ack request, so an NLMSG_ERROR that arrives is the
 * kernel refusing one (a lost capability, an unknown packet id). */
static bool queue_is_error(const struct nlmsghdr *nlh)
{
	const struct nlmsgerr *err = (const struct nlmsgerr *)NLMSG_DATA(nlh);

	return nlh->nlmsg_len >= NLMSG_LENGTH(sizeof(*err)) && err->error != 0;
}

unsigned queue_take_kernel_errors(struct queue *queue)
{
	unsigned n = queue->kernel_errors;

	queue->kernel_errors = 0;
	return n;
}

int queue_recv_batch(struct queue *queue, struct queue_packet *pkts, bool wait)
{
	/* MSG_WAITFORONE: sleep until the first message (at most the socket's
	 * receive timeout), then take what else is there without sleeping */
	int n = recvmmsg(queue->fd, queue->msgs, QUEUE_BATCH, wait ? MSG_WAITFORONE : MSG_DONTWAIT,
			 NULL);
	int count = 0;

	if (n < 0)
		return (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) ? 0 : -1;
	for (int i = 0; i < n; i++) {
		const struct nlmsghdr *nlh =
			(const struct nlmsghdr *)(queue->rx + (size_t)i * queue->msg_size);
		int len = (int)queue->msgs[i].msg_len;

		/* the kernel sends one packet per datagram; walk in case it batches */
		for (; len >= (int)sizeof(*nlh) && nlh->nlmsg_len >= sizeof(*nlh) &&
		       nlh->nlmsg_len <= (unsigned)len;
		     len -= (int)NLMSG_ALIGN(nlh->nlmsg_len),
		     nlh = (const struct nlmsghdr *)((const uint8_t *)nlh + NLMSG_ALIGN(nlh->nlmsg_len))) {
			if (count >= QUEUE_BATCH)
				break;
			if (queue_parse_packet(nlh, &pkts[count]) == 0)
				count++;
			else if (nlh->nlmsg_type == NLMSG_ERROR && queue_is_error(nlh))
				queue->kernel_errors++;
		}
	}
	return count;
}

int queue_wake(struct queue *queue)
{
	struct nlmsghdr nlh = {
		.nlmsg_len = NLMSG_HDRLEN,
		.nlmsg_type = NLMSG_NOOP,
	};
	struct sockaddr_nl self = {.nl_family = AF_NETLINK, .nl_pid = queue->portid};

	/* to our own port id: a user-to-user unicast the kernel just delivers */
	return sendto(queue->fd, &nlh, sizeof(nlh), MSG_DONTWAIT, (struct sockaddr *)&self,
		      sizeof(self)) < 0 ? -1 : 0;
}

/* Closes the pending run of equal verdicts into the outgoing buffer: one
 * NFQNL_MSG_VERDICT for a single packet, else one NFQNL_MSG_VERDICT_BATCH,
 * which the kernel applies to every packet of this queue up to the run's
 * last id. That is exactly the run: verdicts are added in id order and all
 * earlier packets already have theirs, in this message or a previous one. */
static void queue_close_run(struct queue *queue)
{
	struct nlmsghdr *nlh;

	if (!queue->run_open)
		return;
	nlh = nfq_nlmsg_put(queue->tx + queue->tx_len,
			    queue->run_len == 1 ? NFQNL_MSG_VERDICT : NFQNL_MSG_VERDICT_BATCH,
			    queue->num);
	nfq_nlmsg_verdict_put(nlh, (int)queue->run_last_id, queue->run_verdict);
	/* a batch verdict's mark applies to every packet of the run */
	if (queue->run_set_mark)
		nfq_nlmsg_verdict_put_mark(nlh, queue->run_mark);
	queue->tx_len += NLMSG_ALIGN(nlh->nlmsg_len);
	queue->tx_count++;
	queue->run_open = false;
}

void queue_add_verdict(struct queue *queue, uint32_t id, int verdict, bool set_mark,
		       uint32_t mark)
{
	/* a run may grow only while ids follow one another: a gap is a packet
	 * we have not decided (not received yet, or not ours to batch over) */
	if (!queue->per_packet && queue->run_open && queue->run_verdict == verdict &&
	    queue->run_set_mark == set_mark &&
	    (!set_mark || queue->run_mark == mark) && id == queue->run_last_id + 1) {
		queue->run_last_id = id;
		queue->run_len++;
		return;
	}
	queue_close_run(queue);
	if (queue->tx_count >= QUEUE_BATCH)
		queue_flush_verdicts(queue);
	queue->run_open = true;
	queue->run_last_id = id;
	queue->run_verdict = verdict;
	queue->run_set_mark = set_mark;
	queue->run_mark = mark;
	queue->run_len = 1;
}

int queue_flush_verdicts(struct queue *queue)
{
	ssize_t n;

	queue_close_run(queue);
	if (queue->tx_count == 0)
		return 0;
	n = sendto(queue->fd, queue->tx, queue->tx_len, 0, (const struct sockaddr *)&kernel_addr,
		   sizeof(kernel_addr));
	queue->tx_len = 0;
	queue->tx_count = 0;
	return n < 0 ? -1 : 0;
}

bool queue_subsystem_present(void)
{
	struct queue queue = {0};
	char buf[QUEUE_CONFIG_BUF];
	struct nlmsghdr *nlh;
	bool present;

	if (access("/proc/net/netfilter/nfnetlink_queue", F_OK) == 0)
		return true;
	/* Not listed: on a modular kernel the module is loaded on first use.
	 * PF_UNBIND is a no-op since Linux 3.8 but goes through nfnetlink,
	 * which asks the kernel to load the subsystem; the ack says whether
	 * it is there. */
	queue.nl = mnl_socket_open(NETLINK_NETFILTER);
	if (!queue.nl)
		return false;
	present = mnl_socket_bind(queue.nl, 0, MNL_SOCKET_AUTOPID) == 0;
	if (present) {
		queue.portid = mnl_socket_get_portid(queue.nl);
		nlh = nfq_nlmsg_put(buf, NFQNL_MSG_CONFIG, 0);
		nfq_nlmsg_cfg_put_cmd(nlh, AF_INET, NFQNL_CFG_CMD_PF_UNBIND);
		present = queue_config(&queue, nlh) == 0;
	}
	mnl_socket_close(queue.nl);
	return present;
}

int queue_read_kernel_stats(uint16_t num, struct queue_kernel_stats *out)
{
	FILE *f = fopen("/proc/net/netfilter/nfnetlink_queue", "re");
	char line[256];
	int found = -1;

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		unsigned qnum, portid, copy_mode, copy_range;
		uint64_t total, dropped, user_dropped;

		if (sscanf(line, "%u %u %" SCNu64 " %u %u %" SCNu64 " %" SCNu64, &qnum, &portid,
			   &total, &copy_mode, &copy_range, &dropped, &user_dropped) == 7 &&
		    qnum == num) {
			out->peer_portid = portid;
			out->queue_total = total;
			out->queue_dropped = dropped;
			out->user_dropped = user_dropped;
			found = 0;
			break;
		}
	}
	fclose(f);
	return found;
}
