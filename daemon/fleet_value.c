/* fleet_value: see fleet_value.h. */
#include "fleet_value.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#define MAX_DEPTH 8
#define CACHE_FORMAT "gatekeeper-fleet-cache 1"

enum fleet_key_kind fleet_key_parse(const char *p, const char *key, size_t key_len,
				    char name[PROTOCOL_SITE_NAME_MAX + 1])
{
	static const struct {
		const char *word;
		enum fleet_key_kind kind;
	} kinds[] = {{"site/", FLEET_KEY_SITE}, {"box/", FLEET_KEY_BOX}};
	size_t plen = strlen(p);

	name[0] = '\0';
	if (key_len < plen || memcmp(key, p, plen) != 0)
		return FLEET_KEY_OTHER;
	key += plen;
	key_len -= plen;
	if (key_len == 6 && memcmp(key, "schema", 6) == 0)
		return FLEET_KEY_SCHEMA;
	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
		size_t wlen = strlen(kinds[i].word), nlen = key_len - wlen;

		if (key_len <= wlen || memcmp(key, kinds[i].word, wlen) != 0 ||
		    nlen > PROTOCOL_SITE_NAME_MAX)
			continue;
		memcpy(name, key + wlen, nlen);
		name[nlen] = '\0';
		if (strlen(name) != nlen || !protocol_site_name_valid(name)) {
			name[0] = '\0';
			return FLEET_KEY_OTHER;
		}
		return kinds[i].kind;
	}
	return FLEET_KEY_OTHER;
}

/* One name of at most PROTOCOL_SITE_NAME_MAX valid characters from
 * TEXT[0..LEN) into NAME; false if it is not one. */
static bool take_name(const char *text, size_t len, char name[PROTOCOL_SITE_NAME_MAX + 1])
{
	if (len == 0 || len > PROTOCOL_SITE_NAME_MAX || memchr(text, '\0', len))
		return false;
	memcpy(name, text, len);
	name[len] = '\0';
	return protocol_site_name_valid(name);
}

bool fleet_check_key_parse(const char *p, const char *key, size_t key_len,
			   char box[PROTOCOL_SITE_NAME_MAX + 1], char site[PROTOCOL_SITE_NAME_MAX + 1])
{
	static const char word[] = "check/";
	size_t plen = strlen(p), wlen = sizeof(word) - 1;
	const char *rest, *slash;

	if (key_len < plen + wlen || memcmp(key, p, plen) != 0 || memcmp(key + plen, word, wlen) != 0)
		return false;
	rest = key + plen + wlen;
	key_len -= plen + wlen;
	slash = memchr(rest, '/', key_len);
	return slash && take_name(rest, (size_t)(slash - rest), box) &&
	       take_name(slash + 1, key_len - (size_t)(slash - rest) - 1, site);
}

/* ---- reading ---- */

static json_object *parse(const char *text, size_t len, size_t max)
{
	json_tokener *tok;
	json_object *obj;

	if (len > max)
		return NULL;
	tok = json_tokener_new_ex(MAX_DEPTH);
	if (!tok)
		return NULL;
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
	obj = json_tokener_parse_ex(tok, text, (int)len);
	if (obj && (json_tokener_get_error(tok) != json_tokener_success ||
		    tok->char_offset != (int)len || !json_object_is_type(obj, json_type_object))) {
		json_object_put(obj);
		obj = NULL;
	}
	json_tokener_free(tok);
	return obj;
}

/* A string member without NUL bytes in it (JSON may escape one as
 * \u0000: "offline\u0000junk" must not read as "offline"), or NULL. */
static const char *get_string(json_object *o, const char *key)
{
	json_object *v;
	const char *s;

	if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string))
		return NULL;
	s = json_object_get_string(v);
	return strlen(s) == (size_t)json_object_get_string_len(v) ? s : NULL;
}

/* A 64-bit number, as a JSON string (how etcd writes them) or an int;
 * absent: DEFAULT_VALUE. -1 for anything else. */
