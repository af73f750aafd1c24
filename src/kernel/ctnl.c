/* ctnl.c — ctnetlink sockets, events and dumps (see ctnl.h); injection is
 * in ctnl_inject.c, the message codec in ctnl_msg.c. */
#include "kernel/ctnl.h"
#include "kernel/ctnl_int.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <libmnl/libmnl.h>
#include <linux/filter.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_conntrack.h>

/* ---- sockets ----------------------------------------------------------- */

static struct mnl_socket *open_sock(unsigned groups)
{
	struct mnl_socket *s = mnl_socket_open2(NETLINK_NETFILTER, SOCK_CLOEXEC);
	if (!s)
		return NULL;
	if (mnl_socket_bind(s, groups, MNL_SOCKET_AUTOPID) < 0) {
		mnl_socket_close(s);
		return NULL;
	}
	return s;
}

int ctnl_open(struct ctnl **out, const struct ctnl_config *cfg)
{
	struct ctnl *nl = calloc(1, sizeof(*nl));
	int err = -ENOMEM;

	if (!nl)
		return -ENOMEM;
	nl->cfg = *cfg;
	nl->nbatch = 1;
	pthread_mutex_init(&nl->mu, NULL);
	pthread_cond_init(&nl->cv_work, NULL);
	pthread_cond_init(&nl->cv_done, NULL);
	for (unsigned i = 0; i < NBATCH; i++)
		/* zeroed: libmnl leaves attribute padding as it finds it */
		if (!(nl->bt[i].buf = calloc(BATCH_MAX, CTNL_MSG_MAX)))
			goto fail;
	nl->ev = open_sock((1u << (NFNLGRP_CONNTRACK_NEW - 1)) |
			   (1u << (NFNLGRP_CONNTRACK_UPDATE - 1)) |
			   (1u << (NFNLGRP_CONNTRACK_DESTROY - 1)) |
			   (cfg->on_exp ? (1u << (NFNLGRP_CONNTRACK_EXP_NEW - 1)) |
					  (1u << (NFNLGRP_CONNTRACK_EXP_DESTROY - 1)) : 0));
	nl->dump = open_sock(0);
	nl->inj = open_sock(0);
	nl->get = open_sock(0);
	if (!nl->ev || !nl->dump || !nl->inj || !nl->get) {
		err = errno ? -errno : -EIO;
		goto fail;
	}
	int fd = mnl_socket_get_fd(nl->ev);
	int sz = (int)(cfg->event_rcvbuf > (size_t)1 << 30 ? (size_t)1 << 30 : cfg->event_rcvbuf);
	if (sz > 0 && setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &sz, sizeof(sz)) < 0)
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz));
	int one = 1;
	setsockopt(mnl_socket_get_fd(nl->inj), SOL_NETLINK, NETLINK_EXT_ACK, &one, sizeof(one));
	int isz = 4 << 20;
	setsockopt(mnl_socket_get_fd(nl->inj), SOL_SOCKET, SO_RCVBUFFORCE, &isz, sizeof(isz));
	nl->inj_portid = mnl_socket_get_portid(nl->inj);
	/* Drop the events our own injections cause in the kernel, before they
	 * take room in the event socket's buffer: committing a million flows
	 * must not overrun our own listener.  (deliver() filters them too, in
	 * case the filter cannot be attached.)  BPF loads words big-endian,
	 * hence htonl() of the host-order nlmsg_pid. */
	struct sock_filter code[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct nlmsghdr, nlmsg_pid)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, htonl(nl->inj_portid), 0, 1),
		BPF_STMT(BPF_RET | BPF_K, 0),
		BPF_STMT(BPF_RET | BPF_K, 0xffffffff),
	};
	struct sock_fprog prog = { .len = sizeof(code) / sizeof(code[0]), .filter = code };
	nl->own_filtered = setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof(prog)) == 0;
	nl->seq = (uint32_t)time(NULL);
	*out = nl;
	return 0;
fail:
	ctnl_close(nl);
	return err;
}

