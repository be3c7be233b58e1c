/* prom: the lines of the Prometheus text exposition format (0.0.4) that
 * every family repeats — its HELP and TYPE header, and a family of one
 * unlabelled sample — for metrics.c and fleet_report.c. Label values that
 * come from outside go through textsafe.h (metrics.c). */
#ifndef GK_PROM_H
#define GK_PROM_H

#include <stdint.h>

#include "strbuf.h"

/* "# HELP NAME HELP" and "# TYPE NAME TYPE" (counter or gauge). */
void prom_family(struct strbuf *b, const char *name, const char *type, const char *help);
/* A whole family of one sample, NAME VALUE. */
void prom_counter(struct strbuf *b, const char *name, const char *help, uint64_t value);
void prom_gauge(struct strbuf *b, const char *name, const char *help, double value);

#endif
