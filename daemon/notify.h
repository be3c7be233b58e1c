/* notify: the systemd service protocol (sd_notify). READY only once the
 * rules and queues are live, RELOADING/READY around a reload, STOPPING,
 * a one-line STATUS, and WATCHDOG pings. Outside systemd (no
 * NOTIFY_SOCKET) every call is a no-op. */
#ifndef GK_NOTIFY_H
#define GK_NOTIFY_H

#include <stdint.h>

void notify_ready(const char *status);
void notify_reloading(void);
void notify_reloaded(void);
void notify_stopping(void);
/* Sends STATUS=TEXT if it differs from the last one sent. */
void notify_status(const char *text);
/* The watchdog interval systemd asks for (WatchdogSec=), 0 if none. */
uint64_t notify_watchdog_usec(void);
void notify_watchdog(void);

#endif
