/* config_sections: the top-level keys of the config other than "sites":
 * hook, backend, queue, control, state_file, user and metrics, their
 * defaults, and the names of the hook and backend values (config.h).
 *
 * config.c walks the document and calls these through its table of
 * top-level keys; config_sites.c has the sites list. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "config.h"
#include "config_internal.h"

/* rides out ~200 ms of scheduling stall at 80k SYN/s: the soak saw a
 * >50 ms stall on a busy 2-CPU machine overflow a queue of 4096 */
#define DEFAULT_QUEUE_MAXLEN 16384
#define MAX_QUEUE_COUNT 64
#define MAX_QUEUE_MAXLEN 1048576
#define MAX_SOCKET_PATH (sizeof(((struct sockaddr_un *)0)->sun_path) - 1)


/* ---- queue ---- */

enum { QUEUE_NUM, QUEUE_COUNT, QUEUE_FAIL_OPEN, QUEUE_MAXLEN, QUEUE_KEYS };

static void parse_queue_num(struct config_parser *p, yaml_node_t *node, void *target)
{
	struct config *cfg = target;
	unsigned long v;

	if (config_parse_uint(p, node, "queue.num", "a queue number", 0, UINT16_MAX, &v))
		cfg->queue.num = (uint16_t)v;
}

static void parse_queue_count(struct config_parser *p, yaml_node_t *node, void *target)
{
	struct config *cfg = target;
	unsigned long v;

	if (config_parse_uint(p, node, "queue.count", "a valid queue count", 1, MAX_QUEUE_COUNT,
			      &v))
		cfg->queue.count = (uint16_t)v;
}

static void parse_queue_fail_open(struct config_parser *p, yaml_node_t *node, void *target)
{
	struct config *cfg = target;

	config_parse_bool(p, node, "queue.fail_open", &cfg->queue.fail_open);
}

static void parse_queue_maxlen(struct config_parser *p, yaml_node_t *node, void *target)
{
	struct config *cfg = target;
	unsigned long v;

	if (config_parse_uint(p, node, "queue.maxlen", "a valid queue length", 1, MAX_QUEUE_MAXLEN,
			      &v))
		cfg->queue.maxlen = (uint32_t)v;
}

void config_parse_queue(struct config_parser *p, yaml_node_t *node, void *target)
{
	static const struct config_key_rule rules[] = {
		[QUEUE_NUM] = { "num", parse_queue_num },
		[QUEUE_COUNT] = { "count", parse_queue_count },
		[QUEUE_FAIL_OPEN] = { "fail_open", parse_queue_fail_open },
		[QUEUE_MAXLEN] = { "maxlen", parse_queue_maxlen },
	};
	struct config *cfg = target;
	yaml_node_t *seen[QUEUE_KEYS] = { 0 };
	unsigned long last;

	if (!config_expect_kind(p, node, YAML_MAPPING_NODE, "queue"))
		return;
	config_walk_mapping(p, node, "queue: ", rules, QUEUE_KEYS, cfg, seen);
	last = (unsigned long)cfg->queue.num + cfg->queue.count - 1;
	if (last > UINT16_MAX)
		config_report(p, seen[QUEUE_COUNT] ? seen[QUEUE_COUNT] : node,
			      "queue: num + count - 1 = %lu is past the last queue number (65535)",
			      last);
}

/* ---- control ---- */

static void parse_control_socket(struct config_parser *p, yaml_node_t *node, void *target)
{
	struct config *cfg = target;

	config_parse_path(p, node, "control.socket", MAX_SOCKET_PATH, &cfg->control.socket);
}

static void parse_control_group(struct config_parser *p, yaml_node_t *node, void *target)
{
	struct config *cfg = target;

	config_parse_optional_name(p, node, "control.group", &cfg->control.group);
}

/* An octal mode such as 0660 or 660, as chmod takes it. Read/write for the
 * owner is required: the daemon itself must be able to replace the file. */
