/* ctsync-testtool — traffic for the cluster tests.  Every mode is bounded in
 * time and prints one summary line of key=value pairs.
 *
 *   tcp-echo PORT                       echo lines on every connection (v4+v6)
 *   tcp-stream HOST PORT SECONDS MS [SRC]
 *                                       one connection (from address SRC), a
 *                                       numbered line every MS milliseconds;
 *                                       checks every echo, in order
 *   tcp-many HOST PORT N TRIGGER SECONDS
 *                                       N connections, one echo each; then wait
 *                                       for the file TRIGGER to exist and echo on
 *                                       each again (SECONDS bounds the wait)
 *   tcp-connects HOST PORT N TIMEOUT_MS [SRC]
 *                                       one connection after the other, N of
 *                                       them, each: connect, one line echoed,
 *                                       close; connect times in microseconds
 *                                       (slow: over 500 ms, a SYN sent again)
 *   udp-push PORT SECONDS MS            on each client datagram, push numbered
 *                                       datagrams to that client every MS ms
 *   udp-recv HOST PORT SECONDS          send one datagram, then count what comes
 *   udp-echo PORT                       echo every datagram back
 *   udp-ping HOST PORT SPORT SECONDS MS one datagram every MS ms from port SPORT,
 *                                       counting the echoes (and the longest
 *                                       pause between two)
 *   udp-garbage HOST PORT COUNT NODE [KEY]
 *                                       COUNT hostile datagrams: random bytes,
 *                                       frames with a valid header from unknown
 *                                       nodes, frames claiming NODE whose
 *                                       records are malformed, and frames
 *                                       claiming NODE sealed with key id KEY
 *                                       (a forged tag)
 *   replay-pcap FILE PORT HOW           resend a capture's datagrams to PORT:
 *                                       HOW spoof (as captured, raw socket),
 *                                       tamper (one bit flipped), own (from
 *                                       our own address)
 *   ftp-pasv HOST FILE TRIGGER SECONDS  FTP control connection, PASV; then wait for
 *                                       the file TRIGGER; then RETR FILE over the
 *                                       data connection (size and checksum), and
 *                                       PASV + LIST again on the same control
 *   ftp-port HOST FILE TRIGGER SECONDS  the same in active mode: PORT (which a NAT
 *                                       helper rewrites, changing its length)
 *                                       before the trigger, the server's data
 *                                       connection and a second PORT + LIST after
 *   tcp-whoami PORT                     echo what comes, a chunk that starts
 *                                       "whoami " prefixed with the client's
 *                                       address/port as seen here
 *   tcp-burst HOST PORT SPORT MS SRC... one connection from each SRC, all from
 *                                       port SPORT, all opened at once, a line
 *                                       each to a tcp-whoami: counts those
 *                                       echoed with their own line, and the
 *                                       public address and port the server saw
 *                                       (two clients given one: dup_public)
 *   icmp-burst DST ID MS SRC...         an ICMP echo request from each SRC (IPv4),
 *                                       all with echo id ID, all at once;
 *                                       counts the replies each got back, and
 *                                       those that reached another (wrong)
 *   unsol-na IFNAME ADDR                unsolicited neighbour advertisement for
 *                                       ADDR (IPv6 "gratuitous ARP")
 *   held-sampler SECONDS MS NETNS...    every MS ms, the set `inet ctsync held` of
 *                                       each named network namespace, read in
 *                                       order and again backwards: a line per
 *                                       round with the buckets two namespaces
 *                                       held in both passes ("-": none)
 *   dup-count IFNAME SECONDS            IP packets arriving on IFNAME and how
 *                                       many were byte-identical copies of one
 *                                       seen in the last 2 s (the same packet
 *                                       forwarded by two firewalls: a sender's
 *                                       own retransmission has another IP id)
 */
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <nftables/libnftables.h>
#include <sched.h>
#include <netpacket/packet.h>
#include <net/ethernet.h>
#include <netdb.h>
#include <netinet/icmp6.h>
#include <sys/ioctl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <poll.h>
#include <netinet/ip.h>
#include <netinet/ip_icmp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void die(const char *what)
{
	fprintf(stderr, "testtool: %s: %s\n", what, strerror(errno));
	exit(2);
}

static int resolve(const char *host, const char *port, int type, struct sockaddr_storage *ss,
		   socklen_t *len)
{
	struct addrinfo hints = { .ai_socktype = type, .ai_flags = AI_NUMERICHOST | AI_NUMERICSERV };
	struct addrinfo *ai;

	if (getaddrinfo(host, port, &hints, &ai) != 0)
		return -1;
	memcpy(ss, ai->ai_addr, ai->ai_addrlen);
	*len = ai->ai_addrlen;
	freeaddrinfo(ai);
	return 0;
}

static int listen_any(const char *port, int type)
{
	int fd = socket(AF_INET6, type | SOCK_CLOEXEC, 0), zero = 0, one = 1;
	struct sockaddr_in6 a = { .sin6_family = AF_INET6, .sin6_port = htons((uint16_t)atoi(port)),
				  .sin6_addr = IN6ADDR_ANY_INIT };

	if (fd < 0)
		die("socket");
	setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0)
		die("bind");
	if (type == SOCK_STREAM && listen(fd, 4096) < 0)
		die("listen");
	return fd;
}

/* ---- tcp-echo ------------------------------------------------------------- */

#define MAXC 4096

static void peer_text(int fd, char *out, size_t len)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	char a[INET6_ADDRSTRLEN] = "?";
	unsigned port = 0;

	if (getpeername(fd, (struct sockaddr *)&ss, &sl) == 0) {
		if (ss.ss_family == AF_INET) {
			inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, a, sizeof(a));
			port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
		} else {
			inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, a, sizeof(a));
			port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
		}
	}
	snprintf(out, len, "%s/%u", a, port);
}

/* whoami: a chunk that starts "whoami " goes back prefixed with the
 * client's address/port as seen here (tcp-whoami) */
__attribute__((noreturn)) static int tcp_echo(const char *port, bool whoami)
{
	static struct pollfd p[MAXC + 1];
	static char who[MAXC + 1][64];
	int n = 1;
	char buf[4096], out[4200];

	p[0].fd = listen_any(port, SOCK_STREAM);
	p[0].events = POLLIN;
	for (;;) {
		if (poll(p, (nfds_t)n, -1) < 0 && errno != EINTR)
			die("poll");
		if ((p[0].revents & POLLIN) && n <= MAXC) {
			int c = accept4(p[0].fd, NULL, NULL, SOCK_CLOEXEC);
			if (c >= 0) {
				p[n].fd = c;
				p[n].events = POLLIN;
				p[n].revents = 0;
				if (whoami)
					peer_text(c, who[n], sizeof(who[n]));
				n++;
			}
		}
		for (int i = 1; i < n; i++) {
			if (!p[i].revents)
				continue;
			ssize_t r = read(p[i].fd, buf, sizeof(buf));
			const char *w = buf;
			ssize_t l = r;
			if (whoami && r > 7 && memcmp(buf, "whoami ", 7) == 0) {
				l = snprintf(out, sizeof(out), "%s %.*s", who[i], (int)r, buf);
				w = out;
			}
			if (r <= 0 || write(p[i].fd, w, (size_t)l) != l) {
				close(p[i].fd);
				p[i] = p[--n];
				memcpy(who[i], who[n], sizeof(who[i]));
				i--;
			}
		}
	}
}


