#include "etcd_json.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>
#include <openssl/evp.h>

/* ---- base64 */

char *etcd_json_base64_encode(const void *data, size_t len)
{
	size_t out_len;
	char *out;

	if (len > INT_MAX / 2)
		return NULL;
	out_len = 4 * ((len + 2) / 3);
	out = malloc(out_len + 1);
	if (!out)
		return NULL;
	if (len)
		EVP_EncodeBlock((unsigned char *)out, data, (int)len);
	out[out_len] = '\0';
	return out;
}

static bool base64_char(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       c == '+' || c == '/';
}

char *etcd_json_base64_decode(const char *text, size_t len, size_t max_len, size_t *out_len)
{
	size_t pad = 0, n;
	unsigned char *out;
	int got;

	/* EVP_DecodeBlock skips blanks and takes padding anywhere in a
	 * quantum; the check here makes one spelling per byte string. */
	if (len % 4 || len / 4 * 3 > max_len + 2 || len > INT_MAX)
		return NULL;
	if (len && text[len - 1] == '=')
		pad = len >= 2 && text[len - 2] == '=' ? 2 : 1;
	for (size_t i = 0; i < len - pad; i++)
		if (!base64_char((unsigned char)text[i]))
			return NULL;
	n = len / 4 * 3 - pad;
	if (n > max_len)
		return NULL;
	out = malloc(len / 4 * 3 + 1);
	if (!out)
		return NULL;
	got = len ? EVP_DecodeBlock(out, (const unsigned char *)text, (int)len) : 0;
	/* EVP_DecodeBlock counts the bytes the padding stands for */
	if (got < 0 || (size_t)got != len / 4 * 3) {
		free(out);
		return NULL;
	}
	out[n] = '\0';
	*out_len = n;
	return (char *)out;
}

/* ---- reading */

/* TEXT as one JSON value, nothing after it but blanks; NULL if not. */
static json_object *parse_text(const char *text, size_t len)
{
	json_tokener *tok;
	json_object *obj;

	while (len && (text[len - 1] == '\n' || text[len - 1] == '\r' || text[len - 1] == ' ' ||
		       text[len - 1] == '\t'))
		len--;
	/* json-c takes an int length and stops at a NUL */
	if (!len || len > INT_MAX || memchr(text, '\0', len))
		return NULL;
	tok = json_tokener_new_ex(ETCD_JSON_MAX_DEPTH);
	if (!tok)
		return NULL;
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
	obj = json_tokener_parse_ex(tok, text, (int)len);
	if (obj && (json_tokener_get_error(tok) != json_tokener_success ||
		    json_tokener_get_parse_end(tok) != len)) {
		json_object_put(obj);
		obj = NULL;
	}
	json_tokener_free(tok);
	if (obj && !json_object_is_type(obj, json_type_object)) {
		json_object_put(obj);
		obj = NULL;
	}
	return obj;
}

/* Member NAME of OBJ if present and of TYPE. 0 and *OUT set (NULL when
 * absent or null: proto3's zero); -1 when present with another type. */
static int member(json_object *obj, const char *name, json_type type, json_object **out)
{
	json_object *m;

	*out = NULL;
	if (!json_object_object_get_ex(obj, name, &m) || !m)
		return 0;
	if (!json_object_is_type(m, type))
		return -1;
	*out = m;
	return 0;
}

/* A non-negative 64-bit number, as gRPC-gateway writes it ("123") or as a
 * JSON integer; absent is 0. json-c saturates integers past int64 at
 * INT64_MAX, so that value is refused in both forms. */
static int get_int64(json_object *obj, const char *name, int64_t *out)
{
	json_object *m;
	const char *s;
	char *end;
	long long v;

	*out = 0;
	if (!json_object_object_get_ex(obj, name, &m) || !m)
		return 0;
	if (json_object_is_type(m, json_type_int)) {
		errno = 0;
		v = json_object_get_int64(m);
		if (errno || v < 0 || v == INT64_MAX)
			return -1;
		*out = v;
		return 0;
	}
	if (!json_object_is_type(m, json_type_string))
		return -1;
	s = json_object_get_string(m);
	if (*s < '0' || *s > '9' || (size_t)json_object_get_string_len(m) > 20)
		return -1;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno || *end || end != s + json_object_get_string_len(m) || v == INT64_MAX)
		return -1;
	*out = v;
	return 0;
}

