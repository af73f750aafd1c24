/* version.h — the release, from the VERSION file (the Makefile passes it),
 * and the wire protocol it speaks (sync/wire.h, "Versions"). */
#ifndef CTSYNC_VERSION_H
#define CTSYNC_VERSION_H

#ifndef CTSYNC_VERSION
#define CTSYNC_VERSION "unknown"
#endif

#endif
