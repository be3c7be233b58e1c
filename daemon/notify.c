#include "notify.h"

#include <stdio.h>
#include <string.h>
#include <systemd/sd-daemon.h>

#include "clock.h"
#include "log.h"

static char last_status[256];

static void notify_send(const char *text)
{
	int rc = sd_notify(0, text);

	if (rc < 0)
		log_debug("sd_notify(%s): %s", text, strerror(-rc));
}

void notify_ready(const char *status)
{
	char text[320];

	snprintf(last_status, sizeof(last_status), "%s", status);
	snprintf(text, sizeof(text), "READY=1\nSTATUS=%s", status);
	notify_send(text);
}

void notify_reloading(void)
{
	char text[96];

	/* systemd >= 253 matches RELOADING to the reload it started by time */
	snprintf(text, sizeof(text), "RELOADING=1\nMONOTONIC_USEC=%llu",
		 (unsigned long long)clock_now_us());
	notify_send(text);
}

void notify_reloaded(void)
{
	notify_send("READY=1");
}

void notify_stopping(void)
{
	notify_send("STOPPING=1");
}

void notify_status(const char *status)
{
	char text[320];

	if (strcmp(status, last_status) == 0)
		return;
	snprintf(last_status, sizeof(last_status), "%s", status);
	snprintf(text, sizeof(text), "STATUS=%s", status);
	notify_send(text);
}

uint64_t notify_watchdog_usec(void)
{
	uint64_t usec = 0;

	return sd_watchdog_enabled(0, &usec) > 0 ? usec : 0;
}

void notify_watchdog(void)
{
	notify_send("WATCHDOG=1");
}
