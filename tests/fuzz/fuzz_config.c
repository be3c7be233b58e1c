/* Fuzz target: config_parse on arbitrary bytes. Besides memory errors and
 * leaks (on every error path too), a config that is returned must be one
 * the rest of the daemon can trust without re-checking: every site named,
 * addressed and ported, no (address, port) claimed twice, paths usable. A
 * refused one must come with messages, each "NAME:..." and within the cap. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "config.h"
#include "fuzz_check.h"

#define NAME "fuzz.yaml"

static int addr_eq(const struct config_addr *a, const struct config_addr *b)
{
	return a->family == b->family && memcmp(a->bytes, b->bytes, sizeof(a->bytes)) == 0;
}

static int site_has_addr(const struct config_site *s, const struct config_addr *addr)
{
	for (size_t i = 0; i < s->n_addresses; i++)
		if (addr_eq(&s->addresses[i], addr))
			return 1;
	return 0;
}

/* The health check (config_site_check.c): what health.c relies on. */
static void check_health_check(const struct config_site *s)
{
	const struct config_check *c = s->check;

	CHECK(!s->state_auto || c);
	if (!c)
		return;
	CHECK(c->type == CONFIG_CHECK_TLS || c->type == CONFIG_CHECK_HTTPS);
	CHECK(c->port != 0);
	CHECK(c->timeout_ms >= 1 && c->timeout_ms < c->interval_ms);
	CHECK(c->rise >= 1 && c->fall >= 1);
	for (size_t i = 0; i < c->n_addresses; i++)
		CHECK(site_has_addr(s, &c->addresses[i]));
}

/* Pairwise on purpose: slow but obviously right, unlike the sorted check in
 * config_sites.c it verifies. Inputs are at most a few KiB. */
static void check_sites(const struct config *cfg)
{
	CHECK(cfg->n_sites >= 1 && cfg->sites);
	for (size_t i = 0; i < cfg->n_sites; i++) {
		const struct config_site *s = &cfg->sites[i];

		CHECK(s->name && protocol_site_name_valid(s->name));
		CHECK(s->n_addresses >= 1 && s->addresses);
		CHECK(s->n_ports >= 1 && s->ports);
		CHECK(s->state == SITE_ONLINE || s->state == SITE_OFFLINE);
		CHECK(s->action == SITE_ACTION_DROP || s->action == SITE_ACTION_REJECT);
		CHECK(s->line >= 1);
		check_health_check(s);
		for (size_t a = 0; a < s->n_addresses; a++) {
			CHECK(s->addresses[a].family == AF_INET || s->addresses[a].family == AF_INET6);
			for (size_t b = 0; b < a; b++)
				CHECK(!addr_eq(&s->addresses[a], &s->addresses[b]));
		}
		for (size_t p = 0; p < s->n_ports; p++) {
			CHECK(s->ports[p] != 0);
			for (size_t q = 0; q < p; q++)
				CHECK(s->ports[p] != s->ports[q]);
		}
		for (size_t j = 0; j < i; j++) {
			const struct config_site *o = &cfg->sites[j];

			CHECK(strcmp(s->name, o->name) != 0);
			for (size_t a = 0; a < s->n_addresses; a++)
				for (size_t b = 0; b < o->n_addresses; b++) {
					if (!addr_eq(&s->addresses[a], &o->addresses[b]))
						continue;
					for (size_t p = 0; p < s->n_ports; p++)
						for (size_t q = 0; q < o->n_ports; q++)
							CHECK(s->ports[p] != o->ports[q]);
				}
		}
	}
}

static void check_config(const struct config *cfg)
{
	CHECK(cfg->path && strcmp(cfg->path, NAME) == 0);
	CHECK(cfg->hook <= CONFIG_HOOK_FORWARD);
	CHECK(cfg->backend <= CONFIG_BACKEND_XT_LEGACY);
	CHECK(strcmp(config_hook_name(cfg->hook), "?") != 0);
	CHECK(strcmp(config_backend_name(cfg->backend), "?") != 0);
	CHECK(cfg->queue.count >= 1);
	CHECK((unsigned long)cfg->queue.num + cfg->queue.count - 1 <= UINT16_MAX);
	CHECK(cfg->queue.maxlen >= 1);
	CHECK(cfg->control.socket && cfg->control.socket[0] == '/');
	CHECK(strlen(cfg->control.socket) < sizeof(((struct sockaddr_un *)0)->sun_path));
	CHECK(!cfg->control.group || cfg->control.group[0] != '\0');
	CHECK(cfg->state_file && cfg->state_file[0] == '/');
	CHECK(!cfg->user || cfg->user[0] != '\0');
	check_sites(cfg);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct config_errors errors = { 0 };
	struct config *cfg;
	/* exact-size copy: the parser must never read past LEN */
	char *buf = malloc(size ? size : 1);

	if (!buf)
		return 0;
	memcpy(buf, data, size);
	cfg = config_parse(NAME, buf, size, &errors);
	if (cfg) {
		CHECK(errors.count == 0);
		check_config(cfg);
		config_free(cfg);
	} else {
		CHECK(errors.count >= 1 && errors.count <= CONFIG_MAX_ERRORS);
		for (size_t i = 0; i < errors.count; i++)
			CHECK(strncmp(errors.messages[i], NAME ":", sizeof(NAME)) == 0);
	}
	config_errors_free(&errors);
	free(buf);
	return 0;
}
