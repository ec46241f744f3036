/*
 * xchg_frames.h -- the numbered frames the pipe exchange programs
 * (nm_xchg_legacy.c, lnm_xchg.c) send each other: frame i of direction d
 * carries i and d in its first five bytes, then a pattern of both; its
 * length varies with i.  Plain C, nothing of nmcompat.
 */
#ifndef XCHG_FRAMES_H
#define XCHG_FRAMES_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define XCHG_MAX 1600

static inline unsigned xchg_len(unsigned dir, uint32_t i)
{
    return 60 + (i * 7 + dir * 13) % 1400;
}

static inline unsigned xchg_fill(char *buf, unsigned dir, uint32_t i)
{
    unsigned len = xchg_len(dir, i);

    memcpy(buf, &i, 4);
    buf[4] = (char)dir;
    for (unsigned k = 5; k < len; k++)
        buf[k] = (char)(i * 31 + k + dir * 101);
    return len;
}

/* 0 when buf/len is frame i of direction dir; else prints why. */
static inline int xchg_check(const char *buf, unsigned len, unsigned dir, uint32_t i)
{
    char want[XCHG_MAX];
    unsigned wlen = xchg_fill(want, dir, i);
    uint32_t seq;

    memcpy(&seq, buf, 4);
    if (len != wlen || seq != i || memcmp(buf, want, wlen) != 0) {
        fprintf(stderr, "FAIL frame %u of direction %u: got sequence %u, %u bytes (want %u)\n",
                i, dir, seq, len, wlen);
        return -1;
    }
    return 0;
}

#endif
