#include "xt_compat.h"

#include <arpa/inet.h>
#include <libmnl/libmnl.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables_compat.h>
#include <linux/netfilter/nfnetlink.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#define COMPAT_TYPE_TARGET 1 /* NFTA_COMPAT_TYPE: 0 a match, 1 a target */
#define REPLY_WAIT_S 2       /* a module load can take a moment */
#define COMPAT_GET ((NFNL_SUBSYS_NFT_COMPAT << 8) | NFNL_MSG_COMPAT_GET)

bool xt_compat_target_present(const char *name)
{
	char buf[8192]; /* the reply is one small message */
	struct mnl_socket *nl = mnl_socket_open(NETLINK_NETFILTER);
	struct timeval wait = {.tv_sec = REPLY_WAIT_S};
	const struct nlmsghdr *reply;
	struct nlmsghdr *nlh;
	struct nfgenmsg *nfg;
	bool present = false;
	ssize_t n;

	if (!nl)
		return false;
	if (mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID) < 0 ||
	    setsockopt(mnl_socket_get_fd(nl), SOL_SOCKET, SO_RCVTIMEO, &wait, sizeof(wait)) < 0)
		goto out;
	nlh = mnl_nlmsg_put_header(buf);
	nlh->nlmsg_type = COMPAT_GET;
	/* no NLM_F_ACK: the answer is either the target's description or an
	 * error message, which the kernel sends unasked */
	nlh->nlmsg_flags = NLM_F_REQUEST;
	nlh->nlmsg_seq = (uint32_t)time(NULL);
	nfg = mnl_nlmsg_put_extra_header(nlh, sizeof(*nfg));
	nfg->nfgen_family = NFPROTO_IPV4;
	nfg->version = NFNETLINK_V0;
	mnl_attr_put_strz(nlh, NFTA_COMPAT_NAME, name);
	mnl_attr_put_u32(nlh, NFTA_COMPAT_REV, htonl(0));
	mnl_attr_put_u32(nlh, NFTA_COMPAT_TYPE, htonl(COMPAT_TYPE_TARGET));
	if (mnl_socket_sendto(nl, nlh, nlh->nlmsg_len) < 0)
		goto out;
	/* the request in buf is sent: the reply may overwrite it */
	n = mnl_socket_recvfrom(nl, buf, sizeof(buf));
	reply = (const struct nlmsghdr *)buf;
	if (n >= (ssize_t)sizeof(*reply) && mnl_nlmsg_ok(reply, (int)n))
		present = reply->nlmsg_type == COMPAT_GET;
out:
	mnl_socket_close(nl);
	return present;
}