static int tcp_burst(const char *host, const char *port, const char *sport, int timeout_ms,
		     char **srcs, int n)
{
	struct sockaddr_storage ss, src;
	socklen_t len, slen;
	static int fd[MAXC];
	static char pub[MAXC][64];
	static bool up[MAXC], ok[MAXC];
	int connected = 0, echoed = 0, wrong = 0, dup = 0, publics = 0;

	if (n > MAXC || resolve(host, port, SOCK_STREAM, &ss, &len) < 0) {
		fprintf(stderr, "testtool: bad address %s\n", host);
		return 2;
	}
	for (int i = 0; i < n; i++) {           /* every SYN at once */
		up[i] = ok[i] = false;
		fd[i] = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
		int one = 1;
		setsockopt(fd[i], SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (fd[i] < 0 || resolve(srcs[i], sport, SOCK_STREAM, &src, &slen) < 0 ||
		    bind(fd[i], (struct sockaddr *)&src, slen) < 0) {
			fprintf(stderr, "testtool: cannot bind to %s port %s\n", srcs[i], sport);
			return 2;
		}
		if (connect(fd[i], (struct sockaddr *)&ss, len) < 0 && errno != EINPROGRESS) {
			close(fd[i]);
			fd[i] = -1;
		}
	}
	uint64_t end = now_ms() + (uint64_t)timeout_ms;
	static struct pollfd p[MAXC];
	int left = n;
	while (left > 0 && now_ms() < end) {
		int np = 0, idx[MAXC];
		for (int i = 0; i < n; i++)
			if (fd[i] >= 0 && !ok[i]) {
				p[np].fd = fd[i];
				p[np].events = up[i] ? POLLIN : POLLOUT;
				idx[np++] = i;
			}
		if (np == 0 || poll(p, (nfds_t)np, 50) <= 0)
			continue;
		for (int j = 0; j < np; j++) {
			int i = idx[j], err = 0;
			socklen_t el = sizeof(err);
			char line[64], buf[256];
			if (!p[j].revents)
				continue;
			if (!up[i]) {
				if (getsockopt(fd[i], SOL_SOCKET, SO_ERROR, &err, &el) < 0 || err ||
				    !(p[j].revents & POLLOUT)) {
					close(fd[i]);
					fd[i] = -1;
					left--;
					continue;
				}
				up[i] = true;
				connected++;
				int l = snprintf(line, sizeof(line), "whoami line-%d\n", i);
				if (send(fd[i], line, (size_t)l, MSG_NOSIGNAL) != l) {
					close(fd[i]);
					fd[i] = -1;
					left--;
				}
				continue;
			}
			ssize_t r = recv(fd[i], buf, sizeof(buf) - 1, 0);
			left--;
			if (r <= 0) {
				close(fd[i]);
				fd[i] = -1;
				continue;
			}
			buf[r] = 0;
			char *sp = strchr(buf, ' ');
			snprintf(line, sizeof(line), "whoami line-%d\n", i);
			if (!sp || strcmp(sp + 1, line) != 0) {
				wrong++;
				continue;
			}
			*sp = 0;
			snprintf(pub[i], sizeof(pub[i]), "%.63s", buf);
			ok[i] = true;
			echoed++;
		}
	}
	for (int i = 0; i < n; i++) {
		if (!ok[i])
			continue;
		bool first = true, shared = false;
		for (int k = 0; k < n; k++)
			if (k != i && ok[k] && strcmp(pub[k], pub[i]) == 0) {
				shared = true;
				first &= k > i;
			}
		dup += shared;
		publics += first;
	}
	for (int i = 0; i < n; i++)
		if (fd[i] >= 0)
			close(fd[i]);
	printf("tried=%d connected=%d echoed=%d wrong=%d publics=%d dup_public=%d ports=", n,
	       connected, echoed, wrong, publics, dup);
	for (int i = 0, first = 1; i < n; i++) {
		const char *slash = ok[i] ? strrchr(pub[i], '/') : NULL;
		if (slash) {
			printf("%s%s", first ? "" : ",", slash + 1);
			first = 0;
		}
	}
	printf("\n");
	return echoed == n && !dup ? 0 : 1;
}

static uint16_t icmp_sum(const void *p, size_t len)
{
	const uint8_t *b = p;
	uint32_t sum = 0;

	for (size_t i = 0; i + 1 < len; i += 2)
		sum += (uint32_t)(b[i] << 8 | b[i + 1]);
	if (len & 1)
		sum += (uint32_t)b[len - 1] << 8;
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return htons((uint16_t)~sum);
}

static int icmp_burst(const char *dst, int id, int timeout_ms, char **srcs, int n)
{
	static int fd[MAXC];
	static bool ok[MAXC];
	struct sockaddr_in to = { .sin_family = AF_INET };
	int replied = 0, wrong = 0;

	if (n > MAXC || inet_pton(AF_INET, dst, &to.sin_addr) != 1)
		return 2;
	for (int i = 0; i < n; i++) {
		struct sockaddr_in from = { .sin_family = AF_INET };
		ok[i] = false;
		fd[i] = socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, IPPROTO_ICMP);
		if (fd[i] < 0 || inet_pton(AF_INET, srcs[i], &from.sin_addr) != 1 ||
		    bind(fd[i], (struct sockaddr *)&from, sizeof(from)) < 0) {
			fprintf(stderr, "testtool: cannot bind a raw socket to %s\n", srcs[i]);
			return 2;
		}
	}
	for (int i = 0; i < n; i++) {           /* every request at once */
		uint8_t pkt[8 + 16] = { 0 };
		struct icmphdr *h = (struct icmphdr *)pkt;
		h->type = ICMP_ECHO;
		h->un.echo.id = htons((uint16_t)id);
		h->un.echo.sequence = htons((uint16_t)i);
		snprintf((char *)pkt + 8, 16, "icmp-burst %d", i);
		h->checksum = icmp_sum(pkt, sizeof(pkt));
		sendto(fd[i], pkt, sizeof(pkt), 0, (struct sockaddr *)&to, sizeof(to));
	}
	uint64_t end = now_ms() + (uint64_t)timeout_ms;
	static struct pollfd p[MAXC];
	while (replied < n && now_ms() < end) {
		for (int i = 0; i < n; i++)
			p[i] = (struct pollfd){ fd[i], POLLIN, 0 };
		if (poll(p, (nfds_t)n, 50) <= 0)
			continue;
		for (int i = 0; i < n; i++) {
			uint8_t buf[1500];
			ssize_t r;
			while (p[i].revents && (r = recv(fd[i], buf, sizeof(buf), 0)) > 0) {
				const struct iphdr *ip = (const struct iphdr *)buf;
				size_t hl = (size_t)ip->ihl * 4;
				if ((size_t)r < hl + 8)
					continue;
				const struct icmphdr *h = (const struct icmphdr *)(buf + hl);
				if (h->type != ICMP_ECHOREPLY || ntohs(h->un.echo.id) != id)
					continue;
				if (ntohs(h->un.echo.sequence) != i)
					wrong++;        /* another client's reply, here */
				else if (!ok[i]) {
					ok[i] = true;
					replied++;
				}
			}
		}
	}
	for (int i = 0; i < n; i++)
		close(fd[i]);
	printf("tried=%d replied=%d wrong=%d\n", n, replied, wrong);
	return replied == n && !wrong ? 0 : 1;
}

