/* The control socket and what it renders: every counter of every layer in
 * `stats`, `stats --json` and the metrics; well-formed JSON whatever a peer
 * names its helper; a client that stops reading is dropped while others
 * are served; at most CONTROL_MAX_CLIENTS at once; no dump on the
 * read-only socket. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "daemon/control.h"
#include "daemon/control_proto.h"
#include "json_check.h"
#include "sim.h"
#include "util/log.h"

/* One request through control_process: the status, the body in *out. */
static int ask(struct control *c, uint16_t code, bool json, const char *arg, char **out,
	       size_t *len)
{
	uint8_t req[CTL_HDR_LEN + 64];
	struct ctl_hdr h = { CTL_MAGIC, CTL_VERSION, code, json ? CTL_F_JSON : 0,
			     (uint32_t)strlen(arg) };

	memcpy(req, &h, sizeof(h));
	memcpy(req + CTL_HDR_LEN, arg, h.len);
	return control_process(c, req, CTL_HDR_LEN + h.len, out, len);
}

static bool has(const char *body, size_t len, const char *fmt, const char *name)
{
	char want[160];
	snprintf(want, sizeof(want), fmt, name);
	return memmem(body, len, want, strlen(want)) != NULL;
}

/* Every name of every X-macro list, found by the test itself (not by the
 * renderer's tables), in all three outputs. */
static const char *const global_names[] = {
#define ONE(f) #f,
	REPL_STATS(ONE)
#undef ONE
#define ONE(f, name) name,
	CTNL_STATS(ONE) TRANSPORT_STATS(ONE) SEAL_STATS(ONE) NFQ_STATS(ONE)
#undef ONE
};
static const char *const peer_names[] = {
#define ONE(f) #f,
	REPL_PEER_COUNTERS(ONE)
#undef ONE
};

static void test_every_counter_in_every_output(void **state)
{
	sim_start(0, true, true);
	sim_start(1, false, true);
	sim_run(500);
	struct control_ctx cc = { .repl = sim.n[0].r };
	struct control *c = control_new_detached(&cc, false);
	char *text, *json, *metrics;
	size_t tl, jl, ml;

	assert_non_null(c);
	assert_int_equal(ask(c, CTL_STATS, false, "", &text, &tl), CTL_OK);
	assert_int_equal(ask(c, CTL_STATS, true, "", &json, &jl), CTL_OK);
	assert_int_equal(ask(c, CTL_METRICS, false, "", &metrics, &ml), CTL_OK);
	assert_true(json_check(json, jl));
	size_t ng = sizeof(global_names) / sizeof(global_names[0]);
	assert_true(ng > 100);
	for (size_t i = 0; i < ng; i++) {
		const char *n = global_names[i];
		if (!has(text, tl, "\n%s ", n) && !(strncmp(text, n, strlen(n)) == 0))
			fail_msg("stats lacks %s", n);
		if (!has(json, jl, "\"%s\":", n))
			fail_msg("stats --json lacks %s", n);
		if (!has(metrics, ml, "\nctsync_%s_total ", n))
			fail_msg("metrics lack ctsync_%s_total", n);
	}
	for (size_t i = 0; i < sizeof(peer_names) / sizeof(peer_names[0]); i++) {
		const char *n = peer_names[i];
		char t[96];
		snprintf(t, sizeof(t), "\npeer.2.%s ", n);
		assert_non_null(memmem(text, tl, t, strlen(t)));
		if (!has(metrics, ml, "\nctsync_peer_%s_total{peer=\"2\"} ", n))
			fail_msg("metrics lack ctsync_peer_%s_total", n);
	}
	free(text);
	free(json);
	free(metrics);
	control_close(c);
}

/* An expectation whose helper name (peer-supplied: the decoder refuses
 * only a NUL) holds a quote, a backslash, control bytes and bytes that are
 * not UTF-8, replicated from node 1 to node 2: node 2's JSON stays valid. */
