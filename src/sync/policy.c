/* policy.c — ownership policy (policy.h). */
#include "sync/policy.h"

#include <stdlib.h>
#include <string.h>

int policy_compare(struct claim a, struct claim b)
{
	if (a.gen != b.gen)
		return a.gen > b.gen ? 1 : -1;
	if (a.node != b.node)
		return a.node < b.node ? 1 : -1;
	return 0;
}

void policy_init(struct policy *p, uint32_t self, bool primary)
{
	memset(p, 0, sizeof(*p));
	p->self = self;
	p->primary = primary;
	p->term = primary ? 1 : 0;
	p->max_seen = p->term;
}

static struct member *member(struct policy *p, uint32_t id)
{
	for (unsigned i = 0; i < p->nmembers; i++)
		if (p->m[i].id == id)
			return &p->m[i];
	if (p->nmembers == POLICY_MAX_MEMBERS)
		return NULL;
	struct member *m = &p->m[p->nmembers++];
	memset(m, 0, sizeof(*m));
	m->id = id;
	return m;
}

/* ---- active-active: the bucket map (policy.h) ------------------------------- */

bool policy_holds(const struct policy *p)
{
	return p->mode == POLICY_ACTIVE_ACTIVE && p->ready && p->primary && !p->no_quorum;
}

static bool holds(const struct policy *p, uint32_t id, bool self_holds)
{
	if (id == p->self)
		return self_holds;
	for (unsigned i = 0; i < p->nmembers; i++)
		if (p->m[i].id == id)
			return p->m[i].alive && p->m[i].holds;
	return false;
}

/* The owner of every bucket, were this node holding buckets or not. */
static void assign(const struct policy *p, bool self_holds, uint32_t *owner)
{
	uint32_t h[POLICY_MAX_MEMBERS];
	unsigned nh = 0;

	for (unsigned i = 0; i < p->nhome; i++)
		if (holds(p, p->home[i], self_holds))
			h[nh++] = p->home[i];
	for (unsigned b = 0; b < p->nbuckets; b++) {
		uint32_t home = p->home[b % p->nhome];
		if (holds(p, home, self_holds))
			owner[b] = home;
		else
			owner[b] = nh ? h[(b / p->nhome) % nh] : 0;
	}
}

static void remap(struct policy *p)
{
	uint32_t o[POLICY_MAX_BUCKETS];

	if (p->mode != POLICY_ACTIVE_ACTIVE)
		return;
	assign(p, true, p->if_held);
	assign(p, policy_holds(p), o);
	if (memcmp(o, p->owner, p->nbuckets * sizeof(o[0]))) {
		memcpy(p->owner, o, p->nbuckets * sizeof(o[0]));
		p->map_gen++;
	}
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return (x > y) - (x < y);
}

void policy_active_active(struct policy *p, unsigned nbuckets, const uint32_t *peers,
			  unsigned npeers)
{
	p->mode = POLICY_ACTIVE_ACTIVE;
	p->nbuckets = nbuckets > POLICY_MAX_BUCKETS ? POLICY_MAX_BUCKETS : nbuckets;
	p->nhome = 0;
	p->home[p->nhome++] = p->self;
	for (unsigned i = 0; i < npeers && p->nhome < POLICY_MAX_MEMBERS; i++) {
		member(p, peers[i]);
		p->home[p->nhome++] = peers[i];
	}
	qsort(p->home, p->nhome, sizeof(p->home[0]), cmp_u32);
	remap(p);
}

bool policy_is_active_active(const struct policy *p)
{
	return p->mode == POLICY_ACTIVE_ACTIVE;
}

void policy_ready(struct policy *p)
{
	p->ready = true;
	remap(p);
}

void policy_quorum(struct policy *p, bool quorate)
{
	p->no_quorum = !quorate;
	remap(p);
}

uint32_t policy_bucket_owner(const struct policy *p, unsigned bucket)
{
	return bucket < p->nbuckets ? p->owner[bucket] : 0;
}

uint32_t policy_map_gen(const struct policy *p)
{
	return p->map_gen;
}