/* The next connection's source address (tcp-stream SRC), or none. */
static const char *bind_src;

static int connect_to(const char *host, const char *port, int timeout_ms)
{
	struct sockaddr_storage ss, src;
	socklen_t len, slen;

	if (resolve(host, port, SOCK_STREAM, &ss, &len) < 0) {
		fprintf(stderr, "testtool: bad address %s\n", host);
		exit(2);
	}
	int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		die("socket");
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (bind_src && (resolve(bind_src, "0", SOCK_STREAM, &src, &slen) < 0 ||
			 bind(fd, (struct sockaddr *)&src, slen) < 0)) {
		fprintf(stderr, "testtool: cannot bind to %s\n", bind_src);
		exit(2);
	}
	if (connect(fd, (struct sockaddr *)&ss, len) < 0 && errno != EINPROGRESS)
		return -1;
	struct pollfd p = { fd, POLLOUT, 0 };
	int err = 0;
	socklen_t el = sizeof(err);
	if (poll(&p, 1, timeout_ms) != 1 ||
	    getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) < 0 || err) {
		close(fd);
		return -1;
	}
	return fd;
}

/* ---- tcp-stream ---------------------------------------------------------- */

static int tcp_stream(const char *host, const char *port, int seconds, int interval)
{
	int fd = connect_to(host, port, 3000);
	if (fd < 0) {
		printf("connected=0\n");
		return 1;
	}
	uint64_t start = now_ms(), end = start + (uint64_t)seconds * 1000;
	uint64_t next = start, last_echo = start, maxgap = 0;
	unsigned long sent = 0, echoed = 0;
	bool inorder = true, reset = false;
	char rbuf[65536], line[64];
	size_t rlen = 0;

	while (now_ms() < end) {
		uint64_t t = now_ms();
		if (t >= next) {
			int l = snprintf(line, sizeof(line), "%lu\n", sent + 1);
			ssize_t w = send(fd, line, (size_t)l, MSG_NOSIGNAL);
			if (w == l)
				sent++;
			else if (w < 0 && (errno == ECONNRESET || errno == EPIPE))
				reset = true;
			next += (uint64_t)interval;
		}
		if (reset)
			break;
		struct pollfd p = { fd, POLLIN, 0 };
		int wait = (int)(next > now_ms() ? next - now_ms() : 0);
		if (poll(&p, 1, wait) == 1) {
			ssize_t r = recv(fd, rbuf + rlen, sizeof(rbuf) - rlen - 1, 0);
			if (r < 0 && errno == ECONNRESET) {
				reset = true;
				break;
			}
			if (r <= 0)
				break;
			rlen += (size_t)r;
			char *s = rbuf, *nl;
			while ((nl = memchr(s, '\n', rlen - (size_t)(s - rbuf)))) {
				*nl = 0;
				unsigned long v = strtoul(s, NULL, 10);
				if (v != echoed + 1)
					inorder = false;
				echoed = v > echoed ? v : echoed;
				s = nl + 1;
				uint64_t t2 = now_ms();
				if (t2 - last_echo > maxgap)
					maxgap = t2 - last_echo;
				last_echo = t2;
			}
			rlen -= (size_t)(s - rbuf);
			memmove(rbuf, s, rlen);
		}
	}
	/* Let the last echoes come back (bounded). */
	uint64_t drain_end = now_ms() + 3000;
	while (echoed < sent && !reset && now_ms() < drain_end) {
		struct pollfd p = { fd, POLLIN, 0 };
		if (poll(&p, 1, 100) != 1)
			continue;
		ssize_t r = recv(fd, rbuf + rlen, sizeof(rbuf) - rlen - 1, 0);
		if (r <= 0) {
			reset = r < 0 && errno == ECONNRESET;
			break;
		}
		rlen += (size_t)r;
		char *s = rbuf, *nl;
		while ((nl = memchr(s, '\n', rlen - (size_t)(s - rbuf)))) {
			*nl = 0;
			unsigned long v = strtoul(s, NULL, 10);
			if (v != echoed + 1)
				inorder = false;
			echoed = v > echoed ? v : echoed;
			s = nl + 1;
		}
		rlen -= (size_t)(s - rbuf);
		memmove(rbuf, s, rlen);
	}
	uint64_t tail = now_ms() - last_echo;
	printf("connected=1 sent=%lu echoed=%lu inorder=%d reset=%d maxgap_ms=%llu "
	       "last_echo_ago_ms=%llu\n", sent, echoed, inorder, reset,
	       (unsigned long long)maxgap, (unsigned long long)tail);
	close(fd);
	return !(echoed == sent && inorder && !reset);
}

/* ---- tcp-many -------------------------------------------------------------- */

static int echo_all(int *fds, int n, const char *msg, int timeout_ms, bool *ok)
{
	size_t ml = strlen(msg);
	int good = 0;
	char buf[256];

	for (int i = 0; i < n; i++) {
		ok[i] = false;
		if (fds[i] >= 0 && send(fds[i], msg, ml, MSG_NOSIGNAL) != (ssize_t)ml) {
			close(fds[i]);
			fds[i] = -1;
		}
	}
	uint64_t end = now_ms() + (uint64_t)timeout_ms;
	static struct pollfd p[MAXC];
	while (good < n && now_ms() < end) {
		int np = 0;
		int idx[MAXC];
		for (int i = 0; i < n; i++)
			if (fds[i] >= 0 && !ok[i]) {
				p[np].fd = fds[i];
				p[np].events = POLLIN;
				idx[np++] = i;
			}
		if (np == 0)
			break;
		if (poll(p, (nfds_t)np, 100) <= 0)
			continue;
		for (int j = 0; j < np; j++) {
			if (!p[j].revents)
				continue;
			ssize_t r = recv(p[j].fd, buf, sizeof(buf), 0);
			if (r == (ssize_t)ml && memcmp(buf, msg, ml) == 0) {
				ok[idx[j]] = true;
				good++;
			} else {
				close(p[j].fd);
				fds[idx[j]] = -1;
			}
		}
	}
	return good;
}

