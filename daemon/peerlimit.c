/* peerlimit: fair shares of a listener's slots. See peerlimit.h. */
#include "peerlimit.h"

#include <netinet/in.h>
#include <string.h>

void peerlimit_peer_of(const struct sockaddr_storage *sa, struct peerlimit_peer *peer)
{
	memset(peer, 0, sizeof(*peer));
	if (sa->ss_family == AF_INET) {
		const struct sockaddr_in *in4 = (const struct sockaddr_in *)sa;

		peer->key[10] = peer->key[11] = 0xff;
		memcpy(&peer->key[12], &in4->sin_addr, 4);
	} else if (sa->ss_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;

		memcpy(peer->key, &in6->sin6_addr, 16);
		/* a v4-mapped address is that IPv4 peer; any other by its /64 */
		if (!IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr))
			memset(&peer->key[8], 0, 8);
	}
}

static bool same_peer(const struct peerlimit_peer *a, const struct peerlimit_peer *b)
{
	return memcmp(a->key, b->key, sizeof(a->key)) == 0;
}

size_t peerlimit_count(const struct peerlimit_slot *slots, size_t n,
		       const struct peerlimit_peer *peer)
{
	size_t count = 0;

	for (size_t i = 0; i < n; i++)
		count += slots[i].used && same_peer(&slots[i].peer, peer);
	return count;
}

int peerlimit_place(const struct peerlimit_slot *slots, size_t n, size_t per_peer,
		    const struct peerlimit_peer *peer, bool *evict)
{
	size_t mine = peerlimit_count(slots, n, peer), most = 0, victim = n;

	*evict = false;
	if (mine >= per_peer)
		return -1;
	for (size_t i = 0; i < n; i++)
		if (!slots[i].used)
			return (int)i;
	/* full: the heaviest peer (ties: the one with the oldest connection)
	 * gives up its oldest connection, if it holds more than the
	 * newcomer would with this one */
	for (size_t i = 0; i < n; i++) {
		size_t count = peerlimit_count(slots, n, &slots[i].peer);

		if (count > most || (count == most && slots[i].since_ms < slots[victim].since_ms)) {
			most = count;
			victim = i;
		}
	}
	if (victim == n || most <= mine + 1)
		return -1;
	*evict = true;
	return (int)victim;
}
