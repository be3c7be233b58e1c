/* config_assert: cmocka checks of what config_parse() makes of a string
 * (named "conf.yaml" in the messages), shared by the unit tests of the
 * config and of the health checks' config. The names read as cmocka's
 * own assert_* do, without a module prefix: a longer name would re-wrap
 * the aligned expected messages of some fifty calls. */
#ifndef GK_TESTS_CONFIG_ASSERT_H
#define GK_TESTS_CONFIG_ASSERT_H

#include "config.h"

/* Parses TEXT; fails the test, with the messages, if it is refused. The
 * caller frees the config. */
struct config *parse_ok(const char *text);

/* Asserts that TEXT is refused with exactly the messages given, in order;
 * the list ends with NULL. */
__attribute__((sentinel)) void assert_errors(const char *text, ...);

/* Prints each message as "  got: ...", to show what a failed check saw. */
void print_errors(const struct config_errors *errors);

#endif
