/* control.c — the control sockets (control_proto.h) and the metrics
 * listener: connections, requests, dispatch.  What is answered is rendered
 * by render.c and metrics.c. */
#include "daemon/control.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>

#include "daemon/control_proto.h"
#include "daemon/metrics.h"
#include "daemon/render.h"
#include "util/log.h"
#include "util/strbuf.h"

struct control {
	struct ev_loop *loop;
	int fd;
	ev_io accept_w;
	struct control_ctx ctx;
	bool readonly;
	bool http;                      /* the metrics listener, not a control socket */
	unsigned nclients;
	char path[108];
};

/* One connection: a request read, then its response written (head, then
 * body, straight from the rendered buffer), then closed.  The timer runs
 * throughout and restarts whenever the client makes progress: one that
 * stalls, reading or writing, is dropped with what was rendered for it. */
struct client {
	struct control *c;
	int fd;
	ev_io io;
	ev_timer timer;
	uint8_t in[CTL_HDR_LEN + CTL_MAX_ARG];
	size_t in_len;
	char head[256];
	size_t hlen;
	struct strbuf body;
	size_t sent;                    /* of head and body together */
};

static int handle(struct control *c, const struct ctl_hdr *h, const char *arg, struct strbuf *o)
{
	bool json = h->flags & CTL_F_JSON;
	int n;

	if (c->readonly && h->code != CTL_STATUS && h->code != CTL_STATS &&
	    h->code != CTL_IN_SYNC && h->code != CTL_METRICS) {
		strbuf_printf(o, "permission denied: this control socket is read-only\n");
		return CTL_FAILED;
	}
	switch (h->code) {
	case CTL_STATUS:
		render_status(&c->ctx, o, json);
		return CTL_OK;
	case CTL_STATS:
		render_stats(&c->ctx, o, json);
		return CTL_OK;
	case CTL_METRICS:
		metrics_render(&c->ctx, o);
		return CTL_OK;
	case CTL_DUMP:
		return render_dump(&c->ctx, o, json, arg);
	case CTL_PROMOTE:
		n = repl_promote(c->ctx.repl);
		if (repl_active_active(c->ctx.repl))
			strbuf_printf(o, json ? "{\"result\":\"promoted\",\"flows\":%d}\n" :
			     "promoted: holds buckets once in sync (active-active)\n", n);
		else
			strbuf_printf(o, json ? "{\"result\":\"promoted\",\"flows\":%d}\n" :
			     "promoted: now primary, took ownership of %d flows\n", n);
		return CTL_OK;
	case CTL_DEMOTE:
		repl_demote(c->ctx.repl);
		strbuf_printf(o, json ? "{\"result\":\"demoted\"}\n" : repl_active_active(c->ctx.repl) ?
		     "demoted: drained, holds no bucket (active-active)\n" : "demoted: now backup\n");
		return CTL_OK;
	case CTL_COMMIT:
		n = repl_commit(c->ctx.repl);
		strbuf_printf(o, json ? "{\"result\":\"committed\",\"flows\":%d}\n" :
		     "committed %d flows to the kernel\n", n);
		return CTL_OK;
	case CTL_IN_SYNC: {
		struct repl_status st;
		repl_status(c->ctx.repl, &st);
		strbuf_printf(o, json ? "{\"in_sync\":%s}\n" : "in sync: %s\n", st.in_sync ?
		     (json ? "true" : "yes") : (json ? "false" : "no"));
		return st.in_sync ? CTL_OK : CTL_FAILED;
	}
	case CTL_RESYNC:
		n = repl_resync(c->ctx.repl);
		if (n < 0) {
			strbuf_printf(o, "resync failed: %s\n", strerror(-n));
			return CTL_FAILED;
		}
		strbuf_printf(o, json ? "{\"result\":\"resync\",\"flows\":%d}\n" :
		     "resync started: kernel table re-read (%d flows held), peers asked for theirs\n", n);
		return CTL_OK;
	case CTL_RELOAD: {
		char msg[1024] = "";
		n = c->ctx.reload ? c->ctx.reload(c->ctx.arg, msg, sizeof(msg)) : -ENOTSUP;
		if (json) {
			strbuf_printf(o, "{\"result\":\"%s\",\"message\":", n < 0 ? "failed" : "reloaded");
			strbuf_json(o, msg);
			strbuf_printf(o, "}\n");
		} else {
			strbuf_printf(o, "%s%s\n", n < 0 ? "reload failed: " : "", msg);
		}
		return n < 0 ? CTL_FAILED : CTL_OK;
	}
	}
	strbuf_printf(o, "unknown command %u\n", h->code);
	return CTL_BADREQ;
}