void ctnl_close(struct ctnl *nl)
{
	if (!nl)
		return;
	if (nl->threaded)
		ctnl_inject_stop(nl);   /* no callbacks: the caller is closing */
	if (nl->ev)
		mnl_socket_close(nl->ev);
	if (nl->dump)
		mnl_socket_close(nl->dump);
	if (nl->inj)
		mnl_socket_close(nl->inj);
	if (nl->get)
		mnl_socket_close(nl->get);
	for (unsigned i = 0; i < NBATCH; i++)
		free(nl->bt[i].buf);
	free(nl->errq);
	pthread_cond_destroy(&nl->cv_done);
	pthread_cond_destroy(&nl->cv_work);
	pthread_mutex_destroy(&nl->mu);
	free(nl);
}

int ctnl_event_fd(const struct ctnl *nl)
{
	return mnl_socket_get_fd(nl->ev);
}

const struct ctnl_stats *ctnl_stats(const struct ctnl *nl)
{
	return &nl->st;
}

static bool ct_event(const struct nlmsghdr *nlh, bool dump, enum ctnl_event *ev);
static void deliver_ct(struct ctnl *nl, const struct nlmsghdr *nlh, enum ctnl_event ev,
		       const struct ct *ct, bool dump);

static void deliver(struct ctnl *nl, const struct nlmsghdr *nlh, bool dump)
{
	struct ct ct;
	int type = nlh->nlmsg_type & 0xff;
	enum ctnl_event ev;

	if ((nlh->nlmsg_type >> 8) == NFNL_SUBSYS_CTNETLINK_EXP) {
		struct exp e;
		if (!nl->cfg.on_exp || (type != IPCTNL_MSG_EXP_NEW && type != IPCTNL_MSG_EXP_DELETE))
			return;
		if (ctnl_exp_parse(nlh, nlh->nlmsg_len, &e) < 0) {
			nl->st.events_bad++;
			return;
		}
		nl->st.exp_events++;
		ev = dump ? CTNL_EV_DUMP : type == IPCTNL_MSG_EXP_DELETE ? CTNL_EV_DESTROY : CTNL_EV_NEW;
		nl->cfg.on_exp(nl->cfg.arg, ev, &e,
			       !dump && nl->inj_portid && nlh->nlmsg_pid == nl->inj_portid);
		return;
	}
	if (!ct_event(nlh, dump, &ev))
		return;
	if (ctnl_parse(nlh, nlh->nlmsg_len, &ct) < 0) {
		nl->st.events_bad++;
		return;
	}
	deliver_ct(nl, nlh, ev, &ct, dump);
}

/* A conntrack entry message (not an expectation): which event it is. */
static bool ct_event(const struct nlmsghdr *nlh, bool dump, enum ctnl_event *ev)
{
	int type = nlh->nlmsg_type & 0xff;

	if ((nlh->nlmsg_type >> 8) != NFNL_SUBSYS_CTNETLINK)
		return false;
	if (type == IPCTNL_MSG_CT_DELETE)
		*ev = CTNL_EV_DESTROY;
	else if (type != IPCTNL_MSG_CT_NEW)
		return false;
	else if (dump)
		*ev = CTNL_EV_DUMP;
	else if (nlh->nlmsg_flags & (NLM_F_CREATE | NLM_F_EXCL))
		*ev = CTNL_EV_NEW;
	else
		*ev = CTNL_EV_UPDATE;
	return true;
}

static void deliver_ct(struct ctnl *nl, const struct nlmsghdr *nlh, enum ctnl_event ev,
		       const struct ct *ct, bool dump)
{
	bool own = !dump && nl->inj_portid && nlh->nlmsg_pid == nl->inj_portid;

	if (dump)
		nl->st.dumped++;
	else
		nl->st.events++;
	if (own)
		nl->st.events_own++;
	nl->cfg.on_event(nl->cfg.arg, ev, ct, own);
}

int ctnl_events_new(struct ctnl *nl, bool on)
{
	int grp = NFNLGRP_CONNTRACK_NEW;

	if (setsockopt(mnl_socket_get_fd(nl->ev), SOL_NETLINK,
		       on ? NETLINK_ADD_MEMBERSHIP : NETLINK_DROP_MEMBERSHIP, &grp, sizeof(grp)) < 0)
		return -errno;
	return 0;
}

/* Events are read EV_SLOTS at a time with recvmmsg(): one system call for
 * many (each event is a datagram of its own, a few hundred bytes). */
