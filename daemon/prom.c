/* prom: see prom.h. */
#include "prom.h"

#include <inttypes.h>

void prom_family(struct strbuf *b, const char *name, const char *type, const char *help)
{
	strbuf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

void prom_counter(struct strbuf *b, const char *name, const char *help, uint64_t value)
{
	prom_family(b, name, "counter", help);
	strbuf_printf(b, "%s %" PRIu64 "\n", name, value);
}

void prom_gauge(struct strbuf *b, const char *name, const char *help, double value)
{
	prom_family(b, name, "gauge", help);
	/* %.17g: a double read back is the same double; whole numbers print
	 * without a point */
	strbuf_printf(b, "%s %.17g\n", name, value);
}