/* ---- members ------------------------------------------------------------------ */

void policy_member(struct policy *p, uint32_t id, bool alive, bool primary, uint32_t term,
		   bool holds_buckets)
{
	struct member *m = member(p, id);

	if (!m || id == p->self)
		return;
	bool moved = m->alive != alive || m->holds != holds_buckets;
	m->alive = alive;
	m->primary = primary;
	m->term = term;
	m->holds = holds_buckets;
	policy_seen(p, term);
	if (moved)
		remap(p);
}

void policy_member_down(struct policy *p, uint32_t id)
{
	for (unsigned i = 0; i < p->nmembers; i++)
		if (p->m[i].id == id && p->m[i].alive) {
			p->m[i].alive = false;
			remap(p);
		}
}

void policy_seen(struct policy *p, uint32_t gen)
{
	if (gen > p->max_seen)
		p->max_seen = gen;
}

uint32_t policy_promote(struct policy *p)
{
	uint32_t t = p->max_seen > p->term ? p->max_seen : p->term;

	p->term = t + 1;
	p->max_seen = p->term;
	p->primary = true;
	remap(p);
	return p->term;
}

void policy_demote(struct policy *p)
{
	p->primary = false;
	remap(p);
}

bool policy_primary(const struct policy *p)
{
	return p->primary;
}

uint32_t policy_term(const struct policy *p)
{
	return p->term;
}

uint32_t policy_rightful(const struct policy *p)
{
	struct claim best = { 0, 0 };
	bool any = false;

	if (p->mode == POLICY_ACTIVE_ACTIVE)
		return 0;               /* no single primary */
	if (p->primary) {
		best = (struct claim){ p->term, p->self };
		any = true;
	}
	for (unsigned i = 0; i < p->nmembers; i++) {
		const struct member *m = &p->m[i];
		struct claim c = { m->term, m->id };
		if (m->alive && m->primary && (!any || policy_compare(c, best) > 0)) {
			best = c;
			any = true;
		}
	}
	return any ? best.node : 0;
}

void policy_routed(struct policy *p)
{
	p->routed = true;
}

bool policy_is_routed(const struct policy *p)
{
	return p->mode == POLICY_ACTIVE_ACTIVE && p->routed;
}

bool policy_adopt(const struct policy *p, struct claim cur, bool owner_alive, unsigned bucket)
{
	/* Active-active: the packet passed here because the bucket is ours
	 * (or it never passed: a dead owner's flow is then its bucket
	 * owner's to take, not ours). */
	if (p->mode == POLICY_ACTIVE_ACTIVE && p->routed)
		return !owner_alive && policy_bucket_owner(p, bucket) == p->self;
	if (p->mode == POLICY_ACTIVE_ACTIVE)
		return policy_bucket_owner(p, bucket) == p->self;
	if (!owner_alive)
		return true;
	return p->primary && policy_rightful(p) == p->self;
}

bool policy_should_own(const struct policy *p, unsigned bucket)
{
	if (p->mode == POLICY_ACTIVE_ACTIVE && p->routed)
		return false;   /* whoever saw it first: no node should own all */
	if (p->mode == POLICY_ACTIVE_ACTIVE)
		return policy_bucket_owner(p, bucket) == p->self;
	return p->primary;
}

uint32_t policy_take(struct policy *p, uint32_t cur_gen)
{
	uint32_t gen = cur_gen >= p->term ? cur_gen + 1 : p->term;

	policy_seen(p, gen);
	return gen;
}

bool policy_takes_orphans(const struct policy *p)
{
	return p->primary;
}

/* Active-active: the flows of the buckets this node will hold once ready
 * (a restarted daemon's kernel kept forwarding them: nobody else has newer
 * ones). */
bool policy_takes_orphan(const struct policy *p, unsigned bucket)
{
	if (p->mode != POLICY_ACTIVE_ACTIVE)
		return p->primary;
	return p->primary && bucket < p->nbuckets && p->if_held[bucket] == p->self;
}
