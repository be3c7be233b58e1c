/* tls_hello: real ClientHellos for the unit tests of what reads them
 * (clienthello, sni_hold), written by OpenSSL's own client. */
#ifndef GK_TESTS_TLS_HELLO_H
#define GK_TESTS_TLS_HELLO_H

#include <stddef.h>
#include <stdint.h>

#include "clienthello.h"

struct hello {
	uint8_t bytes[CLIENTHELLO_MAX];
	size_t len;
};

/* The first flight OpenSSL's client sends, with NAME as SNI (NULL: none).
 * BIG adds a key-share-sized extension: a ~1.8 kB ClientHello, two
 * segments at MSS 1460, as post-quantum key shares make it. */
void openssl_hello(const char *name, int big, struct hello *out);

#endif