static int tcp_many(const char *host, const char *port, int n, const char *trigger, int seconds)
{
	static int fds[MAXC];
	static bool ok[MAXC];
	int connected = 0;

	if (n > MAXC)
		n = MAXC;
	for (int i = 0; i < n; i++) {
		fds[i] = connect_to(host, port, 3000);
		if (fds[i] >= 0)
			connected++;
	}
	int first = echo_all(fds, n, "before\n", 5000, ok);
	printf("phase=1 connected=%d echoed=%d\n", connected, first);
	fflush(stdout);
	uint64_t end = now_ms() + (uint64_t)seconds * 1000;
	struct stat st;
	while (stat(trigger, &st) < 0 && now_ms() < end)
		usleep(50000);
	if (stat(trigger, &st) < 0) {
		printf("phase=2 trigger=missing\n");
		return 1;
	}
	int second = echo_all(fds, n, "after\n", 10000, ok);
	printf("phase=2 echoed=%d of=%d\n", second, n);
	return second == n ? 0 : 1;
}

static uint64_t now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

static int tcp_connects(const char *host, const char *port, int n, int timeout_ms)
{
	int connected = 0, echoed = 0, slow = 0;
	uint64_t sum = 0, max = 0;

	for (int i = 0; i < n; i++) {
		uint64_t t0 = now_us();
		int fd = connect_to(host, port, timeout_ms);
		if (fd < 0)
			continue;
		uint64_t us = now_us() - t0;
		connected++;
		sum += us;
		max = us > max ? us : max;
		slow += us > 500000;
		bool ok = false;
		int one = fd;
		echo_all(&one, 1, "hello\n", timeout_ms, &ok);
		echoed += ok;
		if (one >= 0)           /* (echo_all closes it on a failed send) */
			close(one);
	}
	printf("tried=%d connected=%d echoed=%d slow=%d connect_avg_us=%llu connect_max_us=%llu\n",
	       n, connected, echoed, slow, connected ? (unsigned long long)(sum / (uint64_t)connected) : 0ull,
	       (unsigned long long)max);
	return echoed == n ? 0 : 1;
}

/* ---- udp ----------------------------------------------------------------- */

__attribute__((noreturn)) static int udp_push(const char *port, int seconds, int interval)
{
	int fd = listen_any(port, SOCK_DGRAM);
	struct sockaddr_storage peer;
	socklen_t pl = 0;
	uint64_t end = 0, next = 0;
	unsigned long seq = 0;
	char buf[64];

	/* A datagram from a client (re)starts the push towards it. */
	for (;;) {
		struct pollfd p = { fd, POLLIN, 0 };
		uint64_t t = now_ms();
		int wait = pl && t < end ? (int)(next > t ? next - t : 0) : 1000;
		if (poll(&p, 1, wait) == 1) {
			pl = sizeof(peer);
			if (recvfrom(fd, buf, sizeof(buf), 0, (struct sockaddr *)&peer, &pl) < 0)
				die("recvfrom");
			end = now_ms() + (uint64_t)seconds * 1000;
			next = now_ms();
			seq = 0;
		}
		t = now_ms();
		if (pl && t < end && t >= next) {
			int l = snprintf(buf, sizeof(buf), "%lu\n", ++seq);
			sendto(fd, buf, (size_t)l, 0, (struct sockaddr *)&peer, pl);
			next += (uint64_t)interval;
		}
	}
}

__attribute__((noreturn)) static int udp_echo(const char *port)
{
	int fd = listen_any(port, SOCK_DGRAM);
	struct sockaddr_storage peer;
	char buf[2048];

	for (;;) {
		socklen_t pl = sizeof(peer);
		ssize_t n = recvfrom(fd, buf, sizeof(buf), 0, (struct sockaddr *)&peer, &pl);
		if (n > 0)
			sendto(fd, buf, (size_t)n, 0, (struct sockaddr *)&peer, pl);
	}
}

static int udp_ping(const char *host, const char *port, int sport, int seconds, int interval)
{
	struct sockaddr_storage ss;
	socklen_t len;
	char buf[64];
	int one = 1;

	if (resolve(host, port, SOCK_DGRAM, &ss, &len) < 0)
		return 2;
	int fd = socket(ss.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	struct sockaddr_storage me = { .ss_family = ss.ss_family };
	((struct sockaddr_in *)&me)->sin_port = htons((uint16_t)sport);     /* same offset in v6 */
	if (bind(fd, (struct sockaddr *)&me, ss.ss_family == AF_INET6 ? sizeof(struct sockaddr_in6) :
		 sizeof(struct sockaddr_in)) < 0 || connect(fd, (struct sockaddr *)&ss, len) < 0)
		die("udp-ping socket");
	uint64_t start = now_ms(), end = start + (uint64_t)seconds * 1000, next = start;
	uint64_t last = 0, maxgap = 0;
	unsigned long sent = 0, got = 0;
	while (now_ms() < end) {
		if (now_ms() >= next) {
			int l = snprintf(buf, sizeof(buf), "%lu\n", ++sent);
			send(fd, buf, (size_t)l, 0);
			next += (uint64_t)interval;
		}
		struct pollfd p = { fd, POLLIN, 0 };
		int wait = (int)(next > now_ms() ? next - now_ms() : 0);
		if (poll(&p, 1, wait) == 1 && recv(fd, buf, sizeof(buf), 0) > 0) {
			uint64_t t = now_ms();
			if (last && t - last > maxgap)
				maxgap = t - last;
			last = t;
			got++;
		}
	}
	/* maxgap_ms: the longest time between two echoes; last_ago_ms: since
	 * the last one (-1: none) */
	printf("sent=%lu echoed=%lu maxgap_ms=%llu last_ago_ms=%lld\n", sent, got,
	       (unsigned long long)maxgap, last ? (long long)(now_ms() - last) : -1LL);
	return 0;
}

static int udp_recv(const char *host, const char *port, int seconds)
{
	struct sockaddr_storage ss;
	socklen_t len;
	char buf[64];

	if (resolve(host, port, SOCK_DGRAM, &ss, &len) < 0) {
		fprintf(stderr, "testtool: bad address %s\n", host);
		return 2;
	}
	int fd = socket(ss.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&ss, len) < 0)
		die("udp connect");
	if (send(fd, "hello\n", 6, 0) != 6)
		die("send");
	uint64_t start = now_ms(), end = start + (uint64_t)seconds * 1000, last = 0, maxgap = 0;
	unsigned long got = 0, maxseq = 0;
	while (now_ms() < end) {
		struct pollfd p = { fd, POLLIN, 0 };
		if (poll(&p, 1, 100) != 1)
			continue;
		ssize_t r = recv(fd, buf, sizeof(buf) - 1, 0);
		if (r <= 0)
			continue;
		buf[r] = 0;
		unsigned long v = strtoul(buf, NULL, 10);
		uint64_t t = now_ms();
		if (got && t - last > maxgap)
			maxgap = t - last;
		last = t;
		got++;
		if (v > maxseq)
			maxseq = v;
	}
	printf("received=%lu maxseq=%lu maxgap_ms=%llu last_ago_ms=%llu\n", got, maxseq,
	       (unsigned long long)maxgap, (unsigned long long)(got ? now_ms() - last : 0));
	return got ? 0 : 1;
}

