/* Unit tests of the checker's message format (daemon/checker_proto.c):
 * round trips of every record, and the rejection of each kind of bad
 * record the decoder must refuse (a hostile checker or daemon). Also the
 * socket layer: one record with its fds over a real SEQPACKET pair. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "checker_proto.h"
#include "config.h"

static uint16_t statuses[] = {200, 204};

static struct config_check https_check(void)
{
	struct config_check c = {
		.type = CONFIG_CHECK_HTTPS, .interval_ms = 5000, .timeout_ms = 2000, .rise = 2,
		.fall = 3, .port = 8443, .sni = "shop.example", .verify_name = "shop.example",
		.method = "GET", .path = "/health?x=1", .host = "shop.example:8443",
		.expect_status = statuses, .n_expect_status = 2, .expect_body = "all ready",
		.ca_file = "/etc/ssl/ca.pem",
	};
	return c;
}

static struct checker_job make_job(void)
{
	struct config_check c = https_check();
	struct config_addr addr;
	struct checker_job job;

	assert_int_equal(config_parse_addr("2001:db8::10", &addr), 0);
	assert_int_equal(checker_job_from_check(&job, 7, 123456, &c, &addr, 42), 0);
	return job;
}

static void test_run_round_trip(void **state)
{
	struct checker_job job = make_job(), back;
	uint8_t buf[CHECKER_RUN_SIZE];

	(void)state;
	assert_int_equal(checker_encode_run(&job, buf), 0);
	assert_int_equal(checker_msg_type(buf, sizeof(buf)), CHECKER_MSG_RUN);
	assert_int_equal(checker_decode_run(buf, sizeof(buf), &back), 0);
	assert_int_equal(back.slot, 7);
	assert_int_equal(back.generation, 123456);
	assert_int_equal(back.ca_key, 42);
	assert_true(back.has_ca);
	assert_int_equal(back.addr.family, AF_INET6);
	assert_memory_equal(back.addr.bytes, job.addr.bytes, 16);
	assert_int_equal(back.check.type, CONFIG_CHECK_HTTPS);
	assert_int_equal(back.check.port, 8443);
	assert_int_equal(back.check.timeout_ms, 2000);
	assert_int_equal(back.check.n_expect_status, 2);
	assert_int_equal(back.check.expect_status[1], 204);
	assert_string_equal(back.check.sni, "shop.example");
	assert_string_equal(back.check.host, "shop.example:8443");
	assert_string_equal(back.check.method, "GET");
	assert_string_equal(back.check.path, "/health?x=1");
	assert_string_equal(back.check.expect_body, "all ready");
	/* the checker gets the CA's fd, never its path */
	assert_null(back.check.ca_file);
	/* the strings point into the decoded job, also after a copy */
	{
		struct checker_job copy;
		checker_job_copy(&copy, &back);
		assert_ptr_equal(copy.check.path, copy.path);
		assert_ptr_equal(copy.check.expect_status, copy.expect_status);
	}
}

static void test_tls_ipv4_round_trip(void **state)
{
	struct config_check c = {.type = CONFIG_CHECK_TLS, .timeout_ms = 300, .port = 443};
	struct config_addr addr;
	struct checker_job job, back;
	uint8_t buf[CHECKER_RUN_SIZE];

	(void)state;
	assert_int_equal(config_parse_addr("198.51.100.10", &addr), 0);
	assert_int_equal(checker_job_from_check(&job, 0, 1, &c, &addr, 0), 0);
	assert_int_equal(checker_encode_run(&job, buf), 0);
	assert_int_equal(checker_decode_run(buf, sizeof(buf), &back), 0);
	assert_false(back.has_ca);
	assert_int_equal(back.addr.family, AF_INET);
	assert_null(back.check.sni);
	assert_null(back.check.host);
	assert_null(back.check.path);
}

/* Offsets in a RUN record (checker_proto.h). */
#define RUN_TYPE 16
#define RUN_FAMILY 17
#define RUN_FLAGS 18
#define RUN_N_EXPECT 19
#define RUN_PORT 20
#define RUN_ZERO 22
#define RUN_TIMEOUT 24
#define RUN_CA_KEY 28
#define RUN_ADDR 32
#define RUN_EXPECT 48
#define RUN_METHOD 80
#define RUN_SNI 112
#define RUN_HOST 368
#define RUN_VERIFY 624
#define RUN_PATH 880
#define RUN_BODY 1920

