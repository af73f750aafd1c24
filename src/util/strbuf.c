/* strbuf.c — growing text buffer and escapers (strbuf.h). */
#include "util/strbuf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

static bool grow(struct strbuf *b, size_t need)
{
	if (b->oom)
		return false;
	if (b->len + need < b->cap)
		return true;
	size_t ncap = b->cap ? b->cap * 2 : 4096;
	while (ncap < b->len + need + 1)
		ncap *= 2;
	char *np = realloc(b->p, ncap);
	if (!np) {
		b->oom = true;
		return false;
	}
	b->p = np;
	b->cap = ncap;
	return true;
}

void strbuf_printf(struct strbuf *b, const char *fmt, ...)
{
	va_list ap;

	for (;;) {
		size_t room = b->cap - b->len;
		va_start(ap, fmt);
		int n = vsnprintf(b->p ? b->p + b->len : NULL, b->p ? room : 0, fmt, ap);
		va_end(ap);
		if (n < 0 || b->oom)
			return;
		if ((size_t)n < room) {
			b->len += (size_t)n;
			return;
		}
		if (!grow(b, (size_t)n + 1))
			return;
	}
}

static void put(struct strbuf *b, char c)
{
	if (grow(b, 2)) {
		b->p[b->len++] = c;
		b->p[b->len] = 0;
	}
}

void strbuf_json(struct strbuf *b, const char *s)
{
	static const char hex[] = "0123456789abcdef";

	put(b, '"');
	for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
		if (*c == '"' || *c == '\\') {
			put(b, '\\');
			put(b, (char)*c);
		} else if (*c < 0x20 || *c >= 0x7f) {
			strbuf_printf(b, "\\u00%c%c", hex[*c >> 4], hex[*c & 15]);
		} else {
			put(b, (char)*c);
		}
	}
	put(b, '"');
}

void strbuf_text(struct strbuf *b, const char *s)
{
	for (const unsigned char *c = (const unsigned char *)s; *c; c++)
		put(b, *c < 0x20 || *c >= 0x7f ? '?' : (char)*c);
}

void strbuf_free(struct strbuf *b)
{
	free(b->p);
	b->p = NULL;
	b->len = b->cap = 0;
}
