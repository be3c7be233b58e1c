/* peerlimit: who gets a listener's slot when peers compete for them.
 *
 * A peer is its source address; IPv6 addresses count by their /64, which
 * one host usually holds whole. A peer holds at most PER_PEER slots: past
 * that it is refused. When every slot is taken, a newcomer evicts the
 * oldest connection of the peer that holds the most, if that peer holds
 * more than the newcomer would; otherwise it is refused. So one peer, or
 * a few, can never hold every slot against the others. Pure logic over
 * the owner's slot table, for the unit tests. */
#ifndef GK_PEERLIMIT_H
#define GK_PEERLIMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

struct peerlimit_peer {
	uint8_t key[16]; /* IPv4 as ::ffff:a.b.c.d; IPv6 with its last 64 bits zeroed */
};

struct peerlimit_slot {
	bool used;
	struct peerlimit_peer peer;
	uint64_t since_ms; /* accepted at, for "oldest" */
};

/* The peer of SA (AF_INET or AF_INET6; anything else is one peer). */
void peerlimit_peer_of(const struct sockaddr_storage *sa, struct peerlimit_peer *peer);
/* Where PEER's new connection goes among N SLOTS: a free slot's index;
 * a used slot's index to evict first (*EVICT set); or -1: refuse it. */
int peerlimit_place(const struct peerlimit_slot *slots, size_t n, size_t per_peer,
		    const struct peerlimit_peer *peer, bool *evict);
/* How many of the N SLOTS PEER holds. */
size_t peerlimit_count(const struct peerlimit_slot *slots, size_t n,
		       const struct peerlimit_peer *peer);

#endif