int ctnl_event_read(struct ctnl *nl, int budget)
{
	int fd = mnl_socket_get_fd(nl->ev), n = 0;
	struct mmsghdr mm[EV_SLOTS];
	struct iovec iov[EV_SLOTS];
	enum ctnl_event evs[EV_SLOTS];
	int parsed[EV_SLOTS];
	const struct ct *batch[EV_SLOTS];

	for (unsigned i = 0; i < EV_SLOTS; i++) {
		iov[i].iov_base = nl->evbuf[i];
		iov[i].iov_len = sizeof(nl->evbuf[i]);
		memset(&mm[i].msg_hdr, 0, sizeof(mm[i].msg_hdr));
		mm[i].msg_hdr.msg_iov = &iov[i];
		mm[i].msg_hdr.msg_iovlen = 1;
	}
	while (n < budget) {
		unsigned want = budget - n < EV_SLOTS ? (unsigned)(budget - n) : EV_SLOTS;
		int r = recvmmsg(fd, mm, want, MSG_DONTWAIT, NULL);
		if (r < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
				break;
			if (errno == ENOBUFS) {
				/* Empty the queue before the caller dumps: the kernel
				 * reports one overrun per congestion, and clears the
				 * congestion only once our queue is empty, so events
				 * dropped while the dump runs on a still-full queue would
				 * be lost with no second ENOBUFS.  What we discard here
				 * happened before the dump, which shows its result. */
				nl->st.overruns++;
				while (recv(fd, nl->rbuf, sizeof(nl->rbuf), MSG_DONTWAIT) > 0 ||
				       errno == ENOBUFS || errno == EINTR)
					nl->st.discarded++;
				return -ENOBUFS;
			}
			return -errno;
		}
		/* An error after the first datagram is kept by the kernel for the
		 * next call: an overrun is never lost by reading many at once.
		 * The entries are parsed first and the caller told which it will
		 * look up (on_prefetch), then delivered in order. */
		unsigned nb = 0;
		for (int i = 0; i < r; i++) {
			const struct nlmsghdr *nlh = (const struct nlmsghdr *)nl->evbuf[i];
			int len = (int)mm[i].msg_len;
			parsed[i] = 0;
			if ((mm[i].msg_hdr.msg_flags & MSG_TRUNC) || !mnl_nlmsg_ok(nlh, len) ||
			    !ct_event(nlh, false, &evs[i]))
				continue;
			if (ctnl_parse(nlh, nlh->nlmsg_len, &nl->evct[i]) < 0) {
				parsed[i] = -1;
				continue;
			}
			parsed[i] = 1;
			batch[nb++] = &nl->evct[i];
		}
		if (nb && nl->cfg.on_prefetch)
			nl->cfg.on_prefetch(nl->cfg.arg, batch, nb);
		for (int i = 0; i < r; i++) {
			if (mm[i].msg_hdr.msg_flags & MSG_TRUNC) {
				nl->st.events_bad++;        /* larger than a slot */
				continue;
			}
			const struct nlmsghdr *nlh = (const struct nlmsghdr *)nl->evbuf[i];
			int len = (int)mm[i].msg_len;
			for (bool first = true; mnl_nlmsg_ok(nlh, len); first = false) {
				if (first && parsed[i] > 0)
					deliver_ct(nl, nlh, evs[i], &nl->evct[i], false);
				else if (first && parsed[i] < 0)
					nl->st.events_bad++;
				else
					deliver(nl, nlh, false);
				nlh = mnl_nlmsg_next(nlh, &len);
			}
		}
		n += r;
		if ((unsigned)r < want)
			break;          /* the queue is empty */
	}
	return n;
}

static int dump_cb(const struct nlmsghdr *nlh, void *arg)
{
	deliver(arg, nlh, true);
	return MNL_CB_OK;
}

/* Ask for a dump of the conntrack (IPCTNL_MSG_CT_GET) or expectation
 * (IPCTNL_MSG_EXP_GET) table on the dump socket; read with ctnl_dump_read(). */
