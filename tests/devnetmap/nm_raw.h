/*
 * nm_raw.h -- what nm_raw.c (the program, its traffic modes) and
 * nm_raw_fds.c (its modes in which a port's fd moves between processes)
 * share.
 */
#ifndef NM_RAW_H
#define NM_RAW_H

#include "nm_test.h"

/* N frames on rx, each batch waited for in poll(). */
void receive(struct port *rx, unsigned n);

/* N frames on tx, waiting for room in poll(). */
void send_all(struct port *tx, unsigned n);

/* The mode argv names if it is one of nm_raw_fds.c's: its exit status;
 * else -1. */
int fd_mode(int argc, char **argv);

#endif