static int get_bool(json_object *obj, const char *name, bool *out)
{
	json_object *m;

	if (member(obj, name, json_type_boolean, &m) < 0)
		return -1;
	*out = m && json_object_get_boolean(m);
	return 0;
}

/* Copies string member NAME (absent: "") into BUF, truncated. */
static int get_text(json_object *obj, const char *name, char *buf, size_t size)
{
	json_object *m;
	size_t n = 0;

	if (member(obj, name, json_type_string, &m) < 0)
		return -1;
	if (m) {
		n = (size_t)json_object_get_string_len(m);
		if (n >= size)
			n = size - 1;
		memcpy(buf, json_object_get_string(m), n);
	}
	buf[n] = '\0';
	return 0;
}

/* A base64 member NAME decoded into *OUT and *OUT_LEN; absent is "" when
 * OPTIONAL, else an error. */
static int get_bytes(json_object *obj, const char *name, size_t max_len, bool optional,
		     char **out, size_t *out_len)
{
	json_object *m;

	if (member(obj, name, json_type_string, &m) < 0 || (!m && !optional))
		return -1;
	if (!m) {
		*out = calloc(1, 1);
		*out_len = 0;
		return *out ? 0 : -1;
	}
	*out = etcd_json_base64_decode(json_object_get_string(m),
				       (size_t)json_object_get_string_len(m), max_len, out_len);
	return *out ? 0 : -1;
}

static void kv_free(struct etcd_kv *kv)
{
	free(kv->key);
	free(kv->value);
	memset(kv, 0, sizeof(*kv));
}

static int parse_kv(json_object *obj, struct etcd_kv *kv)
{
	memset(kv, 0, sizeof(*kv));
	if (!json_object_is_type(obj, json_type_object) ||
	    get_bytes(obj, "key", ETCD_JSON_MAX_KEY, false, &kv->key, &kv->key_len) < 0 ||
	    get_bytes(obj, "value", ETCD_JSON_MAX_VALUE, true, &kv->value, &kv->value_len) < 0 ||
	    get_int64(obj, "create_revision", &kv->create_revision) < 0 ||
	    get_int64(obj, "mod_revision", &kv->mod_revision) < 0 ||
	    get_int64(obj, "version", &kv->version) < 0 || get_int64(obj, "lease", &kv->lease) < 0) {
		kv_free(kv);
		return -1;
	}
	return 0;
}

static int parse_header(json_object *obj, struct etcd_header *h)
{
	json_object *m;

	h->revision = 0;
	if (member(obj, "header", json_type_object, &m) < 0)
		return -1;
	return m ? get_int64(m, "revision", &h->revision) : 0;
}

/* Either error shape. 1: OBJ is an error (ERR filled); 0: it is not; -1:
 * it has an "error" member that fits neither shape. */
static int parse_error(json_object *obj, struct etcd_error *err)
{
	json_object *e, *code;
	int64_t v;

	memset(err, 0, sizeof(*err));
	if (!json_object_object_get_ex(obj, "error", &e) || !e)
		return 0;
	if (json_object_is_type(e, json_type_string)) {
		/* unary: {"error":"..","message":"..","code":N} */
		if (!json_object_object_get_ex(obj, "code", &code) || get_int64(obj, "code", &v) < 0 ||
		    get_text(obj, "message", err->message, sizeof(err->message)) < 0)
			return -1;
		if (!err->message[0])
			get_text(obj, "error", err->message, sizeof(err->message));
	} else if (json_object_is_type(e, json_type_object)) {
		int64_t http;

		if (!json_object_object_get_ex(e, "grpc_code", &code) ||
		    get_int64(e, "grpc_code", &v) < 0 || get_int64(e, "http_code", &http) < 0 ||
		    http > 999 || get_text(e, "message", err->message, sizeof(err->message)) < 0)
			return -1;
		err->http_code = (int)http;
	} else {
		return -1;
	}
	/* gRPC codes are 1..16; 0 would read as success */
	if (v < 1 || v > 255)
		return -1;
	err->grpc_code = (int)v;
	return 1;
}

/* The reply object itself: streamed calls wrap it in "result". */
static int unwrap_result(json_object *obj, json_object **out)
{
	json_object *r;

	if (member(obj, "result", json_type_object, &r) < 0)
		return -1;
	*out = r ? r : obj;
	return 0;
}

