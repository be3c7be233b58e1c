/* Fuzz target: fleet_value's readers, which take what etcd hands the fleet
 * (site overrides, box presence, the schema, any key under the prefix)
 * and the local cache file. Byte 0 picks the reader, the rest is the
 * input. Whatever it is: no crash, leak or overrun; a refused input leaves
 * its output empty; what is accepted is within the documented limits, and
 * encodes to text that decodes to the same thing and encodes to the same
 * text again (one spelling per value). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fleet_value.h"
#include "fuzz_check.h"

#define P "/gatekeeper/prod/"

static bool text_fits(const char *text, size_t size)
{
	return memchr(text, '\0', size) != NULL;
}

static bool allow_equal(const struct site_allow *a, const struct site_allow *b)
{
	char x[CONFIG_CIDR_STRLEN], y[CONFIG_CIDR_STRLEN];

	if (!a || !b)
		return a == b;
	if (a->count != b->count)
		return false;
	for (size_t i = 0; i < a->count; i++)
		if (strcmp(config_cidr_str(&a->nets[i], x, sizeof(x)),
			   config_cidr_str(&b->nets[i], y, sizeof(y))) != 0)
			return false;
	return true;
}

static bool value_equal(const struct fleet_value *a, const struct fleet_value *b)
{
	return a->state == b->state && a->action == b->action && allow_equal(a->allow, b->allow) &&
	       a->until == b->until && a->cut == b->cut && strcmp(a->by, b->by) == 0 &&
	       strcmp(a->box, b->box) == 0 && a->at == b->at;
}

static void check_value(const struct fleet_value *v)
{
	CHECK(v->state == SITE_ONLINE || v->state == SITE_OFFLINE);
	CHECK(v->action == SITE_ACTION_DROP || v->action == SITE_ACTION_REJECT);
	CHECK(!v->allow || v->allow->count <= CONFIG_MAX_ALLOW);
	CHECK(v->until >= 0);
	CHECK(text_fits(v->by, sizeof(v->by)) && text_fits(v->box, sizeof(v->box)));
	CHECK(v->box[0] == '\0' || protocol_site_name_valid(v->box));
}

static bool value_empty(const struct fleet_value *v)
{
	return !v->allow && v->until == 0 && v->at == 0 && !v->cut && !v->by[0] && !v->box[0] &&
	       v->state == SITE_ONLINE && v->action == SITE_ACTION_DROP;
}

static void fuzz_value(const char *text, size_t len)
{
	struct fleet_value v, back, copy;
	char why[256] = "", *enc, *again;

	if (fleet_value_decode(text, len, &v, why, sizeof(why)) < 0) {
		CHECK(value_empty(&v) && why[0]);
		return;
	}
	check_value(&v);
	enc = fleet_value_encode(&v);
	CHECK(enc);
	CHECK(fleet_value_decode(enc, strlen(enc), &back, why, sizeof(why)) == 0);
	CHECK(value_equal(&v, &back));
	again = fleet_value_encode(&back);
	CHECK(again && strcmp(enc, again) == 0);
	CHECK(fleet_value_copy(&copy, &v) == 0);
	CHECK(value_equal(&v, &copy) && (!v.allow || copy.allow != v.allow));
	fleet_value_free(&copy);
	fleet_value_free(&back);
	fleet_value_free(&v);
	free(enc);
	free(again);
}

static void fuzz_box(const char *text, size_t len)
{
	struct fleet_box_value v, back;
	char *enc, *again;

	if (fleet_box_decode(text, len, &v) < 0) {
		CHECK(v.applied == 0 && v.started == 0 && v.pins == 0);
		return;
	}
	enc = fleet_box_encode(&v);
	CHECK(enc && fleet_box_decode(enc, strlen(enc), &back) == 0);
	CHECK(back.applied == v.applied && back.started == v.started && back.pins == v.pins);
	again = fleet_box_encode(&back);
	CHECK(again && strcmp(enc, again) == 0);
	free(enc);
	free(again);
}

static void fuzz_schema(const char *text, size_t len)
{
	struct fleet_schema s, back;
	char *enc, *again;

	if (fleet_schema_decode(text, len, &s) < 0) {
		CHECK(s.version == 0 && s.id[0] == '\0' && s.at == 0);
		return;
	}
	CHECK(s.version >= 1 && s.version <= 1000);
	CHECK(strlen(s.id) == FLEET_SCHEMA_ID_LEN &&
	      strspn(s.id, "0123456789abcdef") == FLEET_SCHEMA_ID_LEN);
	CHECK(text_fits(s.by, sizeof(s.by)));
	enc = fleet_schema_encode(&s);
	CHECK(enc && fleet_schema_decode(enc, strlen(enc), &back) == 0);
	CHECK(back.version == s.version && strcmp(back.id, s.id) == 0 &&
	      strcmp(back.by, s.by) == 0 && back.at == s.at);
	again = fleet_schema_encode(&back);
	CHECK(again && strcmp(enc, again) == 0);
	free(enc);
	free(again);
}

static void fuzz_cache(const char *text, size_t len)
{
	struct fleet_cache c, back;
	char why[256] = "", *enc, *again;

	if (fleet_cache_decode(text, len, &c, why, sizeof(why)) < 0) {
		CHECK(!c.entries && c.count == 0 && c.schema_id[0] == '\0' && c.keys[0] == '\0' &&
		      why[0]);
		return;
	}
	CHECK(strlen(c.schema_id) <= FLEET_SCHEMA_ID_LEN && strlen(c.keys) < FLEET_KEYS_MAX);
	for (size_t i = 0; i < c.count; i++) {
		CHECK(protocol_site_name_valid(c.entries[i].name));
		check_value(&c.entries[i].value);
		for (size_t j = 0; j < i; j++)
			CHECK(strcmp(c.entries[i].name, c.entries[j].name) != 0);
	}
	enc = fleet_cache_encode(&c);
	CHECK(enc && fleet_cache_decode(enc, strlen(enc), &back, why, sizeof(why)) == 0);
	CHECK(strcmp(back.schema_id, c.schema_id) == 0 && back.revision == c.revision);
	CHECK(strcmp(back.keys, c.keys) == 0);
	CHECK(back.count == c.count);
	for (size_t i = 0; i < c.count; i++) {
		CHECK(strcmp(back.entries[i].name, c.entries[i].name) == 0);
		CHECK(value_equal(&back.entries[i].value, &c.entries[i].value));
		CHECK(back.entries[i].mod_revision == c.entries[i].mod_revision);
	}
	again = fleet_cache_encode(&back);
	CHECK(again && strcmp(enc, again) == 0);
	fleet_cache_free(&back);
	fleet_cache_free(&c);
	free(enc);
	free(again);
}

/* A key's kind and name rebuild the very key; anything else is OTHER. */
static void fuzz_key(const char *key, size_t len)
{
	static const char *const words[] = {
		[FLEET_KEY_SITE] = "site/",
		[FLEET_KEY_BOX] = "box/",
	};
	char name[PROTOCOL_SITE_NAME_MAX + 1], rebuilt[sizeof(P) + 8 + PROTOCOL_SITE_NAME_MAX];
	enum fleet_key_kind kind = fleet_key_parse(P, key, len, name);

	CHECK(text_fits(name, sizeof(name)));
	switch (kind) {
	case FLEET_KEY_SCHEMA:
		CHECK(name[0] == '\0');
		CHECK(len == strlen(P "schema") && memcmp(key, P "schema", len) == 0);
		break;
	case FLEET_KEY_SITE:
	case FLEET_KEY_BOX:
		CHECK(protocol_site_name_valid(name));
		snprintf(rebuilt, sizeof(rebuilt), P "%s%s", words[kind], name);
		CHECK(len == strlen(rebuilt) && memcmp(key, rebuilt, len) == 0);
		break;
	case FLEET_KEY_OTHER:
		CHECK(name[0] == '\0');
		break;
	default:
		CHECK(!"unknown kind");
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *text = (const char *)data + 1;
	size_t len;

	if (size < 1)
		return 0;
	len = size - 1;
	switch (data[0] % 5) {
	case 0:
		fuzz_value(text, len);
		break;
	case 1:
		fuzz_box(text, len);
		break;
	case 2:
		fuzz_schema(text, len);
		break;
	case 3:
		fuzz_cache(text, len);
		break;
	default:
		fuzz_key(text, len);
		break;
	}
	return 0;
}
