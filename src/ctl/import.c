/* import.c — `ctsyncctl import-conntrackd FILE`: a conntrackd.conf read,
 * the equivalent ctsyncd.conf written to stdout (docs/MIGRATING.md).
 *
 * conntrackd's grammar, as its parser takes it: words separated by blanks,
 * `#` to the end of the line a comment, a block `{ ... }` after the words
 * that name it.  A statement is the words of one line; a list block
 * (`Protocol Accept { TCP UDP }`) is all the words inside it.
 *
 * Every key is either mapped or named on stderr, FILE:LINE first, with why
 * it has no counterpart: nothing is dropped silently.  Exit status: 0 a
 * configuration was written (the notes on stderr say what differs), 1 none
 * could be (stderr says why), 2 usage. */
#include "ctl/import.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MAX_WORDS 32
#define MAX_PEERS 32
#define MAX_LIST 64
#define MAX_DEPTH 16           /* conntrackd's own go 3 deep */

struct stmt {
	char *w[MAX_WORDS];
	int nw, line;
	bool block;
	struct stmt *child, *next;
};

struct in {
	const char *path;
	FILE *f;
	int line, c;
	int fatal;              /* errors that stop the conversion */
	bool stop;              /* so bad that reading stops */
	int unmapped;           /* keys named on stderr */
};

/* ---- reading ----------------------------------------------------------- */

