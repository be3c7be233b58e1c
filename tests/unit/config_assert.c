/* Assertions on parsed configs: see config_assert.h. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "config_assert.h"

static struct config *parse(const char *text, struct config_errors *errors)
{
	return config_parse("conf.yaml", text, strlen(text), errors);
}

void print_errors(const struct config_errors *errors)
{
	for (size_t i = 0; i < errors->count; i++)
		print_error("  got: %s\n", errors->messages[i]);
}

struct config *parse_ok(const char *text)
{
	struct config_errors errors = { 0 };
	struct config *cfg = parse(text, &errors);

	if (!cfg || errors.count) {
		print_errors(&errors);
		config_errors_free(&errors);
		config_free(cfg);
		fail_msg("config refused");
	}
	return cfg;
}

void assert_errors(const char *text, ...)
{
	struct config_errors errors = { 0 };
	struct config *cfg = parse(text, &errors);
	const char *want;
	size_t i = 0;
	bool ok = true;
	va_list ap;

	va_start(ap, text);
	while ((want = va_arg(ap, const char *))) {
		if (i >= errors.count || strcmp(errors.messages[i], want) != 0) {
			print_error("message %zu: want: %s\n", i, want);
			ok = false;
		}
		i++;
	}
	va_end(ap);
	if (i != errors.count) {
		print_error("want %zu messages, got %zu\n", i, errors.count);
		ok = false;
	}
	if (!ok)
		print_errors(&errors);
	config_errors_free(&errors);
	config_free(cfg);
	assert_null(cfg);
	assert_true(ok);
}
