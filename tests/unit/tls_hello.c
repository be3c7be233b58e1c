/* tls_hello: see tls_hello.h. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/ssl.h>

#include "tls_hello.h"

/* A stand-in for a post-quantum key share (ML-KEM-768 + X25519: 1216
 * bytes), which Debian 12's OpenSSL does not offer yet. */
static int add_big_share(SSL *ssl, unsigned int type, const unsigned char **out, size_t *outlen, int *al,
			 void *arg)
{
	static unsigned char share[1216];

	(void)ssl, (void)type, (void)al, (void)arg;
	memset(share, 0x5a, sizeof(share));
	*out = share;
	*outlen = sizeof(share);
	return 1;
}

/* The first flight OpenSSL's client sends, with NAME as SNI (NULL: none).
 * BIG adds a key-share-sized extension: a ~1.8 kB ClientHello, two
 * segments at MSS 1460, as post-quantum key shares make it. */
void openssl_hello(const char *name, int big, struct hello *out)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	SSL *ssl;
	BIO *rbio = BIO_new(BIO_s_mem()), *wbio = BIO_new(BIO_s_mem());
	int n;

	assert_non_null(ctx);
	assert_non_null(rbio);
	assert_non_null(wbio);
	if (big)
		assert_int_equal(SSL_CTX_add_client_custom_ext(ctx, 0xfe99, add_big_share, NULL, NULL, NULL,
							       NULL),
				 1);
	ssl = SSL_new(ctx);
	assert_non_null(ssl);
	SSL_set_bio(ssl, rbio, wbio);
	if (name)
		assert_int_equal(SSL_set_tlsext_host_name(ssl, name), 1);
	assert_int_equal(SSL_connect(ssl), -1); /* wants to read the answer */
	n = BIO_read(wbio, out->bytes, sizeof(out->bytes));
	assert_true(n > 0);
	out->len = (size_t)n;
	SSL_free(ssl);
	SSL_CTX_free(ctx);
}