static void parse_control_mode(struct config_parser *p, yaml_node_t *node, void *target)
{
	struct config *cfg = target;
	const char *text;
	unsigned long v = 0;
	size_t len;

	if (!config_expect_kind(p, node, YAML_SCALAR_NODE, "control.mode"))
		return;
	text = config_scalar(node);
	len = strlen(text);
	for (size_t i = 0; i < len; i++)
		v = (text[i] >= '0' && text[i] <= '7') ? v * 8 + (unsigned long)(text[i] - '0')
						       : ~0ul;
	if (len < 3 || len > 4 || config_scalar_has_nul(node) || v > 0777 ||
	    (v & 0600) != 0600) {
		config_report(p, node, "control.mode: '%s' is not a socket mode (octal, like 0660, "
			      "with read and write for the owner)", config_show(node).text);
		return;
	}
	cfg->control.mode = (uint32_t)v;
}

void config_parse_control(struct config_parser *p, yaml_node_t *node, void *target)
{
	static const struct config_key_rule rules[] = {
		{ "socket", parse_control_socket },
		{ "group", parse_control_group },
		{ "mode", parse_control_mode },
	};
	yaml_node_t *seen[CONFIG_ARRAY_SIZE(rules)] = { 0 };

	if (config_expect_kind(p, node, YAML_MAPPING_NODE, "control"))
		config_walk_mapping(p, node, "control: ", rules, CONFIG_ARRAY_SIZE(rules), target,
				    seen);
}

/* ---- metrics ---- */

/* "127.0.0.1:9468" or "[2001:db8::1]:9468". */
static void parse_metrics_listen(struct config_parser *p, yaml_node_t *node, void *target)
{
	struct config *cfg = target;
	char host[64];
	const char *text, *colon;
	size_t host_len;
	char *end;
	unsigned long port;

	if (!config_expect_kind(p, node, YAML_SCALAR_NODE, "metrics.listen"))
		return;
	text = config_scalar(node);
	colon = strrchr(text, ':');
	if (config_scalar_has_nul(node) || !colon || colon == text)
		goto bad;
	host_len = (size_t)(colon - text);
	if (text[0] == '[') {
		if (host_len < 3 || text[host_len - 1] != ']')
			goto bad;
		text++;
		host_len -= 2;
	}
	if (host_len >= sizeof(host))
		goto bad;
	memcpy(host, text, host_len);
	host[host_len] = '\0';
	if (config_parse_addr(host, &cfg->metrics.addr) < 0 ||
	    (cfg->metrics.addr.family == AF_INET6 && config_scalar(node)[0] != '['))
		goto bad;
	if (colon[1] < '1' || colon[1] > '9')
		goto bad;
	port = strtoul(colon + 1, &end, 10);
	if (*end || port > UINT16_MAX)
		goto bad;
	cfg->metrics.port = (uint16_t)port;
	cfg->metrics.enabled = true;
	return;
bad:
	config_report(p, node, "metrics.listen: '%s' is not ADDRESS:PORT (127.0.0.1:9468, "
		      "[::1]:9468)", config_show(node).text);
}

void config_parse_metrics(struct config_parser *p, yaml_node_t *node, void *target)
{
	static const struct config_key_rule rules[] = {
		{ "listen", parse_metrics_listen },
	};
	yaml_node_t *seen[CONFIG_ARRAY_SIZE(rules)] = { 0 };

	if (config_expect_kind(p, node, YAML_MAPPING_NODE, "metrics"))
		config_walk_mapping(p, node, "metrics: ", rules, CONFIG_ARRAY_SIZE(rules), target,
				    seen);
}

/* ---- sni: shared addresses (sites with server_names) ---- */

/* Partial ClientHellos are held this long at most: a client sends its
 * hello at once, and a held one keeps the server's connection waiting. */
#define SNI_HOLD_MIN_MS 100
#define SNI_HOLD_MAX_MS 10000
/* Each held hello costs up to CLIENTHELLO_MAX (8 KiB) of buffer. */
#define SNI_MAX_PENDING 65536
#define SNI_DEFAULT_HOLD_MS 2000
#define SNI_DEFAULT_MAX_PENDING 4096

