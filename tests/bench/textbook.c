/* textbook: what a first NFQUEUE program looks like, as the yardstick.
 *
 * libnetfilter_queue's classic API (nfq_open / nfq_create_queue / a
 * callback), the whole packet copied (NFQNL_COPY_PACKET, 0xffff), one
 * recv() and one verdict sendmsg per packet, default socket buffer.
 * It decides like gatekeeperd: a SYN to an OFFLINE address is dropped,
 * anything else accepted.
 *
 *   textbook QUEUE_NUM OFFLINE_ADDR...
 *
 * Runs until SIGTERM/SIGINT; prints "decided N" on the way out. */
#include <arpa/inet.h>
#include <errno.h>
#include <libnetfilter_queue/libnetfilter_queue.h>
#include <linux/netfilter.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define MAX_OFFLINE 16

static struct in_addr offline[MAX_OFFLINE];
static int n_offline;
static volatile sig_atomic_t stop;
static unsigned long long decided;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static int is_offline(const unsigned char *data, int len)
{
	struct in_addr daddr;

	if (len < 20 || (data[0] >> 4) != 4 || data[9] != IPPROTO_TCP)
		return 0;
	memcpy(&daddr, data + 16, 4);
	for (int i = 0; i < n_offline; i++)
		if (offline[i].s_addr == daddr.s_addr)
			return 1;
	return 0;
}

static int cb(struct nfq_q_handle *qh, struct nfgenmsg *nfmsg, struct nfq_data *nfa, void *data)
{
	struct nfqnl_msg_packet_hdr *ph = nfq_get_msg_packet_hdr(nfa);
	unsigned char *payload;
	int len;
	uint32_t id;

	(void)nfmsg;
	(void)data;
	if (!ph)
		return -1;
	id = ntohl(ph->packet_id);
	len = nfq_get_payload(nfa, &payload);
	decided++;
	return nfq_set_verdict(qh, id, is_offline(payload, len) ? NF_DROP : NF_ACCEPT, 0, NULL);
}

int main(int argc, char **argv)
{
	struct nfq_handle *h;
	struct nfq_q_handle *qh;
	char buf[65536] __attribute__((aligned));
	struct sigaction sa = {.sa_handler = on_signal};
	int fd;

	if (argc < 3) {
		fprintf(stderr, "usage: textbook QUEUE_NUM OFFLINE_ADDR...\n");
		return 2;
	}
	for (int i = 2; i < argc && n_offline < MAX_OFFLINE; i++)
		if (inet_pton(AF_INET, argv[i], &offline[n_offline++]) != 1)
			return 2;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);

	h = nfq_open();
	if (!h) {
		perror("nfq_open");
		return 1;
	}
	nfq_unbind_pf(h, AF_INET);
	if (nfq_bind_pf(h, AF_INET) < 0) {
		perror("nfq_bind_pf");
		return 1;
	}
	qh = nfq_create_queue(h, (uint16_t)atoi(argv[1]), cb, NULL);
	if (!qh) {
		perror("nfq_create_queue");
		return 1;
	}
	if (nfq_set_mode(qh, NFQNL_COPY_PACKET, 0xffff) < 0) {
		perror("nfq_set_mode");
		return 1;
	}
	printf("ready\n");
	fflush(stdout);
	fd = nfq_fd(h);
	while (!stop) {
		int rv = (int)recv(fd, buf, sizeof(buf), 0);
		if (rv >= 0) {
			nfq_handle_packet(h, buf, rv);
			continue;
		}
		/* the classic examples carry on when the kernel outran us */
		if (errno == ENOBUFS || errno == EINTR)
			continue;
		perror("recv");
		break;
	}
	nfq_destroy_queue(qh);
	nfq_close(h);
	printf("decided %llu\n", decided);
	return 0;
}