/* Each mutation of a good record must be refused. */
static void test_run_rejects(void **state)
{
	struct checker_job job = make_job(), back;
	uint8_t good[CHECKER_RUN_SIZE], buf[CHECKER_RUN_SIZE + 1];
	static const struct {
		size_t at;
		uint8_t value;
		const char *what;
	} bad[] = {
		{0, 'X', "magic"}, {5, 9, "type"}, {7, 1, "header padding"},
		{8, 1, "slot >= 64 (high byte)"}, {11, 64, "slot 64"},
		{RUN_TYPE, 2, "check type"}, {RUN_FAMILY, 5, "family"},
		{RUN_FLAGS, 2, "unknown flag"}, {RUN_FLAGS, 0, "CA key without the CA flag"},
		{RUN_N_EXPECT, 17, "17 statuses"}, {RUN_N_EXPECT, 0, "https without a status"},
		{RUN_ZERO, 1, "padding"},
		{RUN_TIMEOUT, 0xff, "timeout > 1 h"}, {RUN_EXPECT + 1, 99, "status 99 (low byte)"},
		{RUN_EXPECT + 4, 1, "a status past n_expect"},
		{RUN_METHOD, 'g', "lowercase method"}, {RUN_METHOD, 0, "https without a method"},
		{RUN_SNI + 3, ' ', "space in sni"}, {RUN_HOST, '\r', "CR in host"},
		{RUN_PATH, 'x', "path without /"}, {RUN_PATH + 2, '\n', "LF in path"},
		{RUN_VERIFY + 255, 'a', "verify_name without NUL"},
		{RUN_PATH + 1039, 'a', "path without NUL"},
		{RUN_BODY + 200, 'a', "bytes after the NUL"}, {RUN_BODY, 0x7f, "DEL in body"},
		{RUN_SNI + 100, 'a', "junk after sni's NUL"},
	};

	(void)state;
	assert_int_equal(checker_encode_run(&job, good), 0);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		memcpy(buf, good, sizeof(good));
		buf[bad[i].at] = bad[i].value;
		if (checker_decode_run(buf, CHECKER_RUN_SIZE, &back) == 0)
			fail_msg("accepted a RUN with a bad %s", bad[i].what);
	}
	/* port 0 */
	memcpy(buf, good, sizeof(good));
	buf[RUN_PORT] = buf[RUN_PORT + 1] = 0;
	assert_int_equal(checker_decode_run(buf, CHECKER_RUN_SIZE, &back), -1);
	/* 2001:db8:: as IPv4 with bytes past the fourth */
	memcpy(buf, good, sizeof(good));
	buf[RUN_FAMILY] = 4;
	assert_int_equal(checker_decode_run(buf, CHECKER_RUN_SIZE, &back), -1);
	/* the wrong size, either way */
	memcpy(buf, good, sizeof(good));
	buf[CHECKER_RUN_SIZE] = 0;
	assert_int_equal(checker_decode_run(buf, CHECKER_RUN_SIZE + 1, &back), -1);
	assert_int_equal(checker_decode_run(buf, CHECKER_RUN_SIZE - 1, &back), -1);
	assert_int_equal(checker_msg_type(buf, CHECKER_RUN_SIZE - 1), -1);
	assert_int_equal(checker_msg_type(buf, 4), -1);
	/* a RESULT-sized buffer claiming to be a RUN */
	assert_int_equal(checker_msg_type(good, CHECKER_RESULT_SIZE), -1);
	/* the encoder refuses what the decoder would */
	job.check.port = 0;
	assert_int_equal(checker_encode_run(&job, buf), -1);
}

static void test_job_from_check_limits(void **state)
{
	struct config_check c = https_check();
	struct config_addr addr;
	struct checker_job job;
	char long_path[1100];

	(void)state;
	assert_int_equal(config_parse_addr("198.51.100.10", &addr), 0);
	memset(long_path, 'a', sizeof(long_path) - 1);
	long_path[0] = '/';
	long_path[sizeof(long_path) - 1] = '\0';
	c.path = long_path;
	assert_int_equal(checker_job_from_check(&job, 0, 1, &c, &addr, 1), -1);
	c = https_check();
	assert_int_equal(checker_job_from_check(&job, 64, 1, &c, &addr, 1), -1);
}

