/* json_check.h — is a buffer one well-formed JSON value (RFC 8259), and
 * nothing else but white space?  For the tests and fuzzers of what the
 * daemon renders; strings must be valid UTF-8, as a JSON parser wants. */
#ifndef CTSYNC_TESTS_JSON_CHECK_H
#define CTSYNC_TESTS_JSON_CHECK_H

#include <stdbool.h>
#include <stddef.h>

bool json_check(const char *p, size_t len);

#endif
