#include "queue.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <libmnl/libmnl.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_queue.h>
#include <libnetfilter_queue/libnetfilter_queue.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "log.h"
#include "packet.h"

/* A queued packet's message: headers and attributes plus the copied bytes. */
#define QUEUE_MSG_SIZE (512 + PACKET_COPY_RANGE)
/* One verdict message: nlmsghdr + nfgenmsg + NFQA_VERDICT_HDR. */
#define QUEUE_VERDICT_SIZE 64
/* Config messages and their acks are small. */
#define QUEUE_CONFIG_BUF 8192

struct queue {
	struct mnl_socket *nl;
	uint32_t portid;
	uint16_t num;
	uint32_t seq;
	struct mmsghdr msgs[QUEUE_BATCH];
	struct iovec iov[QUEUE_BATCH];
	uint8_t rx[QUEUE_BATCH][QUEUE_MSG_SIZE];
	char tx[QUEUE_BATCH * QUEUE_VERDICT_SIZE];
	size_t tx_len;
	unsigned tx_count;
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
	nfq_nlmsg_cfg_put_params(nlh, NFQNL_COPY_PACKET, PACKET_COPY_RANGE);
	nfq_nlmsg_cfg_put_qmaxlen(nlh, opts->maxlen);
	mnl_attr_put_u32(nlh, NFQA_CFG_FLAGS, htonl(flags));
	mnl_attr_put_u32(nlh, NFQA_CFG_MASK, htonl(NFQA_CFG_F_GSO | NFQA_CFG_F_FAIL_OPEN));
	if (queue_config(queue, nlh) < 0) {
		log_error_errno("cannot configure NFQUEUE %u", opts->num);
		return -1;
	}
	return 0;
}

static void queue_tune_socket(struct queue *queue, int rcvbuf)
{
	int fd = mnl_socket_get_fd(queue->nl);
	int one = 1;

	/* A burst larger than the buffer must not turn into an error on recv:
	 * the kernel counts what it could not deliver (queue_user_dropped). */
	if (setsockopt(fd, SOL_NETLINK, NETLINK_NO_ENOBUFS, &one, sizeof(one)) < 0)
		log_warn_errno("NFQUEUE: NETLINK_NO_ENOBUFS");
	if (rcvbuf > 0 && setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof(rcvbuf)) < 0 &&
	    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf)) < 0)
		log_warn_errno("NFQUEUE: receive buffer of %d bytes", rcvbuf);
}

struct queue *queue_open(const struct queue_options *opts)
{
	struct queue *queue = calloc(1, sizeof(*queue));

	if (!queue)
		return NULL;
	queue->num = opts->num;
	queue->nl = mnl_socket_open(NETLINK_NETFILTER);
	if (!queue->nl) {
		log_error_errno("cannot open a netfilter netlink socket");
		goto fail;
	}
	if (mnl_socket_bind(queue->nl, 0, MNL_SOCKET_AUTOPID) < 0) {
		log_error_errno("cannot bind the netfilter netlink socket");
		goto fail;
	}
	queue->portid = mnl_socket_get_portid(queue->nl);
	if (queue_bind(queue, opts) < 0)
		goto fail;
	queue_tune_socket(queue, opts->rcvbuf);
	for (size_t i = 0; i < QUEUE_BATCH; i++) {
		queue->iov[i].iov_base = queue->rx[i];
		queue->iov[i].iov_len = sizeof(queue->rx[i]);
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
	free(queue);
}

int queue_fd(const struct queue *queue)
{
	return mnl_socket_get_fd(queue->nl);
}

uint16_t queue_num(const struct queue *queue)
{
	return queue->num;
}

/* Extracts id and payload from one NFQNL_MSG_PACKET; 0 or -1. */
static int queue_parse_packet(const struct nlmsghdr *nlh, struct queue_packet *pkt)
{
	struct nlattr *attr[NFQA_MAX + 1] = {0};
	const struct nfqnl_msg_packet_hdr *ph;

	if (NFNL_MSG_TYPE(nlh->nlmsg_type) != NFQNL_MSG_PACKET)
		return -1;
	if (nfq_nlmsg_parse(nlh, attr) < 0 || !attr[NFQA_PACKET_HDR])
		return -1;
	if (mnl_attr_get_payload_len(attr[NFQA_PACKET_HDR]) < sizeof(*ph))
		return -1;
	ph = mnl_attr_get_payload(attr[NFQA_PACKET_HDR]);
	pkt->id = ntohl(ph->packet_id);
	if (attr[NFQA_PAYLOAD]) {
		pkt->data = mnl_attr_get_payload(attr[NFQA_PAYLOAD]);
		pkt->len = mnl_attr_get_payload_len(attr[NFQA_PAYLOAD]);
	} else {
		pkt->data = NULL;
		pkt->len = 0;
	}
	return 0;
}

int queue_recv_batch(struct queue *queue, struct queue_packet *pkts)
{
	int n = recvmmsg(mnl_socket_get_fd(queue->nl), queue->msgs, QUEUE_BATCH, MSG_DONTWAIT,
			 NULL);
	int count = 0;

	if (n < 0)
		return (errno == EAGAIN || errno == EINTR) ? 0 : -1;
	for (int i = 0; i < n; i++) {
		const struct nlmsghdr *nlh = (const struct nlmsghdr *)queue->rx[i];
		int len = (int)queue->msgs[i].msg_len;

		/* the kernel sends one packet per datagram; walk in case it batches */
		for (; mnl_nlmsg_ok(nlh, len); nlh = mnl_nlmsg_next(nlh, &len)) {
			if (count >= QUEUE_BATCH)
				break;
			if (queue_parse_packet(nlh, &pkts[count]) == 0)
				count++;
		}
	}
	return count;
}

void queue_add_verdict(struct queue *queue, uint32_t id, int verdict)
{
	struct nlmsghdr *nlh;

	if (queue->tx_count >= QUEUE_BATCH)
		queue_flush_verdicts(queue);
	nlh = nfq_nlmsg_put(queue->tx + queue->tx_len, NFQNL_MSG_VERDICT, queue->num);
	nfq_nlmsg_verdict_put(nlh, (int)id, verdict);
	queue->tx_len += NLMSG_ALIGN(nlh->nlmsg_len);
	queue->tx_count++;
}

int queue_flush_verdicts(struct queue *queue)
{
	ssize_t n;

	if (queue->tx_count == 0)
		return 0;
	n = mnl_socket_sendto(queue->nl, queue->tx, queue->tx_len);
	queue->tx_len = 0;
	queue->tx_count = 0;
	return n < 0 ? -1 : 0;
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