static void note(struct in *in, int line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void note(struct in *in, int line, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s:%d: ", in->path, line);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* A key with no counterpart, and why. */
#define UNMAPPED(in, s, ...) do { note(in, (s)->line, __VA_ARGS__); (in)->unmapped++; } while (0)
/* The conversion cannot go on. */
#define FATAL(in, line, ...) do { note(in, line, __VA_ARGS__); (in)->fatal++; } while (0)

enum tok { T_EOF, T_WORD, T_OPEN, T_CLOSE };

/* The next token; a word is returned in buf.  *line: the line it is on. */
static enum tok next(struct in *in, char *buf, size_t len, int *line)
{
	int c;

	for (;;) {
		c = in->c ? in->c : getc(in->f);
		in->c = 0;
		if (c == '#')
			while ((c = getc(in->f)) != EOF && c != '\n')
				;
		if (c == '\n')
			in->line++;
		if (c == EOF)
			return T_EOF;
		if (!isspace(c))
			break;
	}
	*line = in->line;
	if (c == '{')
		return T_OPEN;
	if (c == '}')
		return T_CLOSE;
	size_t n = 0;
	bool quoted = c == '"';
	if (!quoted)
		buf[n++] = (char)c;
	while ((c = getc(in->f)) != EOF) {
		if (quoted ? c == '"' : (isspace(c) || c == '{' || c == '}' || c == '#')) {
			if (!quoted)
				in->c = c;
			break;
		}
		if (n + 1 < len)
			buf[n++] = (char)c;
	}
	buf[n] = 0;
	return T_WORD;
}

static void stmt_free(struct stmt *s)
{
	while (s) {
		struct stmt *nx = s->next;
		for (int i = 0; i < s->nw; i++)
			free(s->w[i]);
		stmt_free(s->child);
		free(s);
		s = nx;
	}
}

/* Statements up to the closing brace (depth > 0) or the end of the file. */
static struct stmt *parse(struct in *in, int depth, int open_line)
{
	struct stmt *head = NULL, **tail = &head, *cur = NULL;
	char w[256];
	int line;

	for (;;) {
		enum tok t = next(in, w, sizeof(w), &line);
		if (t == T_EOF) {
			if (depth)
				FATAL(in, open_line, "this block is never closed (a '}' is missing)");
			return head;
		}
		if (t == T_CLOSE) {
			if (!depth)
				FATAL(in, line, "'}' without a block to close");
			else
				return head;
			continue;
		}
		if (t == T_OPEN) {
			if (!cur || cur->block) {
				/* a block with no name: its words still count */
				cur = calloc(1, sizeof(*cur));
				if (!cur)
					exit(1);
				cur->line = line;
				*tail = cur;
				tail = &cur->next;
			}
			cur->block = true;
			if (depth == MAX_DEPTH) {
				FATAL(in, line, "blocks nested deeper than %d: not a conntrackd.conf",
				      MAX_DEPTH);
				in->stop = true;
			}
			if (in->stop)
				return head;
			cur->child = parse(in, depth + 1, line);
			if (in->stop)
				return head;
			cur = NULL;
			continue;
		}
		if (!cur || cur->block || cur->line != line) {
			cur = calloc(1, sizeof(*cur));
			if (!cur)
				exit(1);
			cur->line = line;
			*tail = cur;
			tail = &cur->next;
		}
		if (cur->nw < MAX_WORDS && !(cur->w[cur->nw++] = strdup(w)))
			exit(1);
	}
}

/* ---- what is written ---------------------------------------------------- */

struct chan {
	enum { CH_MCAST, CH_UDP, CH_TCP } type;
	bool dflt;
	int line;
	char local[64], dest[64], group[64], ifname[32];
	int family;
	long port;
	long rcvbuf, sndbuf;
};

struct out {
	const char *inject;             /* on-promote, immediate */
	const char *tcp_window;         /* NULL: ctsyncd's default */
	int exp;                        /* -1 not said, 0 off, 1 on */
	char *helpers[16];
	int nhelpers;
	char *protos[MAX_LIST];
	int nprotos;                    /* -1: not said */
	char *ignore[MAX_LIST];
	int nignore;
	char *states[16];
	int nstates;
	long event_buffer;
	long nice;
	bool nice_set, syslog;
	struct chan ch[8];
	int nch;
};

static bool is_on(const char *v)
{
	return v && (strcasecmp(v, "on") == 0 || strcasecmp(v, "yes") == 0 ||
		     strcmp(v, "1") == 0);
}

static bool is_onoff(const char *v)
{
	return v && (is_on(v) || strcasecmp(v, "off") == 0 || strcasecmp(v, "no") == 0 ||
		     strcmp(v, "0") == 0);
}

static bool number(const char *v, long min, long max, long *out)
{
	char *end;

	if (!v || !*v)
		return false;
	errno = 0;
	long n = strtol(v, &end, 10);
	if (errno || *end || n < min || n > max)
		return false;
	*out = n;
	return true;
}

static int addr_family(const char *s)
{
	char a[64], buf[16];
	const char *slash = strchr(s, '/');
	size_t n = slash ? (size_t)(slash - s) : strlen(s);

	if (n >= sizeof(a))
		return 0;
	memcpy(a, s, n);
	a[n] = 0;
	if (inet_pton(AF_INET, a, buf) == 1)
		return AF_INET;
	if (inet_pton(AF_INET6, a, buf) == 1)
		return AF_INET6;
	return 0;
}

/* The words of a list block, in order. */
static int list_words(const struct stmt *blk, char **out, int max)
{
	int n = 0;

	for (const struct stmt *s = blk; s; s = s->next)
		for (int i = 0; i < s->nw && n < max; i++)
			out[n++] = s->w[i];
	return n;
}

/* ---- conntrackd's sections ---------------------------------------------- */

/* Keys without a counterpart, and why. */
struct why {
	const char *key, *why;
};

static const struct why mode_none[] = {
	{ "DisableInternalCache", "ctsyncd always keeps the flows it owns (they answer a "
	  "peer's resync)" },
	{ "ResendQueueSize", "ctsyncd keeps sent frames by size (sync.resend_buffer, 4 MiB by "
	  "default), not by count" },
	{ "ACKWindowSize", "ctsyncd's receivers ask for what they miss (NACKs); nothing to size" },
	{ "CommitTimeout", "`ctsyncctl commit` returns once every flow is in the kernel" },
	{ "PurgeTimeout", "a backup that is promoted owns the flows it holds; stale ones end "
	  "with their kernel timeout" },
	{ "StartupResync", "ctsyncd always asks its peers for their flows at start" },
	{ "RefreshTime", "ALARM mode's; ctsyncd refreshes peers' timeouts itself "
	  "(sync.refresh_ms)" },
	{ "CacheTimeout", "ALARM mode's; ctsyncd refreshes peers' timeouts itself "
	  "(sync.refresh_ms)" },
	{ NULL, NULL },
};

static const struct why general_none[] = {
	{ "HashSize", "ctsyncd's table grows with the flows (the kernel's nf_conntrack_max "
	  "bounds them)" },
	{ "HashLimit", "ctsyncd's table grows with the flows (the kernel's nf_conntrack_max "
	  "bounds them)" },
	{ "LockFile", "a second ctsyncd is refused by its control socket; `ctsyncd --pidfile` "
	  "writes a PID file" },
	{ "UNIX", "ctsyncd's control socket speaks ctsyncctl's protocol, not conntrackd "
	  "-c/-f/-n: left at ctsyncd's own (docs/MIGRATING.md maps the commands)" },
	{ "NetlinkOverrunResync", "ctsyncd re-reads the kernel table after every overrun, "
	  "always" },
	{ "NetlinkEventsReliable", "ctsyncd finds lost events itself (an overrun makes it "
	  "re-read the table); the kernel does not hold flows back for it" },
	{ "PollSecs", "ctsyncd reads the kernel's events; it has no polling mode" },
	{ "EventIterationLimit", "ctsyncd reads events in bounded slices of its own" },
	{ "Scheduler", "set CPUSchedulingPolicy= and CPUSchedulingPriority= in "
	  "ctsyncd.service" },
	{ "Systemd", "ctsyncd.service tells systemd itself" },
	{ "StartupResync", "ctsyncd always asks its peers at start" },
	{ NULL, NULL },
};

/* Key k is one of t's: named with its reason. */
static bool no_counterpart(struct in *in, const struct stmt *s, const char *k,
			   const struct why *t)
{
	for (; t->key; t++)
		if (strcasecmp(k, t->key) == 0) {
			UNMAPPED(in, s, "%s: %s", k, t->why);
			return true;
		}
	return false;
}

static void conv_mode(struct in *in, const struct stmt *m, struct out *o)
{
	const char *mode = m->nw > 1 ? m->w[1] : "";

	if (strcasecmp(mode, "FTFW") && strcasecmp(mode, "NOTRACK") && strcasecmp(mode, "ALARM")) {
		FATAL(in, m->line, "Mode %s: not a conntrackd mode (FTFW, NOTRACK, ALARM)", mode);
		return;
	}
	if (strcasecmp(mode, "NOTRACK") == 0)
		UNMAPPED(in, m, "Mode NOTRACK: ctsyncd has no unreliable mode: every frame is "
			 "sequenced and a lost one sent again (FTFW's guarantee, always)");
	if (strcasecmp(mode, "ALARM") == 0)
		UNMAPPED(in, m, "Mode ALARM: ctsyncd sends every change as it happens, not the "
			 "whole table every RefreshTime; it keeps peers' timeouts fresh itself");
	/* the external cache is conntrackd's default: flows wait in memory
	 * until a commit, as ctsyncd's on-promote */
	o->inject = "on-promote";
	for (const struct stmt *s = m->child; s; s = s->next) {
		const char *k = s->w[0] ? s->w[0] : "{";
		const char *v = s->nw > 1 ? s->w[1] : NULL;
		if (strcasecmp(k, "DisableExternalCache") == 0 && is_onoff(v))
			o->inject = is_on(v) ? "immediate" : "on-promote";
		else if (!no_counterpart(in, s, k, mode_none))
			UNMAPPED(in, s, "%s: not a key of Mode %s known to this importer", k, mode);
	}
}

static void conv_channel(struct in *in, const struct stmt *c, struct out *o)
{
	const char *kind = c->w[0];

	if (o->nch == (int)(sizeof(o->ch) / sizeof(o->ch[0]))) {
		UNMAPPED(in, c, "%s: too many channels", kind);
		return;
	}
	struct chan *ch = &o->ch[o->nch++];
	memset(ch, 0, sizeof(*ch));
	ch->type = strcasecmp(kind, "Multicast") == 0 ? CH_MCAST :
		   strcasecmp(kind, "UDP") == 0 ? CH_UDP : CH_TCP;
	ch->dflt = c->nw > 1 && strcasecmp(c->w[1], "Default") == 0;
	ch->line = c->line;
	ch->port = 3780;
	for (const struct stmt *s = c->child; s; s = s->next) {
		const char *k = s->w[0] ? s->w[0] : "{";
		const char *v = s->nw > 1 ? s->w[1] : NULL;
		int fam = v ? addr_family(v) : 0;
		if (!v) {
			FATAL(in, s->line, "%s: a value is missing", k);
		} else if (strcasecmp(k, "IPv4_address") == 0 || strcasecmp(k, "IPv6_address") == 0) {
			if (!fam)
				FATAL(in, s->line, "%s: \"%s\" is not an address", k, v);
			/* a multicast channel's group; a UDP or TCP channel's own address */
			snprintf(ch->type == CH_MCAST ? ch->group : ch->local, sizeof(ch->group),
				 "%s", v);
			ch->family = fam;
		} else if (strcasecmp(k, "IPv4_Destination_Address") == 0 ||
			   strcasecmp(k, "IPv6_Destination_Address") == 0) {
			if (!fam)
				FATAL(in, s->line, "%s: \"%s\" is not an address", k, v);
			snprintf(ch->dest, sizeof(ch->dest), "%s", v);
		} else if (strcasecmp(k, "IPv4_interface") == 0 ||
			   strcasecmp(k, "IPv6_interface") == 0) {
			/* the local address on the link (an interface name for
			 * some IPv6 set-ups) */
			if (fam)
				snprintf(ch->local, sizeof(ch->local), "%s", v);
			else
				snprintf(ch->ifname, sizeof(ch->ifname), "%s", v);
		} else if (strcasecmp(k, "Interface") == 0) {
			snprintf(ch->ifname, sizeof(ch->ifname), "%s", v);
		} else if (strcasecmp(k, "Port") == 0 || strcasecmp(k, "Group") == 0) {
			if (!number(v, 1, 65535, &ch->port))
				FATAL(in, s->line, "%s: \"%s\" is not a port", k, v);
		} else if (strcasecmp(k, "SndSocketBuffer") == 0 ||
			   strcasecmp(k, "RcvSocketBuffer") == 0) {
			long n;
			if (!number(v, 1, 1L << 30, &n))
				FATAL(in, s->line, "%s: \"%s\" is not a size", k, v);
			else if (n < 65536)
				UNMAPPED(in, s, "%s %ld: below ctsyncd's least (65536): left at its "
					 "default", k, n);
			else if (tolower((unsigned char)k[0]) == 's')
				ch->sndbuf = n;
			else
				ch->rcvbuf = n;
		} else if (strcasecmp(k, "Checksum") == 0) {
			UNMAPPED(in, s, "Checksum: every ctsyncd frame is sealed (AEAD), which "
				 "checks more than a checksum");
		} else {
			UNMAPPED(in, s, "%s: not a key of a %s channel known to this importer", k,
				 kind);
		}
	}
	if (ch->type == CH_TCP)
		UNMAPPED(in, c, "TCP channel: ctsyncd has no TCP transport; written as UDP "
			 "between the same addresses (ctsyncd's own sequence numbers and "
			 "NACKs make it reliable)");
}

static void conv_options(struct in *in, const struct stmt *blk, struct out *o)
{
	for (const struct stmt *s = blk; s; s = s->next) {
		const char *k = s->w[0] ? s->w[0] : "{";
		const char *v = s->nw > 1 ? s->w[1] : NULL;
		if (strcasecmp(k, "ExpectationSync") == 0 && s->block) {
			char *w[16];
			int n = list_words(s->child, w, 16);
			o->exp = 1;
			for (int i = 0; i < n; i++) {
				char h[32];
				snprintf(h, sizeof(h), "%s", w[i]);
				for (char *p = h; *p; p++)
					*p = (char)tolower((unsigned char)*p);
				if (strcmp(h, "h.323") == 0 || strcmp(h, "ras") == 0 ||
				    strcmp(h, "q.931") == 0)
					snprintf(h, sizeof(h), "h323");
				static const char *const known[] = { "ftp", "sip", "tftp", "h323",
					"pptp", "irc", "amanda", "netbios-ns", "snmp", "sane", NULL };
				int kn = 0;
				while (known[kn] && strcmp(known[kn], h))
					kn++;
				if (!known[kn]) {
					UNMAPPED(in, s, "ExpectationSync %s: the kernel has no helper of "
						 "that name; ctsyncd replicates the kernel helpers' "
						 "expectations (ftp, sip, tftp, h323, pptp, ...)", w[i]);
					continue;
				}
				bool dup = false;
				for (int j = 0; j < o->nhelpers; j++)
					dup |= strcmp(o->helpers[j], h) == 0;
				if (!dup && o->nhelpers < 8)
					o->helpers[o->nhelpers++] = strdup(h);
			}
		} else if (strcasecmp(k, "ExpectationSync") == 0 && is_onoff(v)) {
			o->exp = is_on(v);
		} else if (strcasecmp(k, "TCPWindowTracking") == 0 && is_onoff(v)) {
			o->tcp_window = is_on(v) ? "strict" : "liberal";
		} else {
			UNMAPPED(in, s, "%s: not an Options key known to this importer", k);
		}
	}
}

static void conv_sync(struct in *in, const struct stmt *blk, struct out *o)
{
	for (const struct stmt *s = blk; s; s = s->next) {
		const char *k = s->w[0] ? s->w[0] : "{";
		if (strcasecmp(k, "Mode") == 0)
			conv_mode(in, s, o);
		else if (strcasecmp(k, "Multicast") == 0 || strcasecmp(k, "UDP") == 0 ||
			 strcasecmp(k, "TCP") == 0)
			conv_channel(in, s, o);
		else if (strcasecmp(k, "Options") == 0)
			conv_options(in, s->child, o);
		else if (strcasecmp(k, "Checksum") == 0)
			UNMAPPED(in, s, "Checksum: every ctsyncd frame is sealed (AEAD)");
		else
			UNMAPPED(in, s, "%s: not a Sync key known to this importer", k);
	}
}

static const char *proto_name(const char *w)
{
	static const struct { const char *theirs, *ours; } names[] = {
		{ "TCP", "tcp" }, { "UDP", "udp" }, { "ICMP", "icmp" }, { "IPv6-ICMP", "icmpv6" },
		{ "ICMPv6", "icmpv6" }, { "SCTP", "sctp" }, { "DCCP", "dccp" }, { "GRE", "gre" },
		{ "UDPLite", "udplite" }, { "UDP-Lite", "udplite" },
	};
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strcasecmp(w, names[i].theirs) == 0)
			return names[i].ours;
	return NULL;
}

static const char *const all_protos[] = { "tcp", "udp", "icmp", "icmpv6", "sctp", "dccp",
					  "gre", "udplite", NULL };
static const char *const tcp_states[] = { "SYN_SENT", "SYN_RECV", "ESTABLISHED", "FIN_WAIT",
					  "CLOSE_WAIT", "LAST_ACK", "TIME_WAIT", "CLOSE",
					  "SYN_SENT2", NULL };

static const char *state_name(const char *w)
{
	const char *st = strcasecmp(w, "CLOSED") == 0 ? "CLOSE" : w;

	for (int i = 0; tcp_states[i]; i++)
		if (strcasecmp(tcp_states[i], st) == 0)
			return tcp_states[i];
	return NULL;
}

/* An Accept or Ignore list (w, n words) of s over `known` (at most 16,
 * NULL-ended; `ours` names a word as one of them, or NULL): what is left
 * to sync, into out, and its count.  A word not known is named; nothing
 * left is an error. */
static int pick(struct in *in, const struct stmt *s, bool accept, char *const *w, int n,
		const char *const *known, const char *(*ours)(const char *), char **out)
{
	bool want[16];
	int k, nout = 0;

	for (k = 0; known[k]; k++)
		want[k] = !accept;
	for (int i = 0; i < n; i++) {
		const char *name = ours(w[i]);
		for (k = 0; name && known[k] && strcmp(known[k], name); k++)
			;
		if (!name || !known[k])
			UNMAPPED(in, s, "%s %s: not one ctsyncd syncs", s->w[0], w[i]);
		else
			want[k] = accept;
	}
	for (k = 0; known[k]; k++)
		if (want[k])
			out[nout++] = (char *)known[k];
	if (!nout)
		FATAL(in, s->line, "%s: nothing left to sync", s->w[0]);
	return nout;
}

static void conv_filter(struct in *in, const struct stmt *f, struct out *o)
{
	if (f->nw > 2 && strcasecmp(f->w[2], "Kernelspace") == 0)
		UNMAPPED(in, f, "Filter From Kernelspace: ctsyncd filters as it reads the "
			 "events; the filter below is applied, in userspace");
	for (const struct stmt *s = f->child; s; s = s->next) {
		const char *k = s->w[0] ? s->w[0] : "{";
		const char *pol = s->nw > 1 ? s->w[1] : "";
		bool accept = strcasecmp(pol, "Accept") == 0;
		char *w[MAX_LIST];
		int n = s->block ? list_words(s->child, w, MAX_LIST) : 0;
		if (!s->block || (!accept && strcasecmp(pol, "Ignore"))) {
			UNMAPPED(in, s, "%s %s: not a filter this importer knows (Protocol, Address, "
				 "State with Accept or Ignore { ... })", k, pol);
			continue;
		}
		if (strcasecmp(k, "Protocol") == 0) {
			o->nprotos = pick(in, s, accept, w, n, all_protos, proto_name, o->protos);
		} else if (strcasecmp(k, "Address") == 0) {
			if (accept) {
				UNMAPPED(in, s, "Address Accept: ctsyncd cannot sync only some "
					 "addresses; flows of every address but the ignored ones "
					 "are synced (more than conntrackd did, never less)");
				continue;
			}
			for (const struct stmt *a = s->child; a; a = a->next) {
				const char *ak = a->w[0] ? a->w[0] : "";
				const char *av = a->nw > 1 ? a->w[1] : "";
				if ((strcasecmp(ak, "IPv4_address") && strcasecmp(ak, "IPv6_address")) ||
				    !addr_family(av))
					UNMAPPED(in, a, "Address Ignore: \"%s %s\" is not an address "
						 "this importer takes", ak, av);
				else if (o->nignore == MAX_LIST - 8)    /* room for ctsyncd's own */
					UNMAPPED(in, a, "Address Ignore: more than %d addresses; "
						 "use prefixes (\"%s\" not written)", MAX_LIST - 8, av);
				else
					o->ignore[o->nignore++] = strdup(av);
			}
		} else if (strcasecmp(k, "State") == 0) {
			/* "ESTABLISHED CLOSED ... for TCP": the states, then whose */
			bool tcp = n >= 2 && strcasecmp(w[n - 2], "for") == 0 &&
				   strcasecmp(w[n - 1], "TCP") == 0;
			if (!tcp)
				UNMAPPED(in, s, "State: only TCP states are filtered (\"... for TCP\")");
			o->nstates = pick(in, s, accept, w, tcp ? n - 2 : n, tcp_states, state_name,
					  o->states);
			note(in, s->line, "State %s: a TCP flow is synced once it is in one of "
			     "these states, and from then on to its end, whatever its state "
			     "(conntrackd dropped the changes into other states)", pol);
		} else {
			UNMAPPED(in, s, "%s: not a filter this importer knows", k);
		}
	}
}

static void conv_general(struct in *in, const struct stmt *blk, struct out *o)
{
	for (const struct stmt *s = blk; s; s = s->next) {
		const char *k = s->w[0] ? s->w[0] : "{";
		const char *v = s->nw > 1 ? s->w[1] : NULL;
		long n;
		if (strcasecmp(k, "Filter") == 0 && s->block) {
			conv_filter(in, s, o);
		} else if (strcasecmp(k, "Nice") == 0) {
			if (!number(v, -20, 19, &n)) {
				FATAL(in, s->line, "Nice: \"%s\" is not a nice value", v ? v : "");
			} else {
				o->nice = n;
				o->nice_set = true;
			}
		} else if (strcasecmp(k, "NetlinkBufferSize") == 0 ||
			   strcasecmp(k, "NetlinkBufferSizeMaxGrowth") == 0) {
			/* ctsyncd sizes its buffer once: the larger of the two */
			if (!number(v, 1, 1L << 30, &n))
				FATAL(in, s->line, "%s: \"%s\" is not a size", k, v ? v : "");
			else if (n > o->event_buffer)
				o->event_buffer = n;
		} else if (strcasecmp(k, "Syslog") == 0) {
			if (is_on(v))
				o->syslog = true;
			else if (v && !is_onoff(v)) {
				o->syslog = true;
				UNMAPPED(in, s, "Syslog %s: ctsyncd logs to syslog's daemon facility", v);
			}
		} else if (strcasecmp(k, "LogFile") == 0) {
			if (v && strcasecmp(v, "off"))
				UNMAPPED(in, s, "LogFile: ctsyncd logs to syslog or stderr (the "
					 "journal under systemd), not to a file of its own");
		} else if (!no_counterpart(in, s, k, general_none)) {
			UNMAPPED(in, s, "%s: not a General key known to this importer", k);
		}
	}
}

/* ---- writing ------------------------------------------------------------ */

struct opts {
	const char *key;
	const char *peers[MAX_PEERS];
	int npeers;
};

static int cmp_addr(const void *a, const void *b)
{
	unsigned char x[16] = { 0 }, y[16] = { 0 };
	const char *s = *(const char *const *)a, *t = *(const char *const *)b;

	if (inet_pton(AF_INET6, s, x) != 1)
		inet_pton(AF_INET, s, x);
	if (inet_pton(AF_INET6, t, y) != 1)
		inet_pton(AF_INET, t, y);
	return memcmp(x, y, 16);
}

static void write_list(const char *key, char *const *v, int n)
{
	printf("\t%s = [", key);
	for (int i = 0; i < n; i++)
		printf("%s \"%s\"", i ? "," : "", v[i]);
	printf(" ];\n");
}

/* The channels as ctsyncd's transport: the default one (or the first) is
 * the path, a second UDP one the second path.  Node ids by address order:
 * every node converting its own file numbers the cluster alike. */
static int write_out(struct in *in, struct out *o, const struct opts *op)
{
	struct chan *c = NULL, *c2 = NULL;

	for (int i = 0; i < o->nch; i++)
		if (o->ch[i].dflt && !c)
			c = &o->ch[i];
	if (!c && o->nch)
		c = &o->ch[0];
	if (!c) {
		FATAL(in, 1, "no Multicast, UDP or TCP channel in Sync: nothing to sync over");
		return 1;
	}
	for (int i = 0; i < o->nch; i++) {
		struct chan *x = &o->ch[i];
		if (x == c)
			continue;
		if (!c2 && c->type != CH_MCAST && x->type != CH_MCAST && x->family == c->family &&
		    x->port == c->port && x->ifname[0] && x->local[0] && x->dest[0]) {
			c2 = x;
			continue;
		}
		note(in, x->line, "a further channel: ctsyncd takes a second UDP path of the "
		     "same family and port (transport.address2), no more: not written");
		in->unmapped++;
	}
	if (!c->local[0])
		FATAL(in, c->line, "the channel names no local address (IPv4_address of a "
		      "UDP channel, IPv4_interface of a Multicast one): ctsyncd needs it");
	if (!c->ifname[0])
		FATAL(in, c->line, "the channel names no Interface: ctsyncd needs it");
	const char *addrs[MAX_PEERS + 1];
	int n = 0;
	if (c->local[0])
		addrs[n++] = c->local;
	if (c->type == CH_MCAST) {
		if (!op->npeers)
			FATAL(in, c->line, "a Multicast channel names no peers: give every other "
			      "node's address on the link with --peer ADDRESS");
		for (int i = 0; i < op->npeers; i++)
			addrs[n++] = op->peers[i];
	} else if (c->dest[0]) {
		addrs[n++] = c->dest;
		if (op->npeers)
			note(in, c->line, "--peer: this channel names its peer "
			     "(its destination address); --peer is not used");
	} else {
		FATAL(in, c->line, "the channel names no destination (IPv4_Destination_Address)");
	}
	if (in->fatal)
		return 1;
	qsort(addrs, (size_t)n, sizeof(addrs[0]), cmp_addr);
	int self = 0;
	for (int i = 0; i < n; i++)
		if (strcmp(addrs[i], c->local) == 0)
			self = i + 1;

	printf("# ctsyncd.conf converted from %s by ctsyncctl import-conntrackd.\n"
	       "# Node ids follow the sync addresses' order: every node's converted file\n"
	       "# numbers the cluster alike.\n", in->path);
	printf("node = { id = %d; };\n", self);
	printf("sync = {\n\trole = \"backup\";\t# keepalived or pacemaker promotes (docs/MIGRATING.md)\n");
	printf("\tinject = \"%s\";\n", o->inject ? o->inject : "on-promote");
	if (o->tcp_window)
		printf("\ttcp_window = \"%s\";\n", o->tcp_window);
	printf("};\ntransport = {\n\ttype = \"%s\";\n\tinterface = \"%s\";\n\taddress = \"%s\";\n",
	       c->type == CH_MCAST ? "multicast" : "udp", c->ifname, c->local);
	printf("\tport = %ld;\n", c->port);
	if (c->type == CH_MCAST)
		printf("\tgroup = \"%s\";\n", c->group);
	if (c->rcvbuf)
		printf("\trcvbuf = %ld;\n", c->rcvbuf);
	if (c->sndbuf)
		printf("\tsndbuf = %ld;\n", c->sndbuf);
	if (c2)
		printf("\tinterface2 = \"%s\";\n\taddress2 = \"%s\";\n", c2->ifname, c2->local);
	printf("\tpeers = (");
	int k = 0;
	for (int i = 0; i < n; i++) {
		if (i + 1 == self)
			continue;
		printf("%s\n\t\t{ id = %d; address = \"%s\";", k++ ? "," : "", i + 1, addrs[i]);
		if (c2 && strcmp(addrs[i], c->dest) == 0)
			printf(" address2 = \"%s\";", c2->dest);
		printf(" }");
	}
	printf("\n\t);\n};\n");

	printf("filter = {\n");
	/* ctsyncd's default ignores loopback; a list replaces it */
	char *ign[MAX_LIST + 2];
	int ni = 0;
	ign[ni++] = (char *)"127.0.0.0/8";
	ign[ni++] = (char *)"::1/128";
	for (int i = 0; i < o->nignore; i++) {
		/* loopback is in already; the rest once each */
		bool dup = !strcmp(o->ignore[i], "127.0.0.1") || !strcmp(o->ignore[i], "::1");
		for (int j = 0; j < ni && !dup; j++)
			dup = strcmp(ign[j], o->ignore[i]) == 0;
		if (!dup)
			ign[ni++] = o->ignore[i];
	}
	write_list("ignore_addresses", ign, ni);
	if (o->nprotos > 0)
		write_list("protocols", o->protos, o->nprotos);
	if (o->nstates > 0)
		write_list("tcp_states", o->states, o->nstates);
	printf("};\n");
	if (o->exp >= 0) {
		printf("expectations = {\n\tsync = %s;\n", o->exp ? "true" : "false");
		if (o->nhelpers)
			write_list("helpers", o->helpers, o->nhelpers);
		printf("};\n");
	}
	if (o->event_buffer) {
		long eb = o->event_buffer < 65536 ? 65536 : o->event_buffer;
		printf("kernel = { event_buffer = %ld; };\n", eb);
	}
	if (o->nice_set)
		printf("daemon = { nice = %ld; };\n", o->nice);
	printf("log = { target = \"%s\"; };\n", o->syslog ? "syslog" : "stderr");
	printf("# conntrackd's sync link had no key; ctsyncd seals every frame.\n"
	       "security = { key_file = \"%s\"; };\n", op->key);
	fprintf(stderr, "%s: a sync-link key is needed: conntrackd's link had none.  Make it once "
		"(ctsyncctl keygen > %s) and copy that file, mode 0600, to every node.\n",
		in->path, op->key);
	return 0;
}

static void usage_import(FILE *f)
{
	fprintf(f, "usage: ctsyncctl import-conntrackd [--peer ADDRESS]... [--key FILE] FILE\n"
		"  writes the ctsyncd.conf equivalent to a conntrackd.conf to stdout; every key\n"
		"  without a counterpart is named on stderr with why.\n"
		"  --peer ADDRESS  another node's sync address (a Multicast channel names none)\n"
		"  --key FILE      the sync-link key file to name (/etc/ctsyncd/key)\n");
}

int import_conntrackd(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "peer", required_argument, NULL, 'p' },
		{ "key", required_argument, NULL, 'k' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	struct opts op = { .key = "/etc/ctsyncd/key" };
	int c;

	optind = 1;
	while ((c = getopt_long(argc, argv, "+h", lo, NULL)) != -1) {
		switch (c) {
		case 'p':
			if (!addr_family(optarg) || strchr(optarg, '/')) {
				fprintf(stderr, "ctsyncctl: --peer wants an address, got '%s'\n", optarg);
				return 2;
			}
			if (op.npeers == MAX_PEERS) {
				fprintf(stderr, "ctsyncctl: at most %d --peer\n", MAX_PEERS);
				return 2;
			}
			op.peers[op.npeers++] = optarg;
			break;
		case 'k': op.key = optarg; break;
		case 'h': usage_import(stdout); return 0;
		default: usage_import(stderr); return 2;
		}
	}
	if (optind + 1 != argc) {
		usage_import(stderr);
		return 2;
	}
	struct in in = { .path = argv[optind], .line = 1 };
	in.f = fopen(in.path, "r");
	if (!in.f) {
		fprintf(stderr, "ctsyncctl: %s: %s\n", in.path, strerror(errno));
		return 1;
	}
	struct stmt *top = parse(&in, 0, 0);
	fclose(in.f);
	struct out o = { .exp = -1, .nprotos = -1 };
	bool sync = false;
	for (const struct stmt *s = in.stop ? NULL : top; s; s = s->next) {
		const char *k = s->w[0] ? s->w[0] : "{";
		if (strcasecmp(k, "Sync") == 0 && s->block) {
			sync = true;
			conv_sync(&in, s->child, &o);
		} else if (strcasecmp(k, "General") == 0 && s->block) {
			conv_general(&in, s->child, &o);
		} else if (strcasecmp(k, "Stats") == 0) {
			UNMAPPED(&in, s, "Stats: ctsyncd has no statistics mode (conntrack -S and "
				 "conntrack -E give what it logged)");
		} else {
			UNMAPPED(&in, s, "%s: not a section of conntrackd.conf", k);
		}
	}
	if (!sync && !in.fatal && !in.stop)
		FATAL(&in, 1, "no Sync section: a statistics-only conntrackd has nothing "
		      "ctsyncd would do");
	int rc = in.fatal ? 1 : write_out(&in, &o, &op);
	if (rc == 0)
		fprintf(stderr, "%s: converted; %d key%s without a counterpart (above)\n", in.path,
			in.unmapped, in.unmapped == 1 ? "" : "s");
	else
		fprintf(stderr, "%s: not converted (%d error%s above)\n", in.path, in.fatal,
			in.fatal == 1 ? "" : "s");
	stmt_free(top);
	for (int i = 0; i < o.nhelpers; i++)
		free(o.helpers[i]);
	for (int i = 0; i < o.nignore; i++)
		free(o.ignore[i]);
	return rc;
}
