#include "privileges.h"

#include <cap-ng.h>
#include <errno.h>
#include <linux/capability.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"

static int lookup_user(const char *name, uid_t *uid, gid_t *gid)
{
	struct passwd pw, *found = NULL;
	char buf[4096];
	int rc = getpwnam_r(name, &pw, buf, sizeof(buf), &found);

	if (rc != 0 || !found) {
		errno = rc ? rc : ENOENT;
		return -1;
	}
	*uid = pw.pw_uid;
	*gid = pw.pw_gid;
	return 0;
}

int privileges_drop(const char *user, bool keep_net_raw)
{
	capng_type_t kept = CAPNG_EFFECTIVE | CAPNG_PERMITTED | CAPNG_INHERITABLE;
	uid_t uid;
	gid_t gid;

	if (lookup_user(user, &uid, &gid) < 0) {
		log_error_errno("user '%s'", user);
		return -1;
	}
	if (geteuid() == uid)
		return 0;
	if (geteuid() != 0) {
		log_error("user '%s': only root can switch users (running as uid %u)", user,
			  (unsigned)geteuid());
		return -1;
	}
	capng_clear(CAPNG_SELECT_ALL);
	if (capng_update(CAPNG_ADD, kept, CAP_NET_ADMIN) < 0 ||
	    capng_update(CAPNG_ADD, CAPNG_AMBIENT, CAP_NET_ADMIN) < 0 ||
	    (keep_net_raw && (capng_update(CAPNG_ADD, kept, CAP_NET_RAW) < 0 ||
			      capng_update(CAPNG_ADD, CAPNG_AMBIENT, CAP_NET_RAW) < 0))) {
		log_error("libcap-ng: cannot prepare the capability sets");
		return -1;
	}
	/* drops supplementary groups and the bounding set, switches gid+uid
	 * with the capabilities above kept across the switch */
	if (capng_change_id((int)uid, (int)gid, CAPNG_DROP_SUPP_GRP | CAPNG_CLEAR_BOUNDING) < 0) {
		log_error_errno("cannot switch to user '%s' (uid %u, gid %u)", user, (unsigned)uid,
				(unsigned)gid);
		return -1;
	}
	/* capng_change_id applies the effective/permitted/inheritable sets;
	 * the ambient ones only exist once those are in place */
	if (capng_apply(CAPNG_SELECT_AMBIENT) < 0) {
		log_error("cannot make CAP_NET_ADMIN ambient for the rule tools");
		return -1;
	}
	if (getuid() != uid || geteuid() != uid || getegid() != gid) {
		log_error("switching to user '%s' did not take", user);
		return -1;
	}
	log_info("running as user %s (uid %u), capabilities: cap_net_admin%s", user,
		 (unsigned)uid, keep_net_raw ? ", cap_net_raw" : "");
	return 0;
}

int privileges_drop_net_raw(void)
{
	if (capng_get_caps_process() < 0) {
		log_error("libcap-ng: cannot read the capability sets");
		return -1;
	}
	if (!capng_have_capability(CAPNG_PERMITTED, CAP_NET_RAW))
		return 0;
	/* the kernel takes it out of the ambient set with the permitted one */
	if (capng_update(CAPNG_DROP, CAPNG_EFFECTIVE | CAPNG_PERMITTED | CAPNG_INHERITABLE,
			 CAP_NET_RAW) < 0 ||
	    capng_apply(CAPNG_SELECT_CAPS) < 0) {
		log_error("cannot drop cap_net_raw");
		return -1;
	}
	log_info("cap_net_raw dropped: the raw sockets are open");
	return 0;
}
