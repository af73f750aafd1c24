/* import.h — ctsyncctl import-conntrackd (import.c). */
#ifndef CTSYNC_CTL_IMPORT_H
#define CTSYNC_CTL_IMPORT_H

/* argv[0] is "import-conntrackd"; the exit status (0 written, 1 not, 2 usage). */
int import_conntrackd(int argc, char **argv);

#endif
