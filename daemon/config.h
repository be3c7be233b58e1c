/* config: the YAML file -> an immutable struct config.
 *
 * Every problem found is collected as "FILE:LINE:COL: message" (1-based line
 * and column) so an operator fixes all mistakes in one pass; a config with
 * any error is never returned, so a bad reload cannot replace a good one. */
#ifndef GK_CONFIG_H
#define GK_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "protocol.h"

#define CONFIG_DEFAULT_PATH "/etc/gatekeeper/gatekeeper.yaml"
#define CONFIG_DEFAULT_SOCKET_MODE 0660u
#define CONFIG_DEFAULT_STATE_FILE "/var/lib/gatekeeper/state"
/* Larger files are refused before parsing: a config is hand-written and a
 * runaway file must not eat the daemon's memory during a reload. */
#define CONFIG_MAX_FILE_SIZE (16u * 1024u * 1024u)
#define CONFIG_MAX_ERRORS 100

enum config_hook { CONFIG_HOOK_PREROUTING, CONFIG_HOOK_INPUT, CONFIG_HOOK_FORWARD };

enum config_backend {
	CONFIG_BACKEND_AUTO,
	CONFIG_BACKEND_NFT,
	CONFIG_BACKEND_XT,        /* iptables-nft if usable, else iptables-legacy */
	CONFIG_BACKEND_EXTERNAL,
	CONFIG_BACKEND_XT_NFT,    /* xt through iptables-nft only */
	CONFIG_BACKEND_XT_LEGACY, /* xt through iptables-legacy only */
};

enum site_state { SITE_ONLINE, SITE_OFFLINE };
enum site_action { SITE_ACTION_DROP, SITE_ACTION_REJECT };

/* An address in network byte order; v4 uses the first 4 bytes. */
struct config_addr {
	int family; /* AF_INET or AF_INET6 */
	uint8_t bytes[16];
};

/* A source network of an allow-list: ADDR with the first PREFIX bits
 * significant (the others are zero). */
struct config_cidr {
	struct config_addr addr;
	uint8_t prefix; /* 0..32 for AF_INET, 0..128 for AF_INET6 */
};

/* Most server_names a site may list. */
#define CONFIG_MAX_SERVER_NAMES 64

/* Longest allow-list a site may have, in the config and at run time: the
 * workers scan it linearly for every SYN to an offline site. */
#define CONFIG_MAX_ALLOW 64

enum config_check_type { CONFIG_CHECK_TLS, CONFIG_CHECK_HTTPS };

/* verify_name: "*": any name on a certificate of ca_file passes. Without it
 * a ca_file needs a name (verify_name, sni or an https host name). */
#define CONFIG_VERIFY_ANY_NAME "*"

/* A site's health check (config_site_check.c). Durations in milliseconds. */
struct config_check {
	enum config_check_type type;
	uint32_t interval_ms, timeout_ms;
	unsigned rise, fall;
	uint16_t port;            /* default: the site's first port */
	struct config_addr *addresses; /* which of the site's addresses; NULL: all */
	size_t n_addresses;
	char *sni;                /* TLS server name; NULL: none (or host if set) */
	char *ca_file;            /* NULL: the certificate is not verified */
	char *verify_name;        /* with ca_file: the name the certificate must carry, or "*" */
	char *method, *path, *host; /* https; host NULL: the probed address */
	uint16_t *expect_status;  /* https; default [200] */
	size_t n_expect_status;
	char *expect_body;        /* https: a substring the body must contain */
};

struct config_site {
	char *name;
	struct config_addr *addresses;
	size_t n_addresses;
	uint16_t *ports; /* host byte order */
	size_t n_ports;
	enum site_state state;
	enum site_action action;
	unsigned line; /* where the site starts, for later messages */
	bool state_auto;            /* state: auto: the check decides (state is the start) */
	struct config_check *check; /* NULL: none */
	struct config_cidr *allow;  /* sources let through while offline */
	size_t n_allow;
	/* server_names: the TLS server names (canonical patterns, see
	 * server_names.h) this site answers to on an address it may share
	 * with other sites; NULL: none (the site has its addresses alone). A
	 * "*" entry makes it its endpoints' default: it gets what no other
	 * site's name matches, and hellos without a name. */
	char **server_names;
	size_t n_server_names;
	bool default_name; /* "*" was listed */
};

/* What a ClientHello to a shared endpoint gets when no site there takes
 * it (no name matches, no name at all, not TLS) and no site is "*". */