/* ---- ftp ------------------------------------------------------------------ */

/* Read one reply (multi-line aware); returns its code, or -1. */
static int ftp_reply(int fd, char *line, size_t len)
{
	size_t n = 0;
	int code = -1;
	uint64_t end = now_ms() + 10000;

	while (now_ms() < end) {
		struct pollfd p = { fd, POLLIN, 0 };
		if (poll(&p, 1, 200) != 1)
			continue;
		char c;
		if (read(fd, &c, 1) != 1)
			return -1;
		if (n < len - 1)
			line[n++] = c;
		if (c != '\n')
			continue;
		line[n] = 0;
		if (n >= 4 && line[3] == ' ' && line[0] >= '1' && line[0] <= '5') {
			code = atoi(line);
			return code;
		}
		n = 0;          /* a continuation line */
	}
	return -1;
}

static int ftp_cmd(int fd, const char *cmd, char *line, size_t len)
{
	if (write(fd, cmd, strlen(cmd)) != (ssize_t)strlen(cmd))
		return -1;
	return ftp_reply(fd, line, len);
}

/* Control connection, anonymous login, binary mode: the fd, or -1. */
static int ftp_login(const char *host, char *line, size_t len)
{
	int fd = connect_to(host, "21", 5000);

	if (fd < 0 || ftp_reply(fd, line, len) != 220)
		return -1;
	int c = ftp_cmd(fd, "USER anonymous\r\n", line, len);
	if (c == 331)
		c = ftp_cmd(fd, "PASS ctsync@\r\n", line, len);
	if (c != 230 || ftp_cmd(fd, "TYPE I\r\n", line, len) != 200) {
		close(fd);
		return -1;
	}
	return fd;
}

static int ftp_pasv(int fd, char *host, size_t hl, char *port, size_t pl)
{
	char line[512];
	unsigned h1, h2, h3, h4, p1, p2;

	if (ftp_cmd(fd, "PASV\r\n", line, sizeof(line)) != 227)
		return -1;
	char *s = strchr(line, '(');
	if (!s || sscanf(s, "(%u,%u,%u,%u,%u,%u)", &h1, &h2, &h3, &h4, &p1, &p2) != 6)
		return -1;
	snprintf(host, hl, "%u.%u.%u.%u", h1, h2, h3, h4);
	snprintf(port, pl, "%u", p1 * 256 + p2);
	return 0;
}

/* Read a data connection to its end (bounded): size and FNV-1a hash. */
static void read_all(int d, unsigned long *size, uint64_t *hash)
{
	char buf[65536];
	uint64_t end = now_ms() + 20000;

	*size = 0;
	*hash = 14695981039346656037ULL;
	while (now_ms() < end) {
		struct pollfd p = { d, POLLIN, 0 };
		if (poll(&p, 1, 200) != 1)
			continue;
		ssize_t n = read(d, buf, sizeof(buf));
		if (n <= 0)
			break;
		for (ssize_t i = 0; i < n; i++) {
			*hash ^= (uint8_t)buf[i];
			*hash *= 1099511628211ULL;
		}
		*size += (unsigned long)n;
	}
	close(d);
}

/* Passive: connect to the announced port and read. */
static int ftp_data(const char *host, const char *port, unsigned long *size, uint64_t *hash)
{
	int d = connect_to(host, port, 5000);
	if (d < 0)
		return -1;
	read_all(d, size, hash);
	return 0;
}

static int ftp_client(const char *host, const char *file, const char *trigger, int seconds)
{
	char line[512], h[64], p[16], cmd[600];
	unsigned long size = 0, lsize = 0;
	uint64_t hash = 0, lhash = 0;
	int fd = ftp_login(host, line, sizeof(line));

	if (fd < 0 || ftp_pasv(fd, h, sizeof(h), p, sizeof(p)) < 0) {
		printf("phase=1 login=failed\n");
		return 1;
	}
	printf("phase=1 pasv=%s:%s\n", h, p);
	fflush(stdout);
	uint64_t end = now_ms() + (uint64_t)seconds * 1000;
	struct stat st;
	while (stat(trigger, &st) < 0 && now_ms() < end)
		usleep(50000);
	/* RETR over the data connection announced before the trigger */
	snprintf(cmd, sizeof(cmd), "RETR %s\r\n", file);
	if (write(fd, cmd, strlen(cmd)) != (ssize_t)strlen(cmd)) {
		printf("phase=2 control=failed\n");
		return 1;
	}
	int dr = ftp_data(h, p, &size, &hash);
	int r1 = ftp_reply(fd, line, sizeof(line));     /* 150 */
	int r2 = r1 == 150 ? ftp_reply(fd, line, sizeof(line)) : -1;   /* 226 */
	/* the same control connection: PASV and LIST again */
	int lr = -1;
	if (dr == 0 && r2 == 226 && ftp_pasv(fd, h, sizeof(h), p, sizeof(p)) == 0 &&
	    write(fd, "LIST\r\n", 6) == 6 && ftp_data(h, p, &lsize, &lhash) == 0 &&
	    ftp_reply(fd, line, sizeof(line)) == 150 && ftp_reply(fd, line, sizeof(line)) == 226)
		lr = 0;
	printf("phase=2 data=%s bytes=%lu hash=%016llx retr=%d list=%s list_bytes=%lu\n",
	       dr == 0 ? "ok" : "failed", size, (unsigned long long)hash, r2,
	       lr == 0 ? "ok" : "failed", lsize);
	close(fd);
	return dr == 0 && r2 == 226 && lr == 0 ? 0 : 1;
}

