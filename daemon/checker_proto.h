/* checker_proto: the messages between the daemon and its health-check
 * process (daemon/checker.c), over a SOCK_SEQPACKET socketpair.
 *
 * Each message is one datagram of a FIXED size per type: a record with
 * explicit field offsets, integers in network byte order, strings in
 * fixed NUL-padded fields. A receiver takes a datagram only when its size
 * is exactly the type's, nothing was truncated (MSG_TRUNC, MSG_CTRUNC),
 * it carries exactly the file descriptors its type says, and every field
 * passes the checks below; anything else is a protocol error and the
 * connection is ended (the daemon kills and restarts the checker). Each
 * side treats the other as hostile: the checker parses servers' bytes, so
 * the daemon must assume it can be taken over.
 *
 * Header, 8 bytes:  u32 magic "GKC1" | u16 type | u16 zero
 *
 * RUN (daemon -> checker), 2 184 bytes, fds: the socket to use (a fresh
 * TCP socket, already marked SO_MARK by the daemon: the checker cannot
 * create sockets) and, with flag CA, a read-only fd of check.ca_file.
 *   u32 slot (< CHECKER_MAX_JOBS)    u32 generation
 *   u8 type (0 tls, 1 https)         u8 family (4 or 6)
 *   u8 flags (bit 0: CA; others 0)   u8 n_expect (0..16; https: >= 1)
 *   u16 port (>= 1)                  u16 zero
 *   u32 timeout_ms (1..3 600 000)    u32 ca_key (the CA's cache key; 0 without CA)
 *   u8 addr[16] (IPv4: the first 4, the rest zero)
 *   u16 expect_status[16] (the first n_expect in 100..599, the rest 0)
 *   method[32] sni[256] host[256] verify_name[256] path[1040] expect_body[264]
 * Strings: NUL-terminated inside the field, zero after it; method A-Z,
 * the others printable ASCII without space except expect_body (any byte
 * but controls). https needs method and a path starting with "/".
 *
 * CANCEL (daemon -> checker), 16 bytes, no fd: u32 slot, u32 generation.
 *
 * RESULT (checker -> daemon), 740 bytes, no fd:
 *   u32 slot  u32 generation  u8 ok (0/1)  u8 cert (0/1)  u16 zero
 *   u64 latency_us (<= 2 h)   i64 not_after (0 without cert)
 *   reason[192] (not empty) subject[256] issuer[256] (empty without cert)
 * Text fields: valid UTF-8 without C0, DEL or C1 control characters, so
 * nothing from a certificate reaches a terminal or a scrape raw; the
 * encoder writes controls as the visible \xHH and invalid bytes as U+FFFD
 * (checker_text_clean, textsafe's terminal form).
 */
#ifndef GK_CHECKER_PROTO_H
#define GK_CHECKER_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"

#define CHECKER_MAGIC 0x474b4331u /* "GKC1" */
#define CHECKER_MAX_JOBS 64
#define CHECKER_MSG_RUN 1
#define CHECKER_MSG_CANCEL 2
#define CHECKER_MSG_RESULT 3

#define CHECKER_RUN_SIZE 2184
#define CHECKER_CANCEL_SIZE 16
#define CHECKER_RESULT_SIZE 740
#define CHECKER_MSG_MAX CHECKER_RUN_SIZE

#define CHECKER_REASON_LEN 192
#define CHECKER_NAME_LEN 256

/* A decoded RUN: CHECK's strings point into this struct (copy it with
 * checker_job_copy, never with =). */
struct checker_job {
	uint32_t slot, generation, ca_key;
	bool has_ca;
	struct config_addr addr;
	struct config_check check; /* type, timeout, port, strings, expect */
	uint16_t expect_status[16];
	char method[32], sni[256], host[256], verify_name[256], path[1040], expect_body[264];
};

struct checker_result {
	uint32_t slot, generation;
	bool ok, cert_present;
	uint64_t latency_us;
	int64_t not_after;
	char reason[CHECKER_REASON_LEN];
	char subject[CHECKER_NAME_LEN], issuer[CHECKER_NAME_LEN];
};

/* The message type of BUF[0..LEN) if its header is sound and LEN is that
 * type's size, else -1. */
int checker_msg_type(const uint8_t *buf, size_t len);

/* Fills JOB from CHECK (interval, rise and fall stay in the daemon).
 * -1 if a field does not fit the record (the check cannot run). */
int checker_job_from_check(struct checker_job *job, uint32_t slot, uint32_t generation,
			   const struct config_check *check, const struct config_addr *addr,
			   uint32_t ca_key);
void checker_job_copy(struct checker_job *dst, const struct checker_job *src);

/* Encoders write exactly the type's size into OUT (at least that big);
 * -1 if the input would not decode (the encoders validate as well). */
int checker_encode_run(const struct checker_job *job, uint8_t *out);
int checker_encode_cancel(uint32_t slot, uint32_t generation, uint8_t *out);
int checker_encode_result(const struct checker_result *res, uint8_t *out);

/* Decoders: 0, or -1 for anything but a well-formed record of the type. */
int checker_decode_run(const uint8_t *buf, size_t len, struct checker_job *job);
int checker_decode_cancel(const uint8_t *buf, size_t len, uint32_t *slot, uint32_t *generation);
int checker_decode_result(const uint8_t *buf, size_t len, struct checker_result *res);

/* True if TEXT is valid UTF-8 without control characters (C0, DEL, C1). */
bool checker_text_valid(const char *text);
/* Copies SRC into DST[0..LEN) as text checker_text_valid accepts:
 * controls become \xHH, invalid bytes U+FFFD (textsafe.h), cut on a
 * character boundary. */
void checker_text_clean(char *dst, size_t len, const char *src);

/* One message on the SEQPACKET socket FD with up to 2 fds. send: 0 or -1
 * (errno). recv: the message's size, 0 at EOF, -1 on error (errno;
 * EAGAIN when nothing is there, EPROTO for a truncated message or
 * control data, whose fds are closed); *N_FDS fds stored in FDS. */
int checker_send(int fd, const uint8_t *buf, size_t len, const int *fds, int n_fds);
long checker_recv(int fd, uint8_t *buf, size_t size, int *fds, int *n_fds);

#endif