static int dump_start(struct ctnl *nl, uint16_t type)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);

	if (nl->dump_seq)
		return -EBUSY;
	nl->dump_seq = ++nl->seq;
	nlh->nlmsg_type = type;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
	nlh->nlmsg_seq = nl->dump_seq;
	struct nfgenmsg *nfg = mnl_nlmsg_put_extra_header(nlh, sizeof(*nfg));
	nfg->nfgen_family = AF_UNSPEC;
	nfg->version = NFNETLINK_V0;
	if (mnl_socket_sendto(nl->dump, nlh, nlh->nlmsg_len) < 0) {
		nl->dump_seq = 0;
		return -errno;
	}
	return 0;
}

int ctnl_dump_start(struct ctnl *nl)
{
	return dump_start(nl, (NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_GET);
}

int ctnl_dump_read(struct ctnl *nl, int budget, bool wait)
{
	uint32_t portid = mnl_socket_get_portid(nl->dump);
	int fd = mnl_socket_get_fd(nl->dump);

	if (!nl->dump_seq)
		return 1;
	for (int i = 0; i < budget; i++) {
		ssize_t r = recv(fd, nl->rbuf, sizeof(nl->rbuf), wait ? 0 : MSG_DONTWAIT);
		if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
			return 0;
		int ret = r < 0 ? -1 : mnl_cb_run(nl->rbuf, (size_t)r, nl->dump_seq, portid,
						  dump_cb, nl);
		if (ret < 0) {
			int err = errno ? -errno : -EIO;
			nl->dump_seq = 0;
			return err;
		}
		if (ret == MNL_CB_STOP) {
			nl->dump_seq = 0;
			if (nl->cfg.on_dump_done)
				nl->cfg.on_dump_done(nl->cfg.arg);
			return 1;
		}
	}
	return 0;
}

int ctnl_dump_fd(const struct ctnl *nl)
{
	return mnl_socket_get_fd(nl->dump);
}

int ctnl_dump_finish(struct ctnl *nl)
{
	int ret = 0;
	while (nl->dump_seq && (ret = ctnl_dump_read(nl, 1 << 30, true)) == 0)
		;
	return ret < 0 ? ret : 0;
}

/* A whole dump of one type, synchronously (finishing one under way first:
 * one dump at a time on the socket). */
static int dump_sync(struct ctnl *nl, uint16_t type)
{
	ctnl_dump_finish(nl);
	int ret = dump_start(nl, type);
	while (ret == 0)
		ret = ctnl_dump_read(nl, 1 << 30, true);
	return ret < 0 ? ret : 0;
}

int ctnl_dump(struct ctnl *nl)
{
	return dump_sync(nl, (NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_GET);
}


int ctnl_exp_dump(struct ctnl *nl)
{
	if (!nl->cfg.on_exp)
		return 0;
	return dump_sync(nl, (NFNL_SUBSYS_CTNETLINK_EXP << 8) | IPCTNL_MSG_EXP_GET);
}

struct get_ctx {
	struct ct *out;
	int found;
};

static int get_cb(const struct nlmsghdr *nlh, void *arg)
{
	struct get_ctx *g = arg;
	if ((nlh->nlmsg_type & 0xff) == IPCTNL_MSG_CT_NEW &&
	    ctnl_parse(nlh, nlh->nlmsg_len, g->out) == 0)
		g->found = 1;
	return MNL_CB_OK;
}

int ctnl_get(struct ctnl *nl, const struct ct *key, struct ct *out)
{
	char buf[CTNL_MSG_MAX] = { 0 };     /* attribute padding is sent as found */
	struct get_ctx g = { out, 0 };

	uint32_t seq = ++nl->seq;
	size_t len = ctnl_build(buf, CTNL_OP_DELETE, key, false, seq);     /* key only */
	struct nlmsghdr *nlh = (struct nlmsghdr *)buf;
	nlh->nlmsg_type = (NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_GET;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
	if (mnl_socket_sendto(nl->get, buf, len) < 0)
		return -errno;
	uint32_t portid = mnl_socket_get_portid(nl->get);
	for (;;) {
		ssize_t r = recv(mnl_socket_get_fd(nl->get), nl->get_rbuf, sizeof(nl->get_rbuf), 0);
		if (r < 0)
			return -errno;
		int ret = mnl_cb_run(nl->get_rbuf, (size_t)r, seq, portid, get_cb, &g);
		if (ret < 0)
			return g.found ? 0 : -errno;
		if (ret == MNL_CB_STOP)
			return g.found ? 0 : -ENOENT;
	}
}