/* Listen on our control connection's local address; send PORT for it. */
static int ftp_port(int ctl, char *line, size_t len)
{
	struct sockaddr_in me;
	socklen_t ml = sizeof(me);
	char cmd[128];

	if (getsockname(ctl, (struct sockaddr *)&me, &ml) < 0)
		return -1;
	me.sin_port = 0;
	int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (l < 0 || bind(l, (struct sockaddr *)&me, sizeof(me)) < 0 || listen(l, 1) < 0 ||
	    getsockname(l, (struct sockaddr *)&me, &ml) < 0)
		return -1;
	uint32_t a = ntohl(me.sin_addr.s_addr);
	unsigned p = ntohs(me.sin_port);
	snprintf(cmd, sizeof(cmd), "PORT %u,%u,%u,%u,%u,%u\r\n", a >> 24, (a >> 16) & 255,
		 (a >> 8) & 255, a & 255, p >> 8, p & 255);
	if (ftp_cmd(ctl, cmd, line, len) != 200) {
		close(l);
		return -1;
	}
	return l;
}

/* Active: accept the server's data connection and read. */
static int ftp_accept_data(int l, unsigned long *size, uint64_t *hash)
{
	struct pollfd p = { l, POLLIN, 0 };
	if (poll(&p, 1, 5000) != 1)
		return -1;
	int d = accept4(l, NULL, NULL, SOCK_CLOEXEC);
	if (d < 0)
		return -1;
	read_all(d, size, hash);
	return 0;
}

static int ftp_active(const char *host, const char *file, const char *trigger, int seconds)
{
	char line[512], cmd[600];
	unsigned long size = 0, lsize = 0;
	uint64_t hash = 0, lhash = 0;
	int fd = ftp_login(host, line, sizeof(line));
	int l = -1;

	if (fd < 0 || (l = ftp_port(fd, line, sizeof(line))) < 0) {
		printf("phase=1 login_or_port=failed\n");
		return 1;
	}
	printf("phase=1 port=sent\n");
	fflush(stdout);
	uint64_t end = now_ms() + (uint64_t)seconds * 1000;
	struct stat st;
	while (stat(trigger, &st) < 0 && now_ms() < end)
		usleep(50000);
	snprintf(cmd, sizeof(cmd), "RETR %s\r\n", file);
	int r1 = ftp_cmd(fd, cmd, line, sizeof(line));                 /* 150 */
	int dr = r1 == 150 ? ftp_accept_data(l, &size, &hash) : -1;
	int r2 = r1 == 150 ? ftp_reply(fd, line, sizeof(line)) : -1;   /* 226 */
	close(l);
	/* the control connection after failover: a new PORT (rewritten by the
	 * new node's helper on top of the old adjustment) and LIST */
	int lr = -1;
	if (r2 == 226 && (l = ftp_port(fd, line, sizeof(line))) >= 0 &&
	    ftp_cmd(fd, "LIST\r\n", line, sizeof(line)) == 150 &&
	    ftp_accept_data(l, &lsize, &lhash) == 0 && ftp_reply(fd, line, sizeof(line)) == 226)
		lr = 0;
	printf("phase=2 data=%s bytes=%lu hash=%016llx retr=%d list=%s list_bytes=%lu\n",
	       dr == 0 ? "ok" : "failed", size, (unsigned long long)hash, r2,
	       lr == 0 ? "ok" : "failed", lsize);
	return dr == 0 && r2 == 226 && lr == 0 ? 0 : 1;
}

static void put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24); p[1] = (uint8_t)(v >> 16); p[2] = (uint8_t)(v >> 8); p[3] = (uint8_t)v;
}

static int udp_garbage(const char *host, const char *port, int count, uint32_t node,
		       unsigned key)
{
	struct sockaddr_storage ss;
	socklen_t len;
	uint8_t buf[2048];

	if (resolve(host, port, SOCK_DGRAM, &ss, &len) < 0)
		return 2;
	int fd = socket(ss.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		die("socket");
	srandom(12345);
	int sent = 0;
	for (int i = 0; i < count; i++) {
		size_t n = (size_t)(random() % 1500);
		for (size_t j = 0; j < n; j++)
			buf[j] = (uint8_t)random();
		int kind = i % 4;
		if (kind >= 1 && n < 32 + 8 + 16)
			n = 32 + 8 + 16 + (size_t)(random() % 200);
		if (kind >= 1) {                /* a header that parses (wire.h, v2) */
			put32(buf, 0x43545359);
			buf[4] = 2;
			buf[5] = (uint8_t)(random() & 1);
			/* kind 3: sealed (so it seems) with the key id in use */
			buf[6] = kind == 3 ? (uint8_t)key : 0;
			buf[7] = 0;
			put32(buf + 8, kind == 1 ? (uint32_t)random() | 0x10000 : node);
			size_t rl = n - 32 - (kind == 3 ? 16 : 0);
			buf[20] = (uint8_t)(rl >> 8);
			buf[21] = (uint8_t)rl;
			if (kind == 2) {        /* a first record that cannot be valid */
				buf[32] = 1;    /* flow upsert */
				buf[33] = 0;
				buf[34] = 0xff; /* longer than the frame */
				buf[35] = 0xff;
			}
		}
		if (sendto(fd, buf, n, 0, (struct sockaddr *)&ss, len) == (ssize_t)n)
			sent++;
		if (i % 64 == 0)
			usleep(1000);
	}
	printf("sent=%d\n", sent);
	return 0;
}

/* Resend the UDP datagrams of a capture (tcpdump -w, Ethernet, IPv4) to
 * port PORT.  HOW: "spoof" — as captured, source address and all (a raw
 * socket); "tamper" — the same with one payload bit flipped; "own" — the
 * payload from our own address (an ordinary socket). */
static int replay_pcap(const char *file, const char *port, const char *how)
{
	FILE *f = fopen(file, "rb");
	uint8_t gh[24], rh[16], pkt[65536];
	int raw = -1, udp = -1, sent = 0, seen = 0;
	uint16_t want = (uint16_t)atoi(port);
	bool spoof = strcmp(how, "own") != 0, tamper = strcmp(how, "tamper") == 0;

	if (!f || fread(gh, 1, 24, f) != 24)
		die("pcap");
	uint32_t magic = (uint32_t)gh[0] | (uint32_t)gh[1] << 8 | (uint32_t)gh[2] << 16 |
			 (uint32_t)gh[3] << 24;
	bool swap = magic == 0xd4c3b2a1 || magic == 0x4d3cb2a1;
	if (!swap && magic != 0xa1b2c3d4 && magic != 0xa1b23c4d)
		die("not a pcap file");
	raw = socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_RAW);
	udp = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (raw < 0 || udp < 0)
		die("socket");
	while (fread(rh, 1, 16, f) == 16) {
		uint32_t caplen = swap ? (uint32_t)rh[8] << 24 | (uint32_t)rh[9] << 16 |
					 (uint32_t)rh[10] << 8 | rh[11] :
				  (uint32_t)rh[8] | (uint32_t)rh[9] << 8 | (uint32_t)rh[10] << 16 |
					 (uint32_t)rh[11] << 24;
		if (caplen > sizeof(pkt) || fread(pkt, 1, caplen, f) != caplen)
			break;
		/* Ethernet II, IPv4, UDP to the port */
		if (caplen < 14 + 20 + 8 || pkt[12] != 0x08 || pkt[13] != 0x00)
			continue;
		uint8_t *ip = pkt + 14;
		size_t ihl = (size_t)(ip[0] & 15) * 4, iplen = (size_t)ip[2] << 8 | ip[3];
		if (ip[9] != IPPROTO_UDP || iplen > caplen - 14 || ihl < 20 || iplen < ihl + 8)
			continue;
		uint8_t *uh = ip + ihl;
		if (((uint16_t)uh[2] << 8 | uh[3]) != want)
			continue;
		seen++;
		struct sockaddr_in to = { .sin_family = AF_INET, .sin_port = htons(want) };
		memcpy(&to.sin_addr, ip + 16, 4);
		ssize_t r;
		if (spoof) {
			if (tamper)
				uh[8 + 40 < iplen - ihl ? 8 + 40 : 8] ^= 0x01;
			uh[6] = uh[7] = 0;      /* no UDP checksum: fine for IPv4 */
			r = sendto(raw, ip, iplen, 0, (struct sockaddr *)&to, sizeof(to));
		} else {
			r = sendto(udp, uh + 8, iplen - ihl - 8, 0, (struct sockaddr *)&to, sizeof(to));
		}
		if (r > 0)
			sent++;
		if (sent % 64 == 0)
			usleep(1000);
	}
	fclose(f);
	printf("seen=%d sent=%d\n", seen, sent);
	return 0;
}

