/* Fuzz target: state_parse, the loader of the state file the daemon
 * rereads at every start. Whatever it accepts must be a set of valid,
 * distinct overrides, and writing that set out the way state_save does
 * and parsing it again must give the same set with no bad line: otherwise
 * a restart would lose or change overrides. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "state.h"
#include "fuzz_check.h"

/* The text state_save() writes for SET (kept in step with state.c). */
static char *format(const struct state_set *set, size_t *len)
{
	char *text = NULL;
	FILE *f = open_memstream(&text, len);

	if (!f)
		return NULL;
	fprintf(f, "%s %d\n# comment\n", STATE_MAGIC, STATE_VERSION);
	for (size_t i = 0; i < set->count; i++) {
		const struct state_entry *e = &set->entries[i];
		char net[CONFIG_CIDR_STRLEN];

		fprintf(f, "%s %s %s\n", e->name, config_state_name(e->state),
			config_action_name(e->action));
		if (e->allow) {
			fprintf(f, "+allow %s", e->name);
			for (size_t n = 0; n < e->allow->count; n++)
				fprintf(f, " %s", config_cidr_str(&e->allow->nets[n], net, sizeof(net)));
			fputc('\n', f);
		}
		if (e->until)
			fprintf(f, "+until %s %lld\n", e->name, (long long)e->until);
	}
	if (fclose(f) != 0) {
		free(text);
		return NULL;
	}
	return text;
}

static void check_round_trip(const struct state_set *set)
{
	struct state_set again = { 0 };
	size_t len = 0, bad = 0;
	char err[256];
	char *text = format(set, &len);

	if (!text)
		return;
	CHECK(state_parse(text, len, &again, &bad, err, sizeof(err)) == 0);
	CHECK(bad == 0 && again.count == set->count);
	for (size_t i = 0; i < set->count; i++) {
		const struct state_entry *e = state_set_find(&again, set->entries[i].name);

		CHECK(e && e->state == set->entries[i].state && e->action == set->entries[i].action);
		CHECK(e->until == set->entries[i].until);
		CHECK(!e->allow == !set->entries[i].allow);
		CHECK(!e->allow || e->allow->count == set->entries[i].allow->count);
	}
	state_set_free(&again);
	free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct state_set set = { 0 };
	size_t bad = 12345;
	char err[256];
	/* exact-size copy: the parser must never read past LEN */
	char *buf = malloc(size ? size : 1);

	if (!buf)
		return 0;
	memcpy(buf, data, size);
	memset(err, 'x', sizeof(err));
	if (state_parse(buf, size, &set, &bad, err, sizeof(err)) < 0) {
		CHECK(set.count == 0 && err[0] != '\0' && memchr(err, '\0', sizeof(err)));
		goto out;
	}
	CHECK(memchr(err, '\0', sizeof(err)));
	CHECK((bad == 0) == (err[0] == '\0'));
	for (size_t i = 0; i < set.count; i++) {
		const struct state_entry *e = &set.entries[i];

		CHECK(protocol_site_name_valid(e->name));
		CHECK(e->state == SITE_ONLINE || e->state == SITE_OFFLINE);
		CHECK(e->action == SITE_ACTION_DROP || e->action == SITE_ACTION_REJECT);
		CHECK(state_set_find(&set, e->name) == e); /* names are distinct */
	}
	check_round_trip(&set);
out:
	state_set_free(&set);
	free(buf);
	return 0;
}