static int process(struct control *c, const uint8_t *in, size_t len, struct strbuf *body)
{
	struct ctl_hdr h;
	char arg[CTL_MAX_ARG + 1];

	if (len < CTL_HDR_LEN)
		return -EAGAIN;
	memcpy(&h, in, sizeof(h));
	if (h.magic != CTL_MAGIC || h.version != CTL_VERSION || h.len > CTL_MAX_ARG) {
		strbuf_printf(body, "bad request (ctsyncctl and ctsyncd versions differ?)\n");
		return CTL_BADREQ;
	}
	if (len < CTL_HDR_LEN + h.len)
		return -EAGAIN;
	memcpy(arg, in + CTL_HDR_LEN, h.len);
	arg[h.len] = 0;
	if (memchr(arg, 0, h.len)) {
		strbuf_printf(body, "bad request: NUL in the argument\n");
		return CTL_BADREQ;
	}
	return handle(c, &h, arg, body);
}

int control_process(struct control *c, const uint8_t *in, size_t len, char **body,
		    size_t *body_len)
{
	struct strbuf o = { 0 };
	int status = process(c, in, len, &o);

	*body = o.p;
	*body_len = o.oom ? 0 : o.len;
	return status;
}

struct control *control_new_detached(const struct control_ctx *ctx, bool readonly)
{
	struct control *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->fd = -1;
	c->ctx = *ctx;
	c->readonly = readonly;
	return c;
}

unsigned control_clients(const struct control *c)
{
	return c->nclients;
}

/* ---- connections ---------------------------------------------------------- */

static void client_free(struct client *cl)
{
	ev_io_stop(cl->c->loop, &cl->io);
	ev_timer_stop(cl->c->loop, &cl->timer);
	close(cl->fd);
	strbuf_free(&cl->body);
	cl->c->nclients--;
	free(cl);
}

static double timeout_of(const struct control *c)
{
	return c->ctx.client_timeout > 0 ? c->ctx.client_timeout : CONTROL_CLIENT_TIMEOUT;
}

static void client_write(struct ev_loop *loop, ev_io *w, int revents)
{
	struct client *cl = w->data;
	size_t blen = cl->body.oom ? 0 : cl->body.len, total = cl->hlen + blen;

	while (cl->sent < total) {
		struct iovec iov[2];
		int n = 0;
		if (cl->sent < cl->hlen)
			iov[n++] = (struct iovec){ cl->head + cl->sent, cl->hlen - cl->sent };
		size_t boff = cl->sent > cl->hlen ? cl->sent - cl->hlen : 0;
		if (blen > boff)
			iov[n++] = (struct iovec){ cl->body.p + boff, blen - boff };
		struct msghdr m = { .msg_iov = iov, .msg_iovlen = (size_t)n };
		ssize_t k = sendmsg(cl->fd, &m, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (k < 0) {
			if (errno == EAGAIN || errno == EINTR) {
				ev_timer_again(loop, &cl->timer);       /* it read: progress */
				return;
			}
			break;
		}
		cl->sent += (size_t)k;
	}
	client_free(cl);
}

/* The response is in cl->head and cl->body: write it as the client reads. */
static void send_out(struct client *cl)
{
	ev_io_stop(cl->c->loop, &cl->io);
	ev_io_init(&cl->io, client_write, cl->fd, EV_WRITE);
	cl->io.data = cl;
	ev_io_start(cl->c->loop, &cl->io);
	/* the render may have taken a while (a large dump): the client's time
	 * counts from now, not from the loop's last look at the clock */
	ev_now_update(cl->c->loop);
	ev_timer_again(cl->c->loop, &cl->timer);
}

/* The metrics listener: GET /metrics (or /) answered, anything else 404;
 * -EAGAIN until the request head is complete. */
static int http_process(struct control *c, const uint8_t *in, size_t len, struct strbuf *body,
			char *head, size_t hcap)
{
	const char *code = "200 OK";

	if (!memmem(in, len, "\r\n\r\n", 4) && !memmem(in, len, "\n\n", 2)) {
		if (len < CTL_HDR_LEN + CTL_MAX_ARG)
			return -EAGAIN;
		code = "431 Request Header Fields Too Large";
	} else if ((len >= 13 && memcmp(in, "GET /metrics ", 13) == 0) ||
		   (len >= 6 && memcmp(in, "GET / ", 6) == 0)) {
		metrics_render(&c->ctx, body);
	} else if (len >= 4 && memcmp(in, "GET ", 4) == 0) {
		code = "404 Not Found";
		strbuf_printf(body, "ctsyncd: metrics are at /metrics\n");
	} else {
		code = "405 Method Not Allowed";
	}
	snprintf(head, hcap, "HTTP/1.0 %s\r\nContent-Type: text/plain; version=0.0.4; "
		 "charset=utf-8\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n",
		 code, body->oom ? 0 : body->len);
	return 0;
}

static void client_read(struct ev_loop *loop, ev_io *w, int revents)
{
	struct client *cl = w->data;
	ssize_t n = recv(cl->fd, cl->in + cl->in_len, sizeof(cl->in) - cl->in_len, MSG_DONTWAIT);

	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		client_free(cl);
		return;
	}
	cl->in_len += (size_t)n;
	if (cl->c->http) {
		if (http_process(cl->c, cl->in, cl->in_len, &cl->body, cl->head,
				 sizeof(cl->head)) == -EAGAIN)
			return;
		cl->hlen = strlen(cl->head);
	} else {
		int status = process(cl->c, cl->in, cl->in_len, &cl->body);
		if (status == -EAGAIN)
			return;
		struct ctl_hdr h = { CTL_MAGIC, CTL_VERSION, (uint16_t)status, 0,
				     (uint32_t)(cl->body.oom ? 0 : cl->body.len) };
		memcpy(cl->head, &h, sizeof(h));
		cl->hlen = sizeof(h);
	}
	send_out(cl);
}

