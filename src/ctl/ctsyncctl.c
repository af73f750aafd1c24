/* ctsyncctl — ask ctsyncd what it knows, tell it what to do.
 *
 * Exit status: 0 success, 1 the daemon reported failure, 2 usage error,
 * 3 the daemon could not be reached. */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "ctl/import.h"
#include "daemon/control_proto.h"
#include "util/version.h"
#include "sync/keyfile.h"

#include <sys/stat.h>

#define DEFAULT_SOCKET "/run/ctsyncd/ctsyncd.sock"
#define TIMEOUT_MS 30000
#define CMD_WAIT_SYNC 1000      /* client-side: polls CTL_IN_SYNC */
#define CMD_KEYGEN 1001         /* client-side: no daemon involved */

static void usage(FILE *f)
{
	fprintf(f,
		"usage: ctsyncctl [--socket PATH] [--json] COMMAND | --version | --help\n"
		"commands:\n"
		"  status                  role, flows, peers, in sync or not\n"
		"  stats                   every counter\n"
		"  dump [--local | --peer ID]  flows held (all, this node's, one peer's)\n"
		"  promote                 become primary: own and advertise every flow held\n"
		"  demote                  become backup\n"
		"  commit                  write flows waiting in memory into the kernel\n"
		"  resync                  re-read the kernel table, ask peers for their flows\n"
		"  wait-sync [--timeout S] wait until in sync (exit 0) or S seconds (default 60) pass (exit 1)\n"
		"  reload                  re-read the configuration: keys and log level (a bad file is refused)\n"
		"  metrics                 every counter and gauge, Prometheus text format\n"
		"  keygen [--id N]         print a new sync-link key (key id N, 1-255; random if not given);\n"
		"                          written to a file (ctsyncctl keygen > FILE), the file is made 0600\n"
		"  import-conntrackd [--peer ADDRESS]... [--key FILE] FILE\n"
		"                          a conntrackd.conf as ctsyncd.conf, on stdout; what has no\n"
		"                          counterpart is named on stderr (exit 1: not converted)\n"
		"exit status: 0 ok, 1 daemon reported failure, 2 usage, 3 daemon unreachable\n");
}