static struct checker_result make_result(void)
{
	struct checker_result r = {
		.slot = 63, .generation = 0xdeadbeef, .ok = true, .cert_present = true,
		.latency_us = 1234567, .not_after = 1893456000,
	};

	snprintf(r.reason, sizeof(r.reason), "HTTP 200");
	snprintf(r.subject, sizeof(r.subject), "CN=Zürich shop,O=Example");
	snprintf(r.issuer, sizeof(r.issuer), "CN=Example CA");
	return r;
}

static void test_result_round_trip(void **state)
{
	struct checker_result r = make_result(), back;
	uint8_t buf[CHECKER_RESULT_SIZE];

	(void)state;
	assert_int_equal(checker_encode_result(&r, buf), 0);
	assert_int_equal(checker_msg_type(buf, sizeof(buf)), CHECKER_MSG_RESULT);
	assert_int_equal(checker_decode_result(buf, sizeof(buf), &back), 0);
	assert_int_equal(back.slot, 63);
	assert_int_equal(back.generation, 0xdeadbeef);
	assert_true(back.ok);
	assert_true(back.cert_present);
	assert_int_equal(back.latency_us, 1234567);
	assert_int_equal(back.not_after, 1893456000);
	assert_string_equal(back.reason, "HTTP 200");
	assert_string_equal(back.subject, "CN=Zürich shop,O=Example");
	assert_string_equal(back.issuer, "CN=Example CA");
}

#define RES_OK 16
#define RES_CERT 17
#define RES_ZERO 18
#define RES_LATENCY 20
#define RES_NOT_AFTER 28
#define RES_REASON 36
#define RES_SUBJECT 228
#define RES_ISSUER 484

static void test_result_rejects(void **state)
{
	struct checker_result r = make_result(), back;
	uint8_t good[CHECKER_RESULT_SIZE], buf[CHECKER_RESULT_SIZE];
	static const struct {
		size_t at;
		uint8_t value;
		const char *what;
	} bad[] = {
		{3, '2', "magic"}, {5, 1, "type (a RUN's)"}, {11, 64, "slot 64"},
		{RES_OK, 2, "ok 2"}, {RES_CERT, 7, "cert 7"}, {RES_ZERO + 1, 1, "padding"},
		{RES_LATENCY, 0x10, "latency over 2 h"}, {RES_REASON, 0, "empty reason"},
		{RES_REASON + 2, 0x1b, "ESC in the reason"},
		{RES_SUBJECT + 3, 0x07, "BEL in the subject"},
		{RES_SUBJECT + 255, 'x', "subject without NUL"},
		{RES_ISSUER + 1, 0xc2, "a UTF-8 sequence cut short"},
		{RES_ISSUER + 200, 'x', "junk after the issuer's NUL"},
		{RES_REASON + 1, 0xff, "an invalid UTF-8 byte"},
	};

	(void)state;
	assert_int_equal(checker_encode_result(&r, good), 0);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		memcpy(buf, good, sizeof(good));
		buf[bad[i].at] = bad[i].value;
		if (checker_decode_result(buf, sizeof(buf), &back) == 0)
			fail_msg("accepted a RESULT with a bad %s", bad[i].what);
	}
	/* C1 control U+009B (CSI) as UTF-8 */
	memcpy(buf, good, sizeof(good));
	buf[RES_SUBJECT] = 0xc2;
	buf[RES_SUBJECT + 1] = 0x9b;
	assert_int_equal(checker_decode_result(buf, sizeof(buf), &back), -1);
	/* an overlong '/' */
	buf[RES_SUBJECT] = 0xc0;
	buf[RES_SUBJECT + 1] = 0xaf;
	assert_int_equal(checker_decode_result(buf, sizeof(buf), &back), -1);
	/* a certificate's fields without the certificate */
	r.cert_present = false;
	assert_int_equal(checker_encode_result(&r, buf), -1);
	memcpy(buf, good, sizeof(good));
	buf[RES_CERT] = 0;
	assert_int_equal(checker_decode_result(buf, sizeof(buf), &back), -1);
}