static void client_timeout(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct client *cl = w->data;

	log_limited(LOG_LVL_WARN, "control: dropped a client silent for %.1f s (%zu of %zu "
		    "bytes of its response read)", timeout_of(cl->c), cl->sent,
		    cl->hlen + cl->body.len);
	client_free(cl);
}

static void on_accept(struct ev_loop *loop, ev_io *w, int revents)
{
	struct control *c = w->data;
	int fd = accept4(c->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

	if (fd < 0)
		return;
	if (c->nclients >= CONTROL_MAX_CLIENTS) {
		log_limited(LOG_LVL_WARN, "control: %u clients already; a connection refused",
			    c->nclients);
		close(fd);
		return;
	}
	struct client *cl = calloc(1, sizeof(*cl));
	if (!cl) {
		close(fd);
		return;
	}
	cl->c = c;
	cl->fd = fd;
	c->nclients++;
	ev_io_init(&cl->io, client_read, fd, EV_READ);
	cl->io.data = cl;
	ev_io_start(loop, &cl->io);
	ev_init(&cl->timer, client_timeout);
	cl->timer.repeat = timeout_of(c);
	cl->timer.data = cl;
	ev_timer_again(loop, &cl->timer);
}

/* The listening socket is ready: accept connections on the loop. */
static void accept_start(struct control *c, struct control **out)
{
	ev_io_init(&c->accept_w, on_accept, c->fd, EV_READ);
	c->accept_w.data = c;
	ev_io_start(c->loop, &c->accept_w);
	*out = c;
}

int control_open(struct control **out, struct ev_loop *loop, const char *path, long gid,
		 bool readonly, const struct control_ctx *ctx)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	struct control *c;
	int err;

	if (strlen(path) >= sizeof(sun.sun_path))
		return -ENAMETOOLONG;
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->loop = loop;
	c->ctx = *ctx;
	c->readonly = readonly;
	snprintf(c->path, sizeof(c->path), "%s", path);
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);

	/* Create the directory of the socket if it is missing (one level). */
	char dir[108];
	snprintf(dir, sizeof(dir), "%s", path);
	char *slash = strrchr(dir, '/');
	if (slash && slash != dir) {
		*slash = 0;
		mkdir(dir, 0750);
	}
	c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->fd < 0) {
		err = -errno;
		free(c);
		return err;
	}
	/* A stale socket from a previous run: only remove it if nobody answers. */
	if (connect(c->fd, (struct sockaddr *)&sun, sizeof(sun)) == 0) {
		close(c->fd);
		free(c);
		return -EADDRINUSE;
	}
	close(c->fd);
	c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	unlink(path);
	mode_t old = umask(0117);
	if (c->fd < 0 || bind(c->fd, (struct sockaddr *)&sun, sizeof(sun)) < 0 ||
	    listen(c->fd, 16) < 0) {
		err = -errno;
		umask(old);
		if (c->fd >= 0)
			close(c->fd);
		free(c);
		return err;
	}
	umask(old);
	if (gid >= 0 && chown(path, (uid_t)-1, (gid_t)gid) < 0) {
		err = -errno;
		close(c->fd);
		unlink(path);
		free(c);
		return err;
	}
	accept_start(c, out);
	return 0;
}

int control_open_http(struct control **out, struct ev_loop *loop,
		      const struct sockaddr_storage *addr, const struct control_ctx *ctx)
{
	struct control *c = calloc(1, sizeof(*c));
	int one = 1, err;

	if (!c)
		return -ENOMEM;
	c->loop = loop;
	c->ctx = *ctx;
	c->http = true;
	c->readonly = true;
	c->fd = socket(addr->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->fd < 0 || setsockopt(c->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    bind(c->fd, (const struct sockaddr *)addr, addr->ss_family == AF_INET6 ?
		 sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in)) < 0 ||
	    listen(c->fd, 16) < 0) {
		err = -errno;
		if (c->fd >= 0)
			close(c->fd);
		free(c);
		return err;
	}
	accept_start(c, out);
	return 0;
}

void control_close(struct control *c)
{
	if (!c)
		return;
	if (c->fd >= 0) {
		ev_io_stop(c->loop, &c->accept_w);
		close(c->fd);
		if (!c->http)
			unlink(c->path);
	}
	free(c);
}