static int read_full(int fd, void *buf, size_t len, int *timeout_ms)
{
	size_t got = 0;
	struct timespec t0, t1;

	while (got < len) {
		struct pollfd p = { fd, POLLIN, 0 };
		clock_gettime(CLOCK_MONOTONIC, &t0);
		int r = poll(&p, 1, *timeout_ms);
		clock_gettime(CLOCK_MONOTONIC, &t1);
		*timeout_ms -= (int)((t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000);
		if (r <= 0 || *timeout_ms <= 0)
			return -ETIMEDOUT;
		ssize_t n = read(fd, (char *)buf + got, len - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -EPIPE;
		got += (size_t)n;
	}
	return 0;
}

/* One request, one answer.  0 with *code and *body (NUL-terminated, the
 * caller frees it) set, or 3 when the daemon cannot be reached. */
static int request(const char *sock, int cmd, uint32_t flags, const char *arg,
		   uint16_t *code, char **body, bool quiet)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	memcpy(sun.sun_path, sock, strlen(sock) + 1);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
		if (!quiet)
			fprintf(stderr, "ctsyncctl: cannot reach ctsyncd at %s: %s\n", sock,
				strerror(errno));
		if (fd >= 0)
			close(fd);
		return 3;
	}
	size_t alen = strlen(arg);
	struct ctl_hdr h = { CTL_MAGIC, CTL_VERSION, (uint16_t)cmd, flags, (uint32_t)alen };
	char req[CTL_HDR_LEN + 64];
	memcpy(req, &h, sizeof(h));
	memcpy(req + sizeof(h), arg, alen);
	if (write(fd, req, sizeof(h) + alen) != (ssize_t)(sizeof(h) + alen)) {
		fprintf(stderr, "ctsyncctl: sending to ctsyncd: %s\n", strerror(errno));
		close(fd);
		return 3;
	}
	int tmo = TIMEOUT_MS;
	struct ctl_hdr r;
	if (read_full(fd, &r, sizeof(r), &tmo) < 0 || r.magic != CTL_MAGIC) {
		fprintf(stderr, "ctsyncctl: no valid answer from ctsyncd\n");
		close(fd);
		return 3;
	}
	char *b = malloc((size_t)r.len + 1);
	if (!b || read_full(fd, b, r.len, &tmo) < 0) {
		fprintf(stderr, "ctsyncctl: answer from ctsyncd cut short\n");
		free(b);
		close(fd);
		return 3;
	}
	close(fd);
	b[r.len] = 0;
	*code = r.code;
	*body = b;
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "socket", required_argument, NULL, 's' },
		{ "json", no_argument, NULL, 'j' },
		{ "local", no_argument, NULL, 'l' },
		{ "peer", required_argument, NULL, 'p' },
		{ "timeout", required_argument, NULL, 't' },
		{ "id", required_argument, NULL, 'i' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ 0 },
	};
	static const struct { const char *name; enum ctl_cmd cmd; } cmds[] = {
		{ "status", CTL_STATUS }, { "stats", CTL_STATS }, { "dump", CTL_DUMP },
		{ "promote", CTL_PROMOTE }, { "demote", CTL_DEMOTE }, { "commit", CTL_COMMIT },
		{ "resync", CTL_RESYNC }, { "wait-sync", CMD_WAIT_SYNC }, { "reload", CTL_RELOAD },
		{ "metrics", CTL_METRICS },
		{ "keygen", CMD_KEYGEN },
	};
	long key_id = 0;
	const char *sock = getenv("CTSYNCCTL_SOCKET");
	const char *peer = NULL;
	bool json = false, local = false;
	long timeout_s = 60;
	bool timeout_set = false;
	int c;

	if (!sock)
		sock = DEFAULT_SOCKET;
	while ((c = getopt_long(argc, argv, "+s:jhV", opts, NULL)) != -1) {
		switch (c) {
		case 's': sock = optarg; break;
		case 'j': json = true; break;
		case 'h': usage(stdout); return 0;
		case 'V': printf("ctsyncctl %s (control protocol %u)\n", CTSYNC_VERSION, CTL_VERSION);
			  return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind >= argc) {
		usage(stderr);
		return 2;
	}
	const char *name = argv[optind++];
	if (strcmp(name, "import-conntrackd") == 0)
		return import_conntrackd(argc - optind + 1, argv + optind - 1);
	int cmd = 0;
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
		if (strcmp(name, cmds[i].name) == 0)
			cmd = (int)cmds[i].cmd;
	if (!cmd) {
		fprintf(stderr, "ctsyncctl: unknown command '%s'\n", name);
		usage(stderr);
		return 2;
	}
	/* Options after the command (dump's, and --json anywhere). */
	int base = optind - 1;
	char **av = argv + base;
	int ac = argc - base;
	av[0] = (char *)"ctsyncctl";
	optind = 1;
	while ((c = getopt_long(ac, av, "+jl", opts, NULL)) != -1) {
		char *end;
		switch (c) {
		case 'j': json = true; break;
		case 'l': local = true; break;
		case 'p': peer = optarg; break;
		case 't':
			timeout_s = strtol(optarg, &end, 10);
			if (*end || timeout_s < 0 || timeout_s > 86400) {
				fprintf(stderr, "ctsyncctl: --timeout wants seconds (0-86400)\n");
				return 2;
			}
			timeout_set = true;
			break;
		case 'i':
			key_id = strtol(optarg, &end, 10);
			if (*end || key_id < 1 || key_id > 255) {
				fprintf(stderr, "ctsyncctl: --id wants a key id from 1 to 255\n");
				return 2;
			}
			break;
		default: usage(stderr); return 2;
		}
	}
	if (optind < ac) {
		fprintf(stderr, "ctsyncctl: unexpected argument '%s'\n", av[optind]);
		return 2;
	}
	if (strlen(sock) >= sizeof(((struct sockaddr_un *)0)->sun_path)) {
		fprintf(stderr, "ctsyncctl: socket path too long\n");
		return 2;
	}
	char arg[64] = "";
	if (timeout_set && cmd != CMD_WAIT_SYNC) {
		fprintf(stderr, "ctsyncctl: --timeout goes with wait-sync\n");
		return 2;
	}
	if (key_id && cmd != CMD_KEYGEN) {
		fprintf(stderr, "ctsyncctl: --id goes with keygen\n");
		return 2;
	}
	if (cmd == CMD_KEYGEN) {
		char text[256];
		struct stat st;
		if (keyfile_generate((uint8_t)key_id, text, sizeof(text)) < 0) {
			fprintf(stderr, "ctsyncctl: no randomness for a key\n");
			return 1;
		}
		/* into a file: make it private before the key is in it */
		if (fstat(STDOUT_FILENO, &st) == 0 && S_ISREG(st.st_mode) &&
		    fchmod(STDOUT_FILENO, 0600) < 0) {
			fprintf(stderr, "ctsyncctl: cannot make the key file private: %s\n",
				strerror(errno));
			return 1;
		}
		fputs(text, stdout);
		explicit_bzero(text, sizeof(text));
		return fflush(stdout) == 0 ? 0 : 1;
	}
	if ((local || peer) && cmd != CTL_DUMP) {
		fprintf(stderr, "ctsyncctl: --local and --peer go with dump\n");
		return 2;
	}
	if (local && peer) {
		fprintf(stderr, "ctsyncctl: --local and --peer exclude each other\n");
		return 2;
	}
	if (local)
		snprintf(arg, sizeof(arg), "local");
	if (peer) {
		char *end;
		unsigned long id = strtoul(peer, &end, 10);
		if (*end || !*peer || id == 0 || id > 4294967295UL) {
			fprintf(stderr, "ctsyncctl: --peer wants a node id, got '%s'\n", peer);
			return 2;
		}
		snprintf(arg, sizeof(arg), "peer %lu", id);
	}

	if (cmd == CMD_WAIT_SYNC) {
		/* poll until in sync (exit 0) or the time is up (exit 1) */
		struct timespec t0, t;
		clock_gettime(CLOCK_MONOTONIC, &t0);
		int rc = 0;
		for (;;) {
			char *body = NULL;
			uint16_t code = CTL_FAILED;
			/* a daemon that is (re)starting may not answer yet: quietly */
			rc = request(sock, CTL_IN_SYNC, 0, "", &code, &body, true);
			free(body);
			if (rc == 0 && code == CTL_OK) {
				printf("in sync\n");
				return 0;
			}
			clock_gettime(CLOCK_MONOTONIC, &t);
			if ((t.tv_sec - t0.tv_sec) * 1000L + (t.tv_nsec - t0.tv_nsec) / 1000000L >=
			    timeout_s * 1000L)
				break;
			usleep(100000);
		}
		if (rc) {
			fprintf(stderr, "ctsyncctl: cannot reach ctsyncd at %s\n", sock);
			return 3;
		}
		fprintf(stderr, "ctsyncctl: not in sync after %ld s\n", timeout_s);
		return 1;
	}
	char *body = NULL;
	uint16_t code;
	int rc = request(sock, cmd, json ? CTL_F_JSON : 0, arg, &code, &body, false);
	if (rc)
		return rc;
	fputs(body, code == CTL_OK ? stdout : stderr);
	free(body);
	if (code == CTL_OK)
		return 0;
	return code == CTL_BADREQ ? 2 : 1;
}
