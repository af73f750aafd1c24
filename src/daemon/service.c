/* service.c — the daemon as a service of the host (service.h). */
#include "daemon/service.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "util/log.h"

void service_notify_reload(bool begin)
{
	if (begin) {
		struct timespec ts;
		char m[64];
		clock_gettime(CLOCK_MONOTONIC, &ts);
		snprintf(m, sizeof(m), "RELOADING=1\nMONOTONIC_USEC=%llu",
			 (unsigned long long)ts.tv_sec * 1000000ull + (unsigned long long)ts.tv_nsec / 1000);
		service_notify(m);
	} else {
		service_notify("READY=1");
	}
}

/* After set-up the daemon needs CAP_NET_ADMIN only (ctnetlink, the event
 * socket's forced buffer size): every other capability is dropped from the
 * effective, permitted, inheritable and bounding sets, and no exec can
 * regain them. */
int service_drop_privileges(void)
{
	struct __user_cap_header_struct h = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct data[2];
	const unsigned keep = CAP_NET_ADMIN;

	/* (under a service manager that already bounded the set, for example
	 * systemd's CapabilityBoundingSet=, what is gone needs no dropping) */
	for (unsigned cap = 0; cap <= CAP_LAST_CAP; cap++)
		if (cap != keep && prctl(PR_CAPBSET_READ, cap, 0, 0, 0) == 1 &&
		    prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0)
			return -errno;
	memset(data, 0, sizeof(data));
	data[0].effective = data[0].permitted = 1u << keep;
	if (syscall(SYS_capset, &h, data) < 0)
		return -errno;
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return -errno;
	return 0;
}

/* ---- systemd (Type=notify, WatchdogSec=) ------------------------------------------ */

/* sd_notify(3) without libsystemd: one datagram to $NOTIFY_SOCKET. */
void service_notify(const char *msg)
{
	const char *path = getenv("NOTIFY_SOCKET");
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	size_t len;

	if (!path || (path[0] != '/' && path[0] != '@') || (len = strlen(path)) >= sizeof(sun.sun_path))
		return;
	memcpy(sun.sun_path, path, len);
	if (path[0] == '@')
		sun.sun_path[0] = 0;            /* abstract namespace */
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return;
	if (sendto(fd, msg, strlen(msg), MSG_NOSIGNAL, (struct sockaddr *)&sun,
		   (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len)) < 0)
		log_limited(LOG_LVL_WARN, "notifying the service manager: %s", strerror(errno));
	close(fd);
}

/* WatchdogSec=: ping at half the interval, from the loop itself, so a
 * stuck loop is what the watchdog sees. */
double service_watchdog_interval(void)
{
	const char *usec = getenv("WATCHDOG_USEC"), *pid = getenv("WATCHDOG_PID");

	if (!usec || (pid && strtol(pid, NULL, 10) != (long)getpid()))
		return 0;
	double s = strtod(usec, NULL) / 1e6;
	return s > 0 ? s / 2 : 0;
}

/* Conntrack entries get event support only if a listener existed when they
 * were created, unless nf_conntrack_events is 1 (per network namespace). */
void service_enable_events(void)
{
	int fd = open("/proc/sys/net/netfilter/nf_conntrack_events", O_WRONLY | O_CLOEXEC);
	if (fd < 0 || write(fd, "1", 1) != 1)
		log_warnx("could not set net.netfilter.nf_conntrack_events=1: %s", strerror(errno));
	if (fd >= 0)
		close(fd);
}


void service_set_nice(int nice)
{
	/* replication lag is the window in which a failover loses flows, so
	 * by default the daemon is served before ordinary processes */
	if (setpriority(PRIO_PROCESS, 0, nice) < 0)
		log_warnx("could not set scheduling priority (daemon.nice = %d): %s; running at "
			  "nice %d (a lower value needs CAP_SYS_NICE, or set it in the service "
			  "manager, e.g. systemd's Nice=)", nice, strerror(errno),
			  getpriority(PRIO_PROCESS, 0));
}

int service_pidfile_write(const char *path)
{
	FILE *pf = fopen(path, "we");

	if (!pf || fprintf(pf, "%ld\n", (long)getpid()) < 0 || fclose(pf) != 0) {
		int err = errno ? -errno : -EIO;
		log_err("pidfile %s: %s", path, strerror(-err));
		return err;
	}
	return 0;
}
