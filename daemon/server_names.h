/* server_names: the names a site answers to on a shared address (config
 * `server_names`), and the host-name rules both they and the name in a
 * client's ClientHello (clienthello.h) follow.
 *
 * A pattern is an exact host name ("shop.example.com") or a wildcard
 * "*.example.com", which matches any name that ends in ".example.com" with
 * at least one label in front ("a.example.com", "a.b.example.com"; not
 * "example.com") — nginx's reading of a leading "*.", which the servers
 * behind gatekeeper already use. Names compare lower-cased, without a
 * trailing dot. An exact name beats every wildcard and a longer wildcard a
 * shorter one, so the best match of a name is ambiguous only when two
 * sites list the same pattern: server_names_overlap() is what a config
 * must refuse. */
#ifndef GK_SERVER_NAMES_H
#define GK_SERVER_NAMES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A DNS name: 253 characters written without the trailing dot. */
#define SERVER_NAME_MAX 253

/* NAME[0..LEN) as a canonical host name in OUT (SERVER_NAME_MAX + 1
 * bytes): lower-cased, one trailing dot dropped, letters, digits, '-' and
 * '_' in non-empty labels of at most 63 bytes. Its length, or 0 when it
 * is not a host name. */
size_t server_name_canonical(const uint8_t *name, size_t len, char *out);

/* Checks TEXT as a pattern (a host name, or "*." and one) and writes its
 * canonical form to OUT (SERVER_NAME_MAX + 1 bytes). 0, or -1 with why in
 * *WHY. */
int server_name_parse(const char *text, char *out, const char **why);

/* How well canonical PATTERN matches canonical NAME: 0 not at all, else
 * higher is more specific (an exact match beats every wildcard). */
size_t server_name_match(const char *pattern, const char *name);

/* Whether canonical patterns A and B can be the best match of one name
 * together (then no name could tell their sites apart). */
bool server_names_overlap(const char *a, const char *b);

#endif