static int get_int64(json_object *o, const char *key, int64_t default_value, int64_t *out)
{
	json_object *v;
	const char *s;
	char *end;
	long long n;

	*out = default_value;
	if (!json_object_object_get_ex(o, key, &v))
		return 0;
	if (json_object_is_type(v, json_type_int)) {
		/* json-c clamps a number past int64 to its ends, silently */
		*out = json_object_get_int64(v);
		return *out == INT64_MAX || *out == INT64_MIN ? -1 : 0;
	}
	if (!json_object_is_type(v, json_type_string))
		return -1;
	s = json_object_get_string(v);
	errno = 0;
	n = strtoll(s, &end, 10);
	if (errno || end == s || *end)
		return -1;
	*out = n;
	return 0;
}

static void copy_text(char *to, size_t size, const char *from)
{
	snprintf(to, size, "%s", from ? from : "");
}

static int read_value_object(json_object *o, struct fleet_value *out, char *why, size_t why_len)
{
	const char *state = get_string(o, "state"), *action = get_string(o, "action");
	const char *box = get_string(o, "box");
	json_object *allow, *cut;

	memset(out, 0, sizeof(*out));
	if (!state || config_parse_state(state, &out->state) < 0) {
		snprintf(why, why_len, "no valid \"state\"");
		return -1;
	}
	if (!action || config_parse_action(action, &out->action) < 0) {
		snprintf(why, why_len, "no valid \"action\"");
		return -1;
	}
	if (get_int64(o, "until", 0, &out->until) < 0 || out->until < 0 ||
	    get_int64(o, "at", 0, &out->at) < 0) {
		snprintf(why, why_len, "\"until\" or \"at\" is not a time");
		return -1;
	}
	if (json_object_object_get_ex(o, "cut", &cut)) {
		if (!json_object_is_type(cut, json_type_boolean)) {
			snprintf(why, why_len, "\"cut\" is not true or false");
			return -1;
		}
		out->cut = json_object_get_boolean(cut);
	}
	if (box && !protocol_site_name_valid(box))
		box = NULL;
	copy_text(out->box, sizeof(out->box), box);
	copy_text(out->by, sizeof(out->by), get_string(o, "by"));
	if (json_object_object_get_ex(o, "allow", &allow)) {
		struct config_cidr nets[CONFIG_MAX_ALLOW];
		size_t n;

		if (!json_object_is_type(allow, json_type_array) ||
		    (n = json_object_array_length(allow)) > CONFIG_MAX_ALLOW) {
			snprintf(why, why_len, "\"allow\" is not a list of at most %d networks",
				 CONFIG_MAX_ALLOW);
			return -1;
		}
		for (size_t i = 0; i < n; i++) {
			json_object *net = json_object_array_get_idx(allow, i);
			char net_why[96];

			if (!json_object_is_type(net, json_type_string) ||
			    config_parse_cidr(json_object_get_string(net), &nets[i], net_why,
					      sizeof(net_why)) < 0) {
				snprintf(why, why_len, "\"allow\" item %zu is not a network", i);
				return -1;
			}
		}
		out->allow = site_allow_new(nets, n);
		if (!out->allow) {
			snprintf(why, why_len, "out of memory");
			return -1;
		}
	}
	return 0;
}

/* On -1, OUT is left empty: fields read before the refusal (an "until" of
 * -1) must not look like a value. Nothing is allocated then: the list is
 * the last thing read. */
static int decode_value_object(json_object *o, struct fleet_value *out, char *why, size_t why_len)
{
	if (read_value_object(o, out, why, why_len) < 0) {
		memset(out, 0, sizeof(*out));
		return -1;
	}
	return 0;
}

int fleet_value_decode(const char *text, size_t len, struct fleet_value *out, char *why,
		       size_t why_len)
{
	json_object *o = parse(text, len, FLEET_VALUE_MAX);
	int rc;

	memset(out, 0, sizeof(*out));
	if (!o) {
		snprintf(why, why_len, "not a JSON object of at most %u bytes", FLEET_VALUE_MAX);
		return -1;
	}
	rc = decode_value_object(o, out, why, why_len);
	json_object_put(o);
	return rc;
}