static void test_hostile_names(void **state)
{
	static const char hostile[CT_HELPER_LEN] = "f\"t\\p\n\x01\x7f\xff\xc3<x>";

	sim.exp_sync = true;
	sim_start(0, true, true);
	sim_start(1, false, true);
	sim_run(500);
	struct ct m = sim_flow(1);
	memcpy(m.helper, hostile, sizeof(hostile));
	m.has |= CT_HAS_HELPER;
	sim_kernel_new(0, &m);
	struct exp e = { .l3 = AF_INET, .l4 = IPPROTO_TCP, .master_l4 = IPPROTO_TCP,
			 .has = EXP_HAS_MASK | EXP_HAS_HELPER, .timeout = 300 };
	e.master = m.orig;
	e.tuple.src = m.orig.src;
	e.tuple.dst = m.orig.dst;
	e.tuple.dport = htons(40000);
	memset(&e.mask.src, 0xff, sizeof(e.mask.src));
	memset(&e.mask.dst, 0xff, sizeof(e.mask.dst));
	e.mask.dport = 0xffff;
	memcpy(e.helper, hostile, sizeof(hostile));
	repl_kernel_exp_event(sim.n[0].r, CTNL_EV_NEW, &e, false);
	sim_run(500);
	struct repl_status st;
	repl_status(sim.n[1].r, &st);
	assert_int_equal(st.exp_total, 1);      /* it reached node 2 */

	struct control_ctx cc = { .repl = sim.n[1].r };
	struct control *c = control_new_detached(&cc, false);
	char *out;
	size_t len;
	assert_int_equal(ask(c, CTL_DUMP, true, "", &out, &len), CTL_OK);
	assert_true(json_check(out, len));
	static const char escaped[] = "f\\\"t\\\\p\\u000a\\u0001\\u007f\\u00ff";
	assert_non_null(memmem(out, len, escaped, strlen(escaped)));
	free(out);
	assert_int_equal(ask(c, CTL_DUMP, false, "", &out, &len), CTL_OK);
	for (size_t i = 0; i < len; i++)
		assert_true(out[i] == '\n' || (out[i] >= 0x20 && out[i] < 0x7f));
	free(out);
	uint16_t codes[] = { CTL_STATUS, CTL_STATS, CTL_DUMP, CTL_IN_SYNC };
	for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
		ask(c, codes[i], true, "", &out, &len);
		if (!json_check(out, len))
			fail_msg("command %u: not JSON: %.*s", codes[i], (int)len, out);
		free(out);
	}
	/* an argument of the operator's echoed back is escaped too */
	assert_int_equal(ask(c, CTL_DUMP, false, "peer 9\x1b[2J", &out, &len), CTL_FAILED);
	assert_null(memchr(out, 0x1b, len));
	free(out);
	control_close(c);
}

static void test_readonly_refuses_dump(void **state)
{
	sim_start(0, true, true);
	sim_start(1, false, true);
	sim_run(300);
	struct control_ctx cc = { .repl = sim.n[0].r };
	struct control *ro = control_new_detached(&cc, true);
	char *out;
	size_t len;

	assert_int_equal(ask(ro, CTL_DUMP, false, "", &out, &len), CTL_FAILED);
	assert_non_null(memmem(out, len, "read-only", 9));
	free(out);
	assert_int_equal(ask(ro, CTL_STATUS, false, "", &out, &len), CTL_OK);
	free(out);
	control_close(ro);
}

/* ---- a real socket on a real loop ---------------------------------------- */

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int connect_to(const char *path)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
	assert_true(fd >= 0);
	assert_int_equal(connect(fd, (struct sockaddr *)&sun, sizeof(sun)), 0);
	return fd;
}

static void send_req(int fd, uint16_t code)
{
	struct ctl_hdr h = { CTL_MAGIC, CTL_VERSION, code, 0, 0 };
	assert_int_equal(send(fd, &h, sizeof(h), MSG_NOSIGNAL), (ssize_t)sizeof(h));
}

/* Run the loop until fd has a whole response (header and body) or `secs`
 * pass; its status, or -1. */
