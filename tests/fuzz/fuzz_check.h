/* What every libFuzzer target here shares: the entry point's prototype
 * and CHECK, the oracle's assertion: it names the failed condition and
 * aborts, which libFuzzer reports as a crash and keeps the input of. */
#ifndef GK_FUZZ_CHECK_H
#define GK_FUZZ_CHECK_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                   \
	do {                                                                          \
		if (!(cond)) {                                                        \
			fprintf(stderr, "check failed: %s (%s:%d)\n", #cond, __FILE__, \
				__LINE__);                                            \
			abort();                                                      \
		}                                                                     \
	} while (0)

#endif