int fleet_box_decode(const char *text, size_t len, struct fleet_box_value *out)
{
	json_object *o = parse(text, len, FLEET_VALUE_MAX);
	int64_t pins = 0;
	int rc;

	memset(out, 0, sizeof(*out));
	if (!o)
		return -1;
	rc = get_int64(o, "applied", 0, &out->applied) < 0 ||
	     get_int64(o, "started", 0, &out->started) < 0 ||
	     get_int64(o, "pins", 0, &pins) < 0 || pins < 0 || pins > UINT32_MAX ? -1 : 0;
	out->pins = (unsigned)pins;
	if (rc < 0)
		memset(out, 0, sizeof(*out));
	json_object_put(o);
	return rc;
}

int fleet_schema_decode(const char *text, size_t len, struct fleet_schema *out)
{
	json_object *o = parse(text, len, FLEET_VALUE_MAX);
	const char *id;
	int64_t version;
	int rc = -1;

	memset(out, 0, sizeof(*out));
	if (!o)
		return -1;
	id = get_string(o, "id");
	if (get_int64(o, "version", 0, &version) == 0 && version >= 1 && version <= 1000 && id &&
	    strlen(id) == FLEET_SCHEMA_ID_LEN && strspn(id, "0123456789abcdef") == FLEET_SCHEMA_ID_LEN &&
	    get_int64(o, "at", 0, &out->at) == 0) {
		out->version = (int)version;
		memcpy(out->id, id, FLEET_SCHEMA_ID_LEN + 1);
		copy_text(out->by, sizeof(out->by), get_string(o, "by"));
		rc = 0;
	}
	json_object_put(o);
	return rc;
}

void fleet_value_free(struct fleet_value *v)
{
	free(v->allow);
	v->allow = NULL;
}

int fleet_value_copy(struct fleet_value *to, const struct fleet_value *from)
{
	*to = *from;
	to->allow = NULL;
	if (from->allow && !(to->allow = site_allow_new(from->allow->nets, from->allow->count)))
		return -1;
	return 0;
}

/* ---- writing ---- */

static json_object *int64_string(int64_t v)
{
	char text[24];

	snprintf(text, sizeof(text), "%" PRId64, v);
	return json_object_new_string(text);
}

/* json-c owns what it is given: one helper to add and notice a failure. */
static void add(json_object *o, const char *key, json_object *v, bool *failed)
{
	if (!v || json_object_object_add(o, key, v) < 0) {
		json_object_put(v);
		*failed = true;
	}
}

static char *finish(json_object *o, bool failed)
{
	char *text = NULL;

	if (o && !failed)
		text = strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
								      JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(o);
	return text;
}

static json_object *value_object(const struct fleet_value *v)
{
	json_object *o = json_object_new_object();
	bool failed = !o;

	if (failed)
		return NULL;
	add(o, "state", json_object_new_string(config_state_name(v->state)), &failed);
	add(o, "action", json_object_new_string(config_action_name(v->action)), &failed);
	if (v->allow) {
		json_object *list = json_object_new_array();
		char net[CONFIG_CIDR_STRLEN];

		for (size_t i = 0; list && i < v->allow->count; i++)
			if (json_object_array_add(list, json_object_new_string(config_cidr_str(
								&v->allow->nets[i], net, sizeof(net)))) < 0)
				failed = true;
		add(o, "allow", list, &failed);
	}
	if (v->until)
		add(o, "until", int64_string(v->until), &failed);
	if (v->cut)
		add(o, "cut", json_object_new_boolean(1), &failed);
	add(o, "by", json_object_new_string(v->by), &failed);
	add(o, "box", json_object_new_string(v->box), &failed);
	add(o, "at", int64_string(v->at), &failed);
	if (failed) {
		json_object_put(o);
		return NULL;
	}
	return o;
}

char *fleet_value_encode(const struct fleet_value *v)
{
	json_object *o = value_object(v);

	return finish(o, !o);
}

char *fleet_box_encode(const struct fleet_box_value *v)
{
	json_object *o = json_object_new_object();
	bool failed = !o;

	if (o) {
		add(o, "applied", int64_string(v->applied), &failed);
		add(o, "started", int64_string(v->started), &failed);
		add(o, "pins", int64_string(v->pins), &failed);
	}
	return finish(o, failed);
}