static int await_response(struct ev_loop *loop, int fd, double secs)
{
	uint8_t buf[65536];
	size_t got = 0, want = CTL_HDR_LEN;
	struct ctl_hdr h;
	double end = now_s() + secs;

	fcntl(fd, F_SETFL, O_NONBLOCK);
	while (now_s() < end) {
		ev_run(loop, EVRUN_NOWAIT);
		ssize_t n = recv(fd, buf, sizeof(buf), 0);
		if (n > 0) {
			if (got < CTL_HDR_LEN)
				memcpy((uint8_t *)&h + got, buf,
				       (size_t)n < CTL_HDR_LEN - got ? (size_t)n : CTL_HDR_LEN - got);
			got += (size_t)n;
			if (got >= CTL_HDR_LEN)
				want = CTL_HDR_LEN + h.len;
			if (got >= want)
				return h.code;
		} else if (n == 0) {
			return -1;
		}
	}
	return -1;
}

static void test_slow_reader_and_client_cap(void **state)
{
	char path[64];
	struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);

	/* a large table: a rendered dump far beyond any socket buffer */
	sim_start(0, true, true);
	sim_start(1, false, true);
	sim_run(300);
	for (uint32_t i = 0; i < 60000; i++) {
		struct ct c = sim_flow(i);
		c.orig.src.ip4 = htonl(0xc6120000u | (i >> 16));        /* 198.18.x.y */
		repl_kernel_event(sim.n[0].r, CTNL_EV_NEW, &c, false);
	}
	snprintf(path, sizeof(path), "/tmp/ctsync-test-control-%d.sock", (int)getpid());
	struct control_ctx cc = { .repl = sim.n[0].r, .client_timeout = 0.3 };
	struct control *c;
	assert_int_equal(control_open(&c, loop, path, -1, false, &cc), 0);

	/* A asks for the dump and never reads it */
	int a = connect_to(path);
	send_req(a, CTL_DUMP);
	for (int i = 0; i < 50; i++)
		ev_run(loop, EVRUN_NOWAIT);
	assert_int_equal(control_clients(c), 1);
	/* B is answered meanwhile */
	double t0 = now_s();
	int b = connect_to(path);
	send_req(b, CTL_STATUS);
	assert_int_equal(await_response(loop, b, 2.0), CTL_OK);
	print_message("status answered in %.1f ms while a client sat on a dump\n",
		      (now_s() - t0) * 1000);
	close(b);
	/* A stalls past the timeout: dropped, and what was rendered for it */
	double end = now_s() + 2.0;
	while (control_clients(c) && now_s() < end)
		ev_run(loop, EVRUN_NOWAIT);
	assert_int_equal(control_clients(c), 0);
	print_message("the stalled client dropped after %.2f s\n", now_s() - t0);
	close(a);

	/* the cap: CONTROL_MAX_CLIENTS held open, the next one closed at once */
	int fds[CONTROL_MAX_CLIENTS + 1];
	for (int i = 0; i <= CONTROL_MAX_CLIENTS; i++) {
		fds[i] = connect_to(path);
		for (int k = 0; k < 5; k++)
			ev_run(loop, EVRUN_NOWAIT);
	}
	assert_int_equal(control_clients(c), CONTROL_MAX_CLIENTS);
	char x;
	fcntl(fds[CONTROL_MAX_CLIENTS], F_SETFL, O_NONBLOCK);
	assert_int_equal(recv(fds[CONTROL_MAX_CLIENTS], &x, 1, 0), 0);  /* closed */
	for (int i = 0; i <= CONTROL_MAX_CLIENTS; i++)
		close(fds[i]);
	end = now_s() + 2.0;
	while (control_clients(c) && now_s() < end)
		ev_run(loop, EVRUN_NOWAIT);
	assert_int_equal(control_clients(c), 0);
	control_close(c);
	ev_loop_destroy(loop);
}

int main(void)
{
	log_init(LOG_LVL_WARN, false, "test");
	const struct CMUnitTest tests[] = {
		SIM_TEST(test_every_counter_in_every_output),
		SIM_TEST(test_hostile_names),
		SIM_TEST(test_readonly_refuses_dump),
		SIM_TEST(test_slow_reader_and_client_cap),
	};
	return cmocka_run_group_tests_name("control", tests, NULL, NULL);
}