/* Each item of OBJ's array KEY through PARSE into a new array of SIZE-byte
 * items (*ITEMS, also after a failure); *N counts the items parsed, so the
 * caller's free after a failure frees exactly those. Absent: none. */
static int parse_array(json_object *obj, const char *key, size_t size,
		       int (*parse)(json_object *item, void *out), void **items, size_t *n)
{
	json_object *arr;
	size_t count;
	char *out;

	if (member(obj, key, json_type_array, &arr) < 0)
		return -1;
	if (!arr)
		return 0;
	count = json_object_array_length(arr);
	if (count > ETCD_JSON_MAX_ITEMS)
		return -1;
	*items = out = calloc(count ? count : 1, size);
	if (!out)
		return -1;
	for (size_t i = 0; i < count; i++) {
		if (parse(json_object_array_get_idx(arr, i), out + i * size) < 0)
			return -1;
		(*n)++;
	}
	return 0;
}

static int kv_item(json_object *item, void *out)
{
	return parse_kv(item, out);
}

static int parse_kvs(json_object *obj, struct etcd_reply *r)
{
	void *kvs = NULL;
	int rc = parse_array(obj, "kvs", sizeof(*r->kvs), kv_item, &kvs, &r->n_kvs);

	r->kvs = kvs;
	return rc;
}

static int parse_reply_fields(enum etcd_op op, json_object *obj, struct etcd_reply *r)
{
	if (parse_header(obj, &r->header) < 0)
		return -1;
	switch (op) {
	case ETCD_OP_RANGE:
		return parse_kvs(obj, r) < 0 || get_int64(obj, "count", &r->count) < 0 ||
				       get_bool(obj, "more", &r->more) < 0
			       ? -1
			       : 0;
	case ETCD_OP_DELETE:
		return get_int64(obj, "deleted", &r->deleted);
	case ETCD_OP_TXN:
		return get_bool(obj, "succeeded", &r->succeeded);
	case ETCD_OP_LEASE_GRANT:
	case ETCD_OP_LEASE_KEEPALIVE:
		/* a grant without an ID granted nothing */
		if (get_int64(obj, "ID", &r->id) < 0 || get_int64(obj, "TTL", &r->ttl) < 0 ||
		    (op == ETCD_OP_LEASE_GRANT && (r->id == 0 || r->ttl == 0)))
			return -1;
		return 0;
	case ETCD_OP_PUT:
	case ETCD_OP_LEASE_REVOKE:
		return 0;
	}
	return -1;
}

void etcd_reply_free(struct etcd_reply *r)
{
	for (size_t i = 0; i < r->n_kvs; i++)
		kv_free(&r->kvs[i]);
	free(r->kvs);
	memset(r, 0, sizeof(*r));
}

int etcd_json_parse_reply(enum etcd_op op, const char *text, size_t len, struct etcd_reply *out,
			  struct etcd_error *err)
{
	json_object *root, *obj;
	int rc = -1;

	memset(out, 0, sizeof(*out));
	memset(err, 0, sizeof(*err));
	root = parse_text(text, len);
	if (!root)
		return -1;
	switch (parse_error(root, err)) {
	case 1:
		rc = 0;
		goto done;
	case -1:
		goto done;
	}
	if (unwrap_result(root, &obj) < 0)
		goto done;
	/* a stream (keepalive) may put its error inside "result" */
	if (obj != root) {
		int e = parse_error(obj, err);

		if (e != 0) {
			rc = e > 0 ? 0 : -1;
			goto done;
		}
	}
	if (parse_reply_fields(op, obj, out) == 0)
		rc = 0;
done:
	if (rc < 0) {
		etcd_reply_free(out);
		memset(err, 0, sizeof(*err));
	}
	json_object_put(root);
	return rc;
}

/* ---- the watch stream */

void etcd_watch_msg_free(struct etcd_watch_msg *m)
{
	for (size_t i = 0; i < m->n_events; i++)
		kv_free(&m->events[i].kv);
	free(m->events);
	memset(m, 0, sizeof(*m));
}

static int event_item(json_object *ev, void *out)
{
	struct etcd_event *e = out;
	json_object *type, *kv;

	if (!json_object_is_type(ev, json_type_object) ||
	    member(ev, "type", json_type_string, &type) < 0 ||
	    member(ev, "kv", json_type_object, &kv) < 0 || !kv)
		return -1;
	if (!type || !strcmp(json_object_get_string(type), "PUT"))
		e->type = ETCD_EVENT_PUT;
	else if (!strcmp(json_object_get_string(type), "DELETE"))
		e->type = ETCD_EVENT_DELETE;
	else
		return -1;
	return parse_kv(kv, &e->kv);
}