static int unsol_na(const char *ifname, const char *addr)
{
	struct {
		struct nd_neighbor_advert na;
		struct nd_opt_hdr opt;
		uint8_t mac[6];
	} __attribute__((packed)) m;
	struct ifreq ifr = { 0 };
	int fd = socket(AF_INET6, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_ICMPV6);
	int hops = 255;
	unsigned idx = if_nametoindex(ifname);

	if (fd < 0 || !idx)
		die("unsol-na socket/interface");
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", ifname);
	if (ioctl(fd, SIOCGIFHWADDR, &ifr) < 0)
		die("SIOCGIFHWADDR");
	memset(&m, 0, sizeof(m));
	m.na.nd_na_type = ND_NEIGHBOR_ADVERT;
	m.na.nd_na_flags_reserved = ND_NA_FLAG_OVERRIDE;
	if (inet_pton(AF_INET6, addr, &m.na.nd_na_target) != 1) {
		fprintf(stderr, "testtool: bad address %s\n", addr);
		return 2;
	}
	m.opt.nd_opt_type = ND_OPT_TARGET_LINKADDR;
	m.opt.nd_opt_len = 1;
	memcpy(m.mac, ifr.ifr_hwaddr.sa_data, 6);
	setsockopt(fd, IPPROTO_IPV6, IPV6_MULTICAST_HOPS, &hops, sizeof(hops));
	setsockopt(fd, IPPROTO_IPV6, IPV6_MULTICAST_IF, &idx, sizeof(idx));
	struct sockaddr_in6 to = { .sin6_family = AF_INET6, .sin6_scope_id = idx };
	inet_pton(AF_INET6, "ff02::1", &to.sin6_addr);
	if (sendto(fd, &m, sizeof(m), 0, (struct sockaddr *)&to, sizeof(to)) != sizeof(m))
		die("sendto");
	close(fd);
	return 0;
}

/* The buckets in `inet ctsync held` of the network namespace open as fd
 * (bit per bucket into held[128]); -1 if it could not be read. */
static int read_held(struct nft_ctx *nft, int fd, uint8_t *held)
{
	memset(held, 0, 128);
	if (setns(fd, CLONE_NEWNET) < 0 ||
	    nft_run_cmd_from_buffer(nft, "list set inet ctsync held") != 0)
		return -1;
	const char *out = nft_ctx_get_output_buffer(nft);
	const char *p = out ? strstr(out, "elements = {") : NULL;
	if (!p)
		return 0;               /* empty */
	for (p += 12; *p && *p != '}';) {
		char *end;
		unsigned long b = strtoul(p, &end, 10);
		if (end != p && b < 1024)
			held[b / 8] |= (uint8_t)(1u << (b % 8));
		/* to the next element: past "N expires 12ms," */
		p = end != p ? end : p + 1;
		while (*p && *p != ',' && *p != '}')
			p++;
		if (*p == ',')
			p++;
	}
	return 0;
}

static int held_sampler(int seconds, int ms, int n, char **names)
{
	enum { MAXNS = 8 };
	int fd[MAXNS];
	if (n > MAXNS)
		n = MAXNS;
	for (int i = 0; i < n; i++) {
		char path[256];
		snprintf(path, sizeof(path), "/run/netns/%s", names[i]);
		if ((fd[i] = open(path, O_RDONLY | O_CLOEXEC)) < 0)
			die(path);
	}
	/* a context per namespace, made in it (its netlink socket stays
	 * there), used in it */
	struct nft_ctx *nft[MAXNS];
	for (int i = 0; i < n; i++) {
		if (setns(fd[i], CLONE_NEWNET) < 0 || !(nft[i] = nft_ctx_new(NFT_CTX_DEFAULT)))
			die("nft context");
		nft_ctx_buffer_output(nft[i]);
		nft_ctx_buffer_error(nft[i]);
	}
	uint64_t end = now_ms() + (uint64_t)seconds * 1000;
	unsigned long rounds = 0, twice = 0;
	while (now_ms() < end) {
		uint8_t held[2][MAXNS][128];
		uint64_t t = now_ms();
		for (int pass = 0; pass < 2; pass++)
			for (int k = 0; k < n; k++) {
				int i = pass ? n - 1 - k : k;
				if (read_held(nft[i], fd[i], held[pass][i]) < 0)
					memset(held[pass][i], 0, 128);
			}
		char line[4096];
		size_t len = 0;
		for (unsigned b = 0; b < 1024; b++) {
			int c[2] = { 0, 0 };
			for (int pass = 0; pass < 2; pass++)
				for (int i = 0; i < n; i++)
					c[pass] += held[pass][i][b / 8] >> (b % 8) & 1;
			if (c[0] > 1 && c[1] > 1 && len < sizeof(line) - 8)
				len += (size_t)snprintf(line + len, sizeof(line) - len, " %u", b);
		}
		rounds++;
		twice += len > 0;
		printf("%llu%s\n", (unsigned long long)t, len ? line : " -");
		uint64_t spent = now_ms() - t;
		if (spent < (uint64_t)ms)
			usleep((useconds_t)(ms - (int)spent) * 1000);
	}
	fprintf(stderr, "rounds=%lu twice=%lu\n", rounds, twice);
	for (int i = 0; i < n; i++)
		nft_ctx_free(nft[i]);
	return 0;
}

