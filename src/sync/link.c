/* link.c — transport and seal as one sync link (link.h). */
#include "sync/link.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "sync/wire.h"
#include "util/log.h"

struct link {
	struct transport *tr;
	struct seal *seal;
	uint8_t rxbuf[WIRE_MAX_FRAME + 1];
	uint8_t txbuf[WIRE_MAX_FRAME + SEAL_TAG_LEN];
};

struct link *link_new(struct transport *t)
{
	struct link *l = calloc(1, sizeof(*l));

	if (!l || !(l->seal = seal_new())) {
		free(l);
		return NULL;
	}
	l->tr = t;
	return l;
}

void link_free(struct link *l)
{
	if (!l)
		return;
	seal_free(l->seal);
	transport_close(l->tr);
	free(l);
}

struct seal *link_seal(struct link *l)
{
	return l->seal;
}

struct transport *link_transport(struct link *l)
{
	return l->tr;
}

int link_fd(const struct link *l)
{
	return transport_fd(l->tr);
}

size_t link_frame_max(const struct link *l)
{
	return transport_mtu(l->tr) - SEAL_TAG_LEN;
}

int link_send(struct link *l, uint32_t node, const void *frame, size_t len)
{
	if (len > WIRE_MAX_FRAME)
		return -EMSGSIZE;
	memcpy(l->txbuf, frame, len);
	ssize_t n = seal_frame(l->seal, l->txbuf, len, sizeof(l->txbuf));
	return n < 0 ? (int)n : transport_send(l->tr, node, l->txbuf, (size_t)n);
}

static void log_rejected(const struct sockaddr_storage *src, const uint8_t *buf, size_t len,
			 ssize_t why)
{
	static const char *const reason[] = {
		[SEAL_E_SHORT] = "truncated", [SEAL_E_UNSEALED] = "not sealed",
		[SEAL_E_UNKNOWN_KEY] = "unknown key id", [SEAL_E_UNKNOWN_NODE] = "no key for its node",
		[SEAL_E_BAD_TAG] = "authentication failed",
	};
	char ab[INET6_ADDRSTRLEN] = "?";
	const void *a = src->ss_family == AF_INET6 ?
			(const void *)&((const struct sockaddr_in6 *)src)->sin6_addr :
			(const void *)&((const struct sockaddr_in *)src)->sin_addr;
	if (src->ss_family == AF_INET || src->ss_family == AF_INET6)
		inet_ntop(src->ss_family, a, ab, sizeof(ab));
	unsigned node = len >= WIRE_HDR_LEN ? wire_get_u32(buf + WIRE_OFF_NODE) : 0;
	log_limited(LOG_LVL_WARN, "dropped a frame from %s claiming node %u, key %u: %s", ab, node,
		    len > WIRE_OFF_KEY ? buf[WIRE_OFF_KEY] : 0,
		    -why > 0 && -why <= SEAL_E_BAD_TAG ? reason[-why] : "?");
}

int link_read(struct link *l, int budget, link_frame_fn fn, void *arg)
{
	struct sockaddr_storage src;
	uint32_t from;
	int n = 0;

	for (; n < budget; n++) {
		ssize_t r = transport_recv(l->tr, l->rxbuf, sizeof(l->rxbuf) - 1, &from, &src);
		if (r == -EAGAIN || r == -EWOULDBLOCK || r == -EINTR)
			break;
		if (r < 0) {
			if (r == -EMSGSIZE)
				fn(arg, l->rxbuf, 0, from);     /* counted as malformed */
			continue;
		}
		/* seal_open leaves the header alone: the log reads node and key from it */
		ssize_t plain = seal_open(l->seal, l->rxbuf, (size_t)r);
		if (plain < 0) {
			log_rejected(&src, l->rxbuf, (size_t)r, plain);
			continue;
		}
		fn(arg, l->rxbuf, (size_t)plain, from);
	}
	return n;
}