static void test_cancel(void **state)
{
	uint8_t buf[CHECKER_CANCEL_SIZE];
	uint32_t slot, generation;

	(void)state;
	assert_int_equal(checker_encode_cancel(5, 77, buf), 0);
	assert_int_equal(checker_msg_type(buf, sizeof(buf)), CHECKER_MSG_CANCEL);
	assert_int_equal(checker_decode_cancel(buf, sizeof(buf), &slot, &generation), 0);
	assert_int_equal(slot, 5);
	assert_int_equal(generation, 77);
	buf[11] = 200;
	assert_int_equal(checker_decode_cancel(buf, sizeof(buf), &slot, &generation), -1);
	assert_int_equal(checker_encode_cancel(64, 1, buf), -1);
}

static void test_text_clean(void **state)
{
	char out[64];

	(void)state;
	assert_true(checker_text_valid("CN=Zürich"));
	assert_false(checker_text_valid("a\x1b[31m"));
	assert_false(checker_text_valid("\xc2\x9b" "31m"));
	checker_text_clean(out, sizeof(out), "a\x1b[31mb\xc2\x9bz\xff");
	assert_string_equal(out, "a\\x1b[31mb\\x9bz\xef\xbf\xbd");
	assert_true(checker_text_valid(out));
	/* cut by the size: never inside a character */
	checker_text_clean(out, 6, "ab\xe2\x82\xac\xe2\x82\xac");
	assert_string_equal(out, "ab\xe2\x82\xac");
	/* a 2-byte character that does not fit is left out whole */
	checker_text_clean(out, 4, "ab\xc3\xbc");
	assert_string_equal(out, "ab");
	assert_true(checker_text_valid(out));
	checker_text_clean(out, sizeof(out), "\xf0\x9f\x98\x80 ok");
	assert_string_equal(out, "\xf0\x9f\x98\x80 ok");
}

/* One RUN with its socket and CA fds over a real SEQPACKET pair; then a
 * record with a third fd is refused (and its fds closed). */
static void test_socket(void **state)
{
	struct checker_job job = make_job();
	uint8_t buf[CHECKER_MSG_MAX], run[CHECKER_RUN_SIZE];
	int sv[2], fds[2], n_fds, extra[2], three[3];
	long n;

	(void)state;
	assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
	assert_int_equal(checker_encode_run(&job, run), 0);
	extra[0] = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
	extra[1] = dup(0);
	assert_int_equal(checker_send(sv[0], run, sizeof(run), extra, 2), 0);
	n = checker_recv(sv[1], buf, sizeof(buf), fds, &n_fds);
	assert_int_equal(n, CHECKER_RUN_SIZE);
	assert_int_equal(n_fds, 2);
	close(fds[0]);
	close(fds[1]);
	/* nothing waiting */
	assert_int_equal(checker_recv(sv[1], buf, sizeof(buf), fds, &n_fds), -1);
	/* three fds: refused */
	{
		struct iovec iov = {.iov_base = run, .iov_len = sizeof(run)};
		union {
			struct cmsghdr align;
			char buf[CMSG_SPACE(3 * sizeof(int))];
		} control;
		struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1,
				     .msg_control = control.buf,
				     .msg_controllen = sizeof(control.buf)};
		struct cmsghdr *c = CMSG_FIRSTHDR(&msg);

		three[0] = extra[0];
		three[1] = extra[1];
		three[2] = extra[1];
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(three));
		memcpy(CMSG_DATA(c), three, sizeof(three));
		assert_int_equal(sendmsg(sv[0], &msg, 0), (ssize_t)sizeof(run));
	}
	assert_int_equal(checker_recv(sv[1], buf, sizeof(buf), fds, &n_fds), -1);
	assert_int_equal(n_fds, 0);
	/* a datagram larger than the buffer: truncated, refused */
	assert_int_equal(checker_send(sv[0], run, sizeof(run), NULL, 0), 0);
	assert_int_equal(checker_recv(sv[1], buf, 100, fds, &n_fds), -1);
	close(extra[0]);
	close(extra[1]);
	close(sv[0]);
	/* EOF */
	assert_int_equal(checker_recv(sv[1], buf, sizeof(buf), fds, &n_fds), 0);
	close(sv[1]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_run_round_trip),
		cmocka_unit_test(test_tls_ipv4_round_trip),
		cmocka_unit_test(test_run_rejects),
		cmocka_unit_test(test_job_from_check_limits),
		cmocka_unit_test(test_result_round_trip),
		cmocka_unit_test(test_result_rejects),
		cmocka_unit_test(test_cancel),
		cmocka_unit_test(test_text_clean),
		cmocka_unit_test(test_socket),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