static void parse_sni_unknown_name(struct config_parser *p, yaml_node_t *node, void *target)
{
	struct config *cfg = target;
	int v;

	if (config_parse_word(p, node, "sni.unknown_name", config_unknown_name_words.names,
			      config_unknown_name_words.count, &v))
		cfg->sni.unknown_name = (enum config_unknown_name)v;
}

static void parse_sni_hold(struct config_parser *p, yaml_node_t *node, void *target)
{
	struct config *cfg = target;

	config_parse_duration_node(p, node, "sni.hold", SNI_HOLD_MIN_MS, SNI_HOLD_MAX_MS,
				   &cfg->sni.hold_ms);
}

static void parse_sni_max_pending(struct config_parser *p, yaml_node_t *node, void *target)
{
	struct config *cfg = target;
	unsigned long v;

	if (config_parse_uint(p, node, "sni.max_pending", "a number of held ClientHellos", 1,
			      SNI_MAX_PENDING, &v))
		cfg->sni.max_pending = (uint32_t)v;
}

void config_parse_sni(struct config_parser *p, yaml_node_t *node, void *target)
{
	static const struct config_key_rule rules[] = {
		{ "unknown_name", parse_sni_unknown_name },
		{ "hold", parse_sni_hold },
		{ "max_pending", parse_sni_max_pending },
	};
	yaml_node_t *seen[CONFIG_ARRAY_SIZE(rules)] = { 0 };

	if (config_expect_kind(p, node, YAML_MAPPING_NODE, "sni"))
		config_walk_mapping(p, node, "sni: ", rules, CONFIG_ARRAY_SIZE(rules), target, seen);
}

/* ---- top-level scalars ---- */

void config_parse_hook(struct config_parser *p, yaml_node_t *node, void *target)
{
	struct config *cfg = target;
	int v;

	if (config_parse_word(p, node, "hook", config_hook_words.names, config_hook_words.count, &v))
		cfg->hook = (enum config_hook)v;
}

void config_parse_backend(struct config_parser *p, yaml_node_t *node, void *target)
{
	struct config *cfg = target;
	int v;

	if (config_parse_word(p, node, "backend", config_backend_words.names, config_backend_words.count,
			      &v))
		cfg->backend = (enum config_backend)v;
}

void config_parse_state_file(struct config_parser *p, yaml_node_t *node, void *target)
{
	struct config *cfg = target;

	config_parse_path(p, node, "state_file", SIZE_MAX, &cfg->state_file);
}

void config_parse_user(struct config_parser *p, yaml_node_t *node, void *target)
{
	struct config *cfg = target;

	config_parse_optional_name(p, node, "user", &cfg->user);
}

/* ---- defaults ---- */

void config_set_section_defaults(struct config *cfg)
{
	cfg->hook = CONFIG_HOOK_PREROUTING;
	cfg->backend = CONFIG_BACKEND_AUTO;
	cfg->queue.num = 0;
	cfg->queue.count = 1;
	cfg->queue.fail_open = true;
	cfg->queue.maxlen = DEFAULT_QUEUE_MAXLEN;
	cfg->control.mode = CONFIG_DEFAULT_SOCKET_MODE;
	cfg->sni.unknown_name = CONFIG_UNKNOWN_REJECT;
	cfg->sni.hold_ms = SNI_DEFAULT_HOLD_MS;
	cfg->sni.max_pending = SNI_DEFAULT_MAX_PENDING;
}

/* String defaults are filled after the walk so a given value never has to
 * free a default first. */
int config_set_string_defaults(struct config *cfg)
{
	if (!cfg->control.socket)
		cfg->control.socket = strdup(PROTOCOL_DEFAULT_SOCKET);
	if (!cfg->state_file)
		cfg->state_file = strdup(CONFIG_DEFAULT_STATE_FILE);
	return cfg->control.socket && cfg->state_file ? 0 : -1;
}

/* ---- value names ---- */


