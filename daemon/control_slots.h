/* control_slots: who gets a control connection when the slots run out.
 *
 * Pure policy, no I/O (the unit tests drive it directly). The control
 * socket has CONTROL_MAX_CLIENTS slots; a peer ranks, from the bottom:
 *
 *   reader   anyone else who can open the socket (read-only)
 *   member   a member of control.group (may change state)
 *   owner    the daemon's own uid (config `user`, or who runs it)
 *   root     uid 0
 *
 * Every uid but root holds at most CONTROL_MAX_PER_UID connections, so
 * one member or one leaky script cannot fill the socket alone; readers
 * never take the last CONTROL_RESERVED_PRIVILEGED slots. When the slots
 * are full, an owner evicts the longest-idle reader, and root the
 * longest-idle reader, else member, else owner, else root connection: root
 * always gets in, whoever holds the slots and however often they talk. */
#ifndef GK_CONTROL_SLOTS_H
#define GK_CONTROL_SLOTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define CONTROL_MAX_PER_UID 16

enum control_rank {
	CONTROL_RANK_READER,
	CONTROL_RANK_MEMBER,
	CONTROL_RANK_OWNER,
	CONTROL_RANK_ROOT,
};

/* What the policy needs to know of one slot. */
struct control_slot {
	bool used;
	uid_t uid;
	enum control_rank rank;
	uint64_t active_ms; /* last byte in or reply out (clock_now_ms) */
};

enum control_admission {
	CONTROL_ADMIT,         /* a slot is free */
	CONTROL_ADMIT_EVICT,   /* after the victim is closed */
	CONTROL_REFUSE_FULL,   /* no slot, nobody this peer may evict */
	CONTROL_REFUSE_UID_CAP /* this uid already holds its share */
};

/* Decides on a peer (UID, RANK) arriving while SLOTS[0..N) are as given,
 * RESERVED of them kept from readers. On CONTROL_ADMIT_EVICT, *VICTIM is
 * the slot to free first. */
enum control_admission control_slots_admit(const struct control_slot *slots, size_t n,
					   size_t reserved, uid_t uid, enum control_rank rank,
					   size_t *victim);

const char *control_rank_name(enum control_rank rank);

#endif
