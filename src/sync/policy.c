/* policy.c — ownership policy (policy.h). */
#include "sync/policy.h"

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

void policy_member(struct policy *p, uint32_t id, bool alive, bool primary, uint32_t term)
{
	struct member *m = member(p, id);

	if (!m || id == p->self)
		return;
	m->alive = alive;
	m->primary = primary;
	m->term = term;
	policy_seen(p, term);
}

void policy_member_down(struct policy *p, uint32_t id)
{
	for (unsigned i = 0; i < p->nmembers; i++)
		if (p->m[i].id == id)
			p->m[i].alive = false;
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
	return p->term;
}

void policy_demote(struct policy *p)
{
	p->primary = false;
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

bool policy_adopt(const struct policy *p, struct claim cur, bool owner_alive)
{
	if (!owner_alive)
		return true;
	return p->primary && policy_rightful(p) == p->self;
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
