/*
 * service.h — ctsyncd as a service of the host: the service manager
 * (sd_notify(3) without libsystemd: READY, RELOADING, STOPPING, the
 * watchdog), the pidfile, scheduling priority, capabilities, and the one
 * kernel setting the daemon's namespace needs.
 */
#ifndef CTSYNC_DAEMON_SERVICE_H
#define CTSYNC_DAEMON_SERVICE_H

#include <stdbool.h>

/* One datagram to $NOTIFY_SOCKET, if the service manager set one. */
void service_notify(const char *msg);
/* RELOADING=1 (with the time) at the start of a reload, READY=1 at its end. */
void service_notify_reload(bool begin);
/* WatchdogSec=: the interval to ping at (half the watchdog's), 0: none. */
double service_watchdog_interval(void);
/* net.netfilter.nf_conntrack_events = 1 in our namespace: every entry gets
 * event support, whether a listener existed when it was made or not. */
void service_enable_events(void);
/* Nice value (a lower one needs CAP_SYS_NICE: call before dropping it);
 * a failure is logged, not fatal. */
void service_set_nice(int nice);
/* Keep CAP_NET_ADMIN only, in every set, and no exec regains the rest. */
int service_drop_privileges(void);
int service_pidfile_write(const char *path);

#endif