static int parse_events(json_object *obj, struct etcd_watch_msg *m)
{
	void *events = NULL;
	int rc = parse_array(obj, "events", sizeof(*m->events), event_item, &events, &m->n_events);

	m->events = events;
	return rc;
}

int etcd_json_parse_watch(const char *line, size_t len, struct etcd_watch_msg *out)
{
	json_object *root, *obj;
	bool created, canceled;
	int rc = -1;

	memset(out, 0, sizeof(*out));
	root = parse_text(line, len);
	if (!root)
		return -1;
	switch (parse_error(root, &out->error)) {
	case 1:
		out->kind = ETCD_WATCH_ERROR;
		rc = 0;
		goto done;
	case -1:
		goto done;
	}
	if (member(root, "result", json_type_object, &obj) < 0 || !obj)
		goto done;
	if (parse_header(obj, &out->header) < 0 || get_int64(obj, "watch_id", &out->watch_id) < 0 ||
	    get_bool(obj, "created", &created) < 0 || get_bool(obj, "canceled", &canceled) < 0 ||
	    get_int64(obj, "compact_revision", &out->compact_revision) < 0 ||
	    get_text(obj, "cancel_reason", out->cancel_reason, sizeof(out->cancel_reason)) < 0 ||
	    parse_events(obj, out) < 0)
		goto done;
	if (canceled)
		out->kind = ETCD_WATCH_CANCELED;
	else if (created)
		out->kind = ETCD_WATCH_CREATED;
	else if (out->n_events)
		out->kind = ETCD_WATCH_EVENTS;
	else
		out->kind = ETCD_WATCH_PROGRESS;
	rc = 0;
done:
	if (rc < 0)
		etcd_watch_msg_free(out);
	json_object_put(root);
	return rc;
}

/* ---- request bodies */

