/* config_values: the public value helpers of config.h, in one place: the
 * names of the config's enumerations and their words, site states and
 * actions, durations and addresses. The daemon, the control commands and
 * the state file use them as the config parser does. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "config.h"
#include "config_internal.h"

static const char *const hook_names[] = {
	[CONFIG_HOOK_PREROUTING] = "prerouting",
	[CONFIG_HOOK_INPUT] = "input",
	[CONFIG_HOOK_FORWARD] = "forward",
};
static const char *const backend_names[] = {
	[CONFIG_BACKEND_AUTO] = "auto",
	[CONFIG_BACKEND_NFT] = "nft",
	[CONFIG_BACKEND_XT] = "xt",
	[CONFIG_BACKEND_EXTERNAL] = "external",
	[CONFIG_BACKEND_XT_NFT] = "xt-nft",
	[CONFIG_BACKEND_XT_LEGACY] = "xt-legacy",
};
static const char *const state_names[] = { [SITE_ONLINE] = "online", [SITE_OFFLINE] = "offline" };
static const char *const action_names[] = {
	[SITE_ACTION_DROP] = PROTOCOL_ACTION_DROP,
	[SITE_ACTION_REJECT] = PROTOCOL_ACTION_REJECT,
};
static const char *const check_type_names[] = {
	[CONFIG_CHECK_TLS] = "tls",
	[CONFIG_CHECK_HTTPS] = "https",
};

const struct config_words config_hook_words = { hook_names, CONFIG_ARRAY_SIZE(hook_names) };
const struct config_words config_backend_words = { backend_names,
						    CONFIG_ARRAY_SIZE(backend_names) };
const struct config_words config_action_words = { action_names, CONFIG_ARRAY_SIZE(action_names) };
const struct config_words config_check_type_words = { check_type_names,
						       CONFIG_ARRAY_SIZE(check_type_names) };
static const char *const unknown_name_names[] = {
	[CONFIG_UNKNOWN_REJECT] = "reject",
	[CONFIG_UNKNOWN_DROP] = "drop",
	[CONFIG_UNKNOWN_ACCEPT] = "accept",
};
const struct config_words config_unknown_name_words = { unknown_name_names,
							 CONFIG_ARRAY_SIZE(unknown_name_names) };

/* NAMES[VALUE], or "?" for a value out of range. */
static const char *word_name(const char *const *names, size_t n, int value)
{
	return value >= 0 && (size_t)value < n ? names[value] : "?";
}

static int word_index(const char *const *names, size_t n, const char *word)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(names[i], word) == 0)
			return (int)i;
	return -1;
}

const char *config_hook_name(enum config_hook hook)
{
	return word_name(hook_names, CONFIG_ARRAY_SIZE(hook_names), (int)hook);
}

const char *config_backend_name(enum config_backend backend)
{
	return word_name(backend_names, CONFIG_ARRAY_SIZE(backend_names), (int)backend);
}

const char *config_check_type_name(enum config_check_type type)
{
	return word_name(check_type_names, CONFIG_ARRAY_SIZE(check_type_names), (int)type);
}

const char *config_state_name(enum site_state state)
{
	return word_name(state_names, CONFIG_ARRAY_SIZE(state_names), (int)state);
}

const char *config_action_name(enum site_action action)
{
	return word_name(action_names, CONFIG_ARRAY_SIZE(action_names), (int)action);
}

int config_parse_state(const char *word, enum site_state *out)
{
	int i = word_index(state_names, CONFIG_ARRAY_SIZE(state_names), word);

	if (i < 0)
		return -1;
	*out = (enum site_state)i;
	return 0;
}

int config_parse_action(const char *word, enum site_action *out)
{
	int i = word_index(action_names, CONFIG_ARRAY_SIZE(action_names), word);

	if (i < 0)
		return -1;
	*out = (enum site_action)i;
	return 0;
}

int config_parse_duration(const char *text, uint32_t *out_ms)
{
	size_t digits = strspn(text, "0123456789");
	const char *unit = text + digits;
	uint64_t value = 0, scale;

	if (digits == 0 || digits > 9 || (digits > 1 && text[0] == '0'))
		return -1;
	if (strcmp(unit, "ms") == 0)
		scale = 1;
	else if (strcmp(unit, "s") == 0)
		scale = 1000;
	else if (strcmp(unit, "m") == 0)
		scale = 60000;
	else
		return -1;
	for (size_t i = 0; i < digits; i++)
		value = value * 10 + (uint64_t)(text[i] - '0');
	value *= scale;
	if (value > UINT32_MAX)
		return -1;
	*out_ms = (uint32_t)value;
	return 0;
}