char *fleet_schema_encode(const struct fleet_schema *v)
{
	json_object *o = json_object_new_object();
	bool failed = !o;

	if (o) {
		add(o, "version", int64_string(v->version), &failed);
		add(o, "id", json_object_new_string(v->id), &failed);
		add(o, "by", json_object_new_string(v->by), &failed);
		add(o, "at", int64_string(v->at), &failed);
	}
	return finish(o, failed);
}

/* ---- the cache ---- */

char *fleet_cache_encode(const struct fleet_cache *c)
{
	json_object *o = json_object_new_object(), *sites = json_object_new_object();
	bool failed = !o || !sites;

	if (failed) {
		json_object_put(o);
		json_object_put(sites);
		return NULL;
	}
	add(o, "format", json_object_new_string(CACHE_FORMAT), &failed);
	add(o, "keys", json_object_new_string(c->keys), &failed);
	add(o, "schema", json_object_new_string(c->schema_id), &failed);
	add(o, "revision", int64_string(c->revision), &failed);
	for (size_t i = 0; i < c->count && !failed; i++) {
		json_object *v = value_object(&c->entries[i].value);

		if (v)
			add(v, "mod_revision", int64_string(c->entries[i].mod_revision), &failed);
		add(sites, c->entries[i].name, v, &failed);
	}
	add(o, "sites", sites, &failed);
	return finish(o, failed);
}

int fleet_cache_decode(const char *text, size_t len, struct fleet_cache *out, char *why,
		       size_t why_len)
{
	json_object *o, *sites;
	const char *format, *schema, *keys;
	int rc = -1;

	memset(out, 0, sizeof(*out));
	if (len > FLEET_CACHE_MAX || !(o = parse(text, len, FLEET_CACHE_MAX))) {
		snprintf(why, why_len, "not a JSON object of at most %u bytes", FLEET_CACHE_MAX);
		return -1;
	}
	format = get_string(o, "format");
	schema = get_string(o, "schema");
	if (!format || strcmp(format, CACHE_FORMAT) != 0) {
		snprintf(why, why_len, "not a fleet cache (want \"format\": \"%s\")", CACHE_FORMAT);
		goto out;
	}
	if (!schema || strlen(schema) > FLEET_SCHEMA_ID_LEN ||
	    get_int64(o, "revision", 0, &out->revision) < 0 ||
	    !json_object_object_get_ex(o, "sites", &sites) ||
	    !json_object_is_type(sites, json_type_object)) {
		snprintf(why, why_len, "no schema, revision or sites");
		goto out;
	}
	/* absent: a cache of the first format, of whichever fleet */
	keys = get_string(o, "keys");
	if (json_object_object_get_ex(o, "keys", NULL) && !keys) {
		snprintf(why, why_len, "keys is not a string");
		goto out;
	}
	if (keys && strlen(keys) >= sizeof(out->keys)) {
		snprintf(why, why_len, "keys longer than %zu bytes", sizeof(out->keys) - 1);
		goto out;
	}
	copy_text(out->keys, sizeof(out->keys), keys ? keys : "");
	copy_text(out->schema_id, sizeof(out->schema_id), schema);
	out->entries = calloc((size_t)json_object_object_length(sites) + 1, sizeof(*out->entries));
	if (!out->entries) {
		snprintf(why, why_len, "out of memory");
		goto out;
	}
	json_object_object_foreach(sites, name, v) {
		struct fleet_cache_entry *e = &out->entries[out->count];

		if (!protocol_site_name_valid(name) || !json_object_is_type(v, json_type_object) ||
		    decode_value_object(v, &e->value, why, why_len) < 0) {
			snprintf(why, why_len, "site entry '%.64s' is not valid", name);
			goto out;
		}
		out->count++; /* freed from here on */
		copy_text(e->name, sizeof(e->name), name);
		if (get_int64(v, "mod_revision", 0, &e->mod_revision) < 0) {
			snprintf(why, why_len, "site entry '%.64s': bad mod_revision", name);
			goto out;
		}
	}
	rc = 0;
out:
	json_object_put(o);
	if (rc < 0)
		fleet_cache_free(out);
	return rc;
}

void fleet_cache_free(struct fleet_cache *c)
{
	for (size_t i = 0; i < c->count; i++)
		fleet_value_free(&c->entries[i].value);
	free(c->entries);
	memset(c, 0, sizeof(*c));
}
