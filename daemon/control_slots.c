#include "control_slots.h"

/* The longest-idle connection of RANK, or N when there is none. */
static size_t longest_idle(const struct control_slot *slots, size_t n, enum control_rank rank)
{
	size_t found = n;

	for (size_t i = 0; i < n; i++)
		if (slots[i].used && slots[i].rank == rank &&
		    (found == n || slots[i].active_ms < slots[found].active_ms))
			found = i;
	return found;
}

enum control_admission control_slots_admit(const struct control_slot *slots, size_t n,
					   size_t reserved, uid_t uid, enum control_rank rank,
					   size_t *victim)
{
	size_t used = 0, mine = 0, limit;

	for (size_t i = 0; i < n; i++) {
		used += slots[i].used;
		mine += slots[i].used && slots[i].uid == uid;
	}
	if (rank != CONTROL_RANK_ROOT && mine >= CONTROL_MAX_PER_UID)
		return CONTROL_REFUSE_UID_CAP;
	limit = rank == CONTROL_RANK_READER ? (n > reserved ? n - reserved : 0) : n;
	if (used < limit)
		return CONTROL_ADMIT;
	/* full for this peer: the daemon's uid may evict a reader; root a
	 * reader, else a member, else the daemon's uid, else its own kind */
	if (rank < CONTROL_RANK_OWNER)
		return CONTROL_REFUSE_FULL;
	for (int r = CONTROL_RANK_READER; r <= (rank == CONTROL_RANK_ROOT ? CONTROL_RANK_ROOT
								   : CONTROL_RANK_READER); r++) {
		*victim = longest_idle(slots, n, (enum control_rank)r);
		if (*victim < n)
			return CONTROL_ADMIT_EVICT;
	}
	return CONTROL_REFUSE_FULL;
}

const char *control_rank_name(enum control_rank rank)
{
	switch (rank) {
	case CONTROL_RANK_READER: return "read-only";
	case CONTROL_RANK_MEMBER: return "group member";
	case CONTROL_RANK_OWNER: return "the daemon's user";
	case CONTROL_RANK_ROOT: return "root";
	}
	return "?";
}