/* FNV-1a, 64 bits */
static uint64_t fnv(const uint8_t *p, size_t n)
{
	uint64_t h = 0xcbf29ce484222325ull;
	for (size_t i = 0; i < n; i++)
		h = (h ^ p[i]) * 0x100000001b3ull;
	return h;
}

static int dup_count(const char *ifname, int seconds)
{
	enum { SLOTS = 1 << 20, WINDOW_MS = 2000 };
	static struct { uint64_t h, at; } seen[SLOTS];
	int fd = socket(AF_PACKET, SOCK_DGRAM | SOCK_CLOEXEC, htons(ETH_P_ALL));
	if (fd < 0)
		die("packet socket");
	struct sockaddr_ll sll = { .sll_family = AF_PACKET, .sll_protocol = htons(ETH_P_ALL),
				   .sll_ifindex = (int)if_nametoindex(ifname) };
	if (!sll.sll_ifindex || bind(fd, (struct sockaddr *)&sll, sizeof(sll)) < 0)
		die("bind to the interface");
	unsigned long packets = 0, dups = 0, dup_tcp = 0, dup_udp = 0;
	uint64_t end = now_ms() + (uint64_t)seconds * 1000, first_dup = 0;
	uint64_t start = now_ms();
	uint8_t buf[65536];
	for (;;) {
		uint64_t t = now_ms();
		if (t >= end)
			break;
		struct pollfd pf = { fd, POLLIN, 0 };
		if (poll(&pf, 1, (int)(end - t)) <= 0)
			continue;
		struct sockaddr_ll from;
		socklen_t fl = sizeof(from);
		ssize_t n = recvfrom(fd, buf, sizeof(buf), 0, (struct sockaddr *)&from, &fl);
		if (n < 20 || from.sll_pkttype == PACKET_OUTGOING)
			continue;
		uint8_t l4;
		if (from.sll_protocol == htons(ETH_P_IP))
			l4 = buf[9];
		else if (from.sll_protocol == htons(ETH_P_IPV6) && n >= 40)
			l4 = buf[6];
		else
			continue;
		if (l4 != IPPROTO_TCP && l4 != IPPROTO_UDP)
			continue;
		packets++;
		t = now_ms();
		uint64_t h = fnv(buf, (size_t)n) | 1;
		size_t slot = h % SLOTS;
		if (seen[slot].h == h && t - seen[slot].at <= WINDOW_MS) {
			dups++;
			dup_tcp += l4 == IPPROTO_TCP;
			dup_udp += l4 == IPPROTO_UDP;
			if (!first_dup)
				first_dup = t;
		}
		seen[slot].h = h;
		seen[slot].at = t;
	}
	printf("packets=%lu duplicates=%lu dup_tcp=%lu dup_udp=%lu first_dup_ms=%lld\n", packets,
	       dups, dup_tcp, dup_udp, first_dup ? (long long)(first_dup - start) : -1LL);
	close(fd);
	return 0;
}

int main(int argc, char **argv)
{
	signal(SIGPIPE, SIG_IGN);
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc == 3 && strcmp(argv[1], "tcp-echo") == 0)
		return tcp_echo(argv[2], false);
	if (argc == 3 && strcmp(argv[1], "tcp-whoami") == 0)
		return tcp_echo(argv[2], true);
	if (argc >= 6 && strcmp(argv[1], "icmp-burst") == 0)
		return icmp_burst(argv[2], atoi(argv[3]), atoi(argv[4]), argv + 5, argc - 5);
	if (argc >= 7 && strcmp(argv[1], "tcp-burst") == 0)
		return tcp_burst(argv[2], argv[3], argv[4], atoi(argv[5]), argv + 6, argc - 6);
	if ((argc == 6 || argc == 7) && strcmp(argv[1], "tcp-stream") == 0) {
		bind_src = argc == 7 ? argv[6] : NULL;
		return tcp_stream(argv[2], argv[3], atoi(argv[4]), atoi(argv[5]));
	}
	if (argc == 7 && strcmp(argv[1], "tcp-many") == 0)
		return tcp_many(argv[2], argv[3], atoi(argv[4]), argv[5], atoi(argv[6]));
	if ((argc == 6 || argc == 7) && strcmp(argv[1], "tcp-connects") == 0) {
		bind_src = argc == 7 ? argv[6] : NULL;
		return tcp_connects(argv[2], argv[3], atoi(argv[4]), atoi(argv[5]));
	}
	if (argc == 5 && strcmp(argv[1], "udp-push") == 0)
		return udp_push(argv[2], atoi(argv[3]), atoi(argv[4]));
	if (argc == 3 && strcmp(argv[1], "udp-echo") == 0)
		return udp_echo(argv[2]);
	if (argc == 7 && strcmp(argv[1], "udp-ping") == 0)
		return udp_ping(argv[2], argv[3], atoi(argv[4]), atoi(argv[5]), atoi(argv[6]));
	if (argc == 5 && strcmp(argv[1], "udp-recv") == 0)
		return udp_recv(argv[2], argv[3], atoi(argv[4]));
	if (argc == 5 && strcmp(argv[1], "replay-pcap") == 0)
		return replay_pcap(argv[2], argv[3], argv[4]);
	if (argc == 7 && strcmp(argv[1], "udp-garbage") == 0)
		return udp_garbage(argv[2], argv[3], atoi(argv[4]), (uint32_t)strtoul(argv[5], NULL, 10),
				   (unsigned)atoi(argv[6]));
	if (argc == 6 && strcmp(argv[1], "udp-garbage") == 0)
		return udp_garbage(argv[2], argv[3], atoi(argv[4]), (uint32_t)atoi(argv[5]), 0);
	if (argc == 6 && strcmp(argv[1], "ftp-port") == 0)
		return ftp_active(argv[2], argv[3], argv[4], atoi(argv[5]));
	if (argc == 6 && strcmp(argv[1], "ftp-pasv") == 0)
		return ftp_client(argv[2], argv[3], argv[4], atoi(argv[5]));
	if (argc >= 5 && strcmp(argv[1], "held-sampler") == 0)
		return held_sampler(atoi(argv[2]), atoi(argv[3]), argc - 4, argv + 4);
	if (argc == 4 && strcmp(argv[1], "dup-count") == 0)
		return dup_count(argv[2], atoi(argv[3]));
	if (argc == 4 && strcmp(argv[1], "unsol-na") == 0)
		return unsol_na(argv[2], argv[3]);
	fprintf(stderr, "usage: see the comment at the top of tests/tools/testtool.c\n");
	return 2;
}