enum config_unknown_name { CONFIG_UNKNOWN_REJECT, CONFIG_UNKNOWN_DROP, CONFIG_UNKNOWN_ACCEPT };

/* fleet: how `auto` sites combine the boxes' checks. */
enum config_fleet_checks { CONFIG_FLEET_CHECKS_OWN, CONFIG_FLEET_CHECKS_ALL };
#define CONFIG_FLEET_MAX_ENDPOINTS 16

/* The fleet section (config_fleet.c): several boxes share the run-time
 * state through etcd (daemon/FLEET-DESIGN.md). Durations in ms. */
struct config_fleet {
	bool enabled;        /* fleet: given */
	char *name;          /* the fleet: keys live under PREFIX/NAME/ */
	char *box;           /* this box (default: the host name) */
	char **endpoints;    /* "https://203.0.113.11:2379" */
	size_t n_endpoints;
	char *prefix;        /* default "/gatekeeper" */
	char *ca_file, *cert_file, *key_file; /* NULL: none */
	uint32_t lease_ttl_ms;
	uint32_t request_timeout_ms;
	enum config_fleet_checks checks;
};

struct config {
	char *path;
	enum config_hook hook;
	enum config_backend backend;
	struct {
		uint16_t num;    /* first queue number */
		uint16_t count;  /* queues num .. num+count-1 */
		bool fail_open;  /* kernel accepts when the queue is full / unbound */
		uint32_t maxlen; /* kernel queue length */
	} queue;
	struct {
		char *socket;
		char *group; /* NULL: root only may change state */
		uint32_t mode; /* permission bits of the socket file */
	} control;
	char *state_file;
	char *user; /* NULL: keep the user we were started as */
	struct {
		bool enabled; /* metrics.listen given */
		struct config_addr addr;
		uint16_t port;
	} metrics;
	struct config_site *sites;
	size_t n_sites;
	struct {
		enum config_unknown_name unknown_name; /* default reject */
		uint32_t hold_ms;     /* how long a partial ClientHello is held */
		uint32_t max_pending; /* partial ClientHellos held at once */
	} sni;
	struct config_fleet fleet;
};

/* Collected messages, each "FILE:LINE:COL: message" (or "FILE: message"
 * when no position applies, e.g. the file cannot be opened). */
struct config_errors {
	char **messages;
	size_t count;
};

/* Reads and validates PATH. Returns NULL and fills ERRORS on any problem. */
struct config *config_load(const char *path, struct config_errors *errors);
/* Same for a buffer; NAME is used in messages. For tests and fuzzers. */
struct config *config_parse(const char *name, const char *buf, size_t len,
			    struct config_errors *errors);
void config_free(struct config *cfg);

void config_errors_free(struct config_errors *errors);

const char *config_hook_name(enum config_hook hook);
const char *config_backend_name(enum config_backend backend);
const char *config_state_name(enum site_state state);
const char *config_action_name(enum site_action action);
/* Returns 0 and sets *OUT, or -1 for an unknown word. */
int config_parse_state(const char *word, enum site_state *out);
int config_parse_action(const char *word, enum site_action *out);

/* "500ms", "1s", "2m" -> milliseconds; 0, or -1 when it is not one. */
int config_parse_duration(const char *text, uint32_t *out_ms);
const char *config_check_type_name(enum config_check_type type);
void config_check_free(struct config_check *check);

/* "198.51.100.10" / "2001:db8::1" -> struct config_addr; 0 or -1. */
int config_parse_addr(const char *text, struct config_addr *out);
/* Formats into BUF (at least INET6_ADDRSTRLEN bytes). */
const char *config_addr_str(const struct config_addr *addr, char *buf, size_t len);
/* "203.0.113.0/24", "2001:db8::/48", a single address (its full length).
 * 0, or -1 with why in WHY (host bits set, bad length, not an address). */
int config_parse_cidr(const char *text, struct config_cidr *out, char *why, size_t why_len);
/* "203.0.113.0/24" into BUF (at least CONFIG_CIDR_STRLEN bytes). */
#define CONFIG_CIDR_STRLEN 52
const char *config_cidr_str(const struct config_cidr *cidr, char *buf, size_t len);
/* Whether ADDR (FAMILY, network order) lies in CIDR. */
bool config_cidr_contains(const struct config_cidr *cidr, int family, const uint8_t *addr);

#endif