int config_parse_addr(const char *text, struct config_addr *out)
{
	struct config_addr addr = { 0 };

	if (inet_pton(AF_INET, text, addr.bytes) == 1)
		addr.family = AF_INET;
	else if (inet_pton(AF_INET6, text, addr.bytes) == 1)
		addr.family = AF_INET6;
	else
		return -1;
	*out = addr;
	return 0;
}

const char *config_addr_str(const struct config_addr *addr, char *buf, size_t len)
{
	if (len == 0)
		return "";
	if (!inet_ntop(addr->family, addr->bytes, buf, (socklen_t)len))
		snprintf(buf, len, "?");
	return buf;
}

/* Whether the first PREFIX bits of A and B are equal. */
static bool prefix_equal(const uint8_t *a, const uint8_t *b, unsigned prefix)
{
	unsigned whole = prefix / 8, rest = prefix % 8;

	if (memcmp(a, b, whole) != 0)
		return false;
	return rest == 0 || ((a[whole] ^ b[whole]) & (uint8_t)(0xff00u >> rest)) == 0;
}

int config_parse_cidr(const char *text, struct config_cidr *out, char *why, size_t why_len)
{
	char addr[INET6_ADDRSTRLEN];
	const char *slash = strchr(text, '/');
	size_t len = slash ? (size_t)(slash - text) : strlen(text);
	unsigned long prefix;
	unsigned max;
	char *end;
	uint8_t masked[16];

	if (len >= sizeof(addr) || (memcpy(addr, text, len), addr[len] = '\0',
				    config_parse_addr(addr, &out->addr) < 0)) {
		snprintf(why, why_len, "'%.64s' is not an IPv4 or IPv6 network (ADDRESS/LENGTH)", text);
		return -1;
	}
	max = out->addr.family == AF_INET ? 32 : 128;
	prefix = max;
	if (slash) {
		errno = 0;
		prefix = strtoul(slash + 1, &end, 10);
		if (!slash[1] || *end || errno || prefix > max || !strchr("0123456789", slash[1])) {
			snprintf(why, why_len, "'%.64s': the length must be 0 to %u", text, max);
			return -1;
		}
	}
	out->prefix = (uint8_t)prefix;
	/* 198.51.100.7/24 is most likely a typo for one host or for .0/24:
	 * refuse it rather than guess */
	memcpy(masked, out->addr.bytes, 16);
	for (unsigned bit = (unsigned)prefix; bit < max; bit++)
		masked[bit / 8] &= (uint8_t)~(0x80u >> (bit % 8));
	if (memcmp(masked, out->addr.bytes, 16) != 0) {
		snprintf(why, why_len, "'%.64s' has host bits set; the network is %s/%lu", text,
			 inet_ntop(out->addr.family, masked, addr, sizeof(addr)) ? addr : "?", prefix);
		return -1;
	}
	return 0;
}

const char *config_cidr_str(const struct config_cidr *cidr, char *buf, size_t len)
{
	char addr[INET6_ADDRSTRLEN];

	snprintf(buf, len, "%s/%u", config_addr_str(&cidr->addr, addr, sizeof(addr)),
		 (unsigned)cidr->prefix);
	return buf;
}

bool config_cidr_contains(const struct config_cidr *cidr, int family, const uint8_t *addr)
{
	return cidr->addr.family == family && prefix_equal(cidr->addr.bytes, addr, cidr->prefix);
}

/* A duration node (config_parse_duration) between MIN and MAX ms. */
bool config_parse_duration_node(struct config_parser *p, const yaml_node_t *node, const char *what,
				uint32_t min, uint32_t max, uint32_t *out)
{
	uint32_t ms;

	if (!config_expect_kind(p, node, YAML_SCALAR_NODE, what))
		return false;
	if (config_scalar_has_nul(node) || config_parse_duration(config_scalar(node), &ms) < 0) {
		config_report(p, node, "%s: '%s' is not a duration (a whole number with a unit: "
			      "500ms, 1s, 2m)", what, config_show(node).text);
		return false;
	}
	if (ms < min || ms > max) {
		config_report(p, node, "%s: %s is out of range (%ums-%ums)", what,
			      config_show(node).text, min, max);
		return false;
	}
	*out = ms;
	return true;
}
