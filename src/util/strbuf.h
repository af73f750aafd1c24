/*
 * strbuf.h — a growing text buffer for what the daemon renders (status,
 * stats, dumps, metrics), and the one escaper every string from outside
 * (a peer, the kernel, a config file) goes through on its way out.
 */
#ifndef CTSYNC_STRBUF_H
#define CTSYNC_STRBUF_H

#include <stdbool.h>
#include <stddef.h>

struct strbuf {
	char *p;
	size_t len, cap;
	bool oom;               /* an append failed: the text is incomplete */
};

void strbuf_printf(struct strbuf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* s as a JSON string, quotes included: '"' and '\' escaped, every byte
 * below 0x20, 0x7f and above as \u00XX (so any input gives valid JSON). */
void strbuf_json(struct strbuf *b, const char *s);
/* s for a terminal: bytes that are not printable ASCII as '?'. */
void strbuf_text(struct strbuf *b, const char *s);
void strbuf_free(struct strbuf *b);

#endif