/* OBJ as compact JSON in a malloc'd string; takes OBJ. NULL if OBJ is. */
static char *finish(json_object *obj)
{
	const char *text;
	char *body = NULL;

	if (!obj)
		return NULL;
	text = json_object_to_json_string_ext(obj, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
	if (text)
		body = strdup(text);
	json_object_put(obj);
	return body;
}

/* Adds NAME: base64(DATA) to OBJ. */
static int add_bytes(json_object *obj, const char *name, const void *data, size_t len)
{
	char *b64 = etcd_json_base64_encode(data, len);
	json_object *s;

	if (!b64)
		return -1;
	s = json_object_new_string(b64);
	free(b64);
	if (!s)
		return -1;
	if (json_object_object_add(obj, name, s) < 0) {
		json_object_put(s);
		return -1;
	}
	return 0;
}

/* Adds NAME: "V" to OBJ, a 64-bit number as the gateway spells it. */
static int add_int64(json_object *obj, const char *name, int64_t v)
{
	char text[24];
	json_object *s;

	snprintf(text, sizeof(text), "%" PRId64, v);
	s = json_object_new_string(text);
	if (!s)
		return -1;
	if (json_object_object_add(obj, name, s) < 0) {
		json_object_put(s);
		return -1;
	}
	return 0;
}

static int add_child(json_object *obj, const char *name, json_object *child)
{
	if (!child)
		return -1;
	if (json_object_object_add(obj, name, child) < 0) {
		json_object_put(child);
		return -1;
	}
	return 0;
}

/* Makes OBJ's "key" (and with PREFIX its "range_end") name KEY. */
static int add_key(json_object *obj, const void *key, size_t key_len, bool prefix)
{
	unsigned char end[ETCD_JSON_MAX_KEY];
	size_t n = key_len;

	if (key_len > ETCD_JSON_MAX_KEY)
		return -1;
	if (!prefix)
		return add_bytes(obj, "key", key, key_len);
	/* etcd reads range_end "\0" as "every key >= key": the prefix of
	 * everything is key "\0" too. */
	if (key_len == 0)
		return add_bytes(obj, "key", "", 1) < 0 ? -1 : add_bytes(obj, "range_end", "", 1);
	memcpy(end, key, key_len);
	while (n && end[n - 1] == 0xff)
		n--;
	if (n == 0)
		return add_bytes(obj, "key", key, key_len) < 0 ? -1 : add_bytes(obj, "range_end", "", 1);
	end[n - 1]++;
	if (add_bytes(obj, "key", key, key_len) < 0)
		return -1;
	return add_bytes(obj, "range_end", end, n);
}

char *etcd_json_range_body(const void *key, size_t key_len, bool prefix)
{
	json_object *obj = json_object_new_object();

	if (obj && add_key(obj, key, key_len, prefix) < 0) {
		json_object_put(obj);
		return NULL;
	}
	return finish(obj);
}

/* {"key":..,"value":..[,"lease":..]} for a put or a txn's request_put */
static json_object *put_object(const void *key, size_t key_len, const void *value,
			       size_t value_len, int64_t lease)
{
	json_object *obj;

	if (key_len > ETCD_JSON_MAX_KEY || value_len > ETCD_JSON_MAX_VALUE || lease < 0)
		return NULL;
	obj = json_object_new_object();
	if (obj && (add_bytes(obj, "key", key, key_len) < 0 ||
		    add_bytes(obj, "value", value, value_len) < 0 ||
		    (lease && add_int64(obj, "lease", lease) < 0))) {
		json_object_put(obj);
		return NULL;
	}
	return obj;
}

char *etcd_json_put_body(const void *key, size_t key_len, const void *value, size_t value_len,
			 int64_t lease)
{
	return finish(put_object(key, key_len, value, value_len, lease));
}

char *etcd_json_delete_body(const void *key, size_t key_len, bool prefix)
{
	return etcd_json_range_body(key, key_len, prefix);
}

char *etcd_json_txn_create_body(const void *key, size_t key_len, const void *value,
				size_t value_len, int64_t lease)
{
	json_object *obj, *compare, *cmp, *success, *op;

	if (key_len > ETCD_JSON_MAX_KEY)
		return NULL;
	obj = json_object_new_object();
	if (!obj)
		return NULL;
	/* compare: create_revision(key) == 0, i.e. the key does not exist;
	 * "result":"EQUAL" is proto3's zero and may go unsaid, but saying it
	 * keeps the body readable in a capture. */
	cmp = json_object_new_object();
	if (add_child(obj, "compare", compare = json_object_new_array()) < 0 || !cmp ||
	    json_object_array_add(compare, cmp) < 0) {
		json_object_put(cmp);
		goto fail;
	}
	if (add_bytes(cmp, "key", key, key_len) < 0 ||
	    add_child(cmp, "target", json_object_new_string("CREATE")) < 0 ||
	    add_child(cmp, "result", json_object_new_string("EQUAL")) < 0 ||
	    add_int64(cmp, "create_revision", 0) < 0)
		goto fail;
	op = json_object_new_object();
	if (add_child(obj, "success", success = json_object_new_array()) < 0 || !op ||
	    json_object_array_add(success, op) < 0) {
		json_object_put(op);
		goto fail;
	}
	if (add_child(op, "request_put", put_object(key, key_len, value, value_len, lease)) < 0)
		goto fail;
	return finish(obj);
fail:
	json_object_put(obj);
	return NULL;
}

char *etcd_json_watch_body(const void *key, size_t key_len, bool prefix, int64_t start_revision,
			   bool progress_notify)
{
	json_object *obj = json_object_new_object(), *req = json_object_new_object();

	if (!obj || !req || start_revision < 0)
		goto fail;
	if (add_key(req, key, key_len, prefix) < 0 ||
	    (start_revision && add_int64(req, "start_revision", start_revision) < 0) ||
	    (progress_notify &&
	     add_child(req, "progress_notify", json_object_new_boolean(1)) < 0))
		goto fail;
	if (json_object_object_add(obj, "create_request", req) < 0)
		goto fail;
	return finish(obj);
fail:
	json_object_put(req);
	json_object_put(obj);
	return NULL;
}

static char *number_body(const char *name, int64_t v)
{
	json_object *obj = json_object_new_object();

	if (obj && (v < 0 || add_int64(obj, name, v) < 0)) {
		json_object_put(obj);
		return NULL;
	}
	return finish(obj);
}

char *etcd_json_lease_grant_body(int64_t ttl_s)
{
	return number_body("TTL", ttl_s);
}

char *etcd_json_lease_keepalive_body(int64_t id)
{
	return number_body("ID", id);
}

char *etcd_json_lease_revoke_body(int64_t id)
{
	return number_body("ID", id);
}
