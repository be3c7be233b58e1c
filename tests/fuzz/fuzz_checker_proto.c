/* Fuzz target: the decoders of the checker's records (checker_proto.c),
 * which is what each side reads from the other: the daemon decodes the
 * RESULTs of a checker that may have been taken over by a hostile server,
 * the checker decodes RUNs. Byte 0 picks the decoder (so any size reaches
 * each); the rest is the datagram.
 *
 * Properties: a decoded record re-encodes to the very same bytes (the
 * format is canonical: nothing outside the fields, no second spelling);
 * its text fields pass checker_text_valid and its slot is < 64; and
 * checker_msg_type agrees with the decoders. checker_text_clean's output
 * is always valid text. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "checker_proto.h"
#include "fuzz_check.h"

static void run(const uint8_t *buf, size_t len)
{
	struct checker_job job, copy;
	uint8_t again[CHECKER_RUN_SIZE];

	if (checker_decode_run(buf, len, &job) < 0)
		return;
	CHECK(checker_msg_type(buf, len) == CHECKER_MSG_RUN);
	CHECK(job.slot < CHECKER_MAX_JOBS);
	CHECK(job.has_ca == (job.ca_key != 0));
	checker_job_copy(&copy, &job);
	CHECK(checker_encode_run(&copy, again) == 0);
	CHECK(memcmp(again, buf, len) == 0);
	if (copy.check.type == CONFIG_CHECK_HTTPS)
		CHECK(copy.check.path && copy.check.path[0] == '/' && copy.check.method);
}

static void result(const uint8_t *buf, size_t len)
{
	struct checker_result res;
	uint8_t again[CHECKER_RESULT_SIZE];

	if (checker_decode_result(buf, len, &res) < 0)
		return;
	CHECK(checker_msg_type(buf, len) == CHECKER_MSG_RESULT);
	CHECK(res.slot < CHECKER_MAX_JOBS && res.reason[0]);
	CHECK(checker_text_valid(res.reason) && checker_text_valid(res.subject) &&
	      checker_text_valid(res.issuer));
	CHECK(checker_encode_result(&res, again) == 0);
	CHECK(memcmp(again, buf, len) == 0);
}

static void cancel(const uint8_t *buf, size_t len)
{
	uint32_t slot, generation;
	uint8_t again[CHECKER_CANCEL_SIZE];

	if (checker_decode_cancel(buf, len, &slot, &generation) < 0)
		return;
	CHECK(checker_msg_type(buf, len) == CHECKER_MSG_CANCEL);
	CHECK(checker_encode_cancel(slot, generation, again) == 0);
	CHECK(memcmp(again, buf, len) == 0);
}

static void text(const uint8_t *buf, size_t len)
{
	char *src = malloc(len + 1), out[64];

	if (!src)
		return;
	memcpy(src, buf, len);
	src[len] = '\0';
	checker_text_clean(out, sizeof(out), src);
	CHECK(checker_text_valid(out) && strlen(out) < sizeof(out));
	if (checker_text_valid(src) && strlen(src) < sizeof(out))
		CHECK(strcmp(out, src) == 0);
	free(src);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *buf;

	if (size < 1)
		return 0;
	/* an exact-size copy: a read past the datagram is an ASan report */
	buf = malloc(size - 1 ? size - 1 : 1);
	if (!buf)
		return 0;
	memcpy(buf, data + 1, size - 1);
	switch (data[0] & 3) {
	case 0: run(buf, size - 1); break;
	case 1: result(buf, size - 1); break;
	case 2: cancel(buf, size - 1); break;
	case 3: text(buf, size - 1); break;
	}
	free(buf);
	return 0;
}
