/*
 * fuzz_rand.h -- what the fuzz programs of tests/engine share: a seeded
 * xorshift generator (R, pick; the seed is set with seed_state) and fail(),
 * which prints "FAIL <why>" and exits 1.
 */
#ifndef FUZZ_RAND_H
#define FUZZ_RAND_H

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

static uint64_t seed_state = 88172645463325252ULL;

static inline uint32_t R(void)
{
    seed_state ^= seed_state << 13;
    seed_state ^= seed_state >> 7;
    seed_state ^= seed_state << 17;
    return (uint32_t)(seed_state >> 16);
}

static inline uint32_t pick(uint32_t n) { return n ? R() % n : 0; }

static inline void fail(const char *fmt, ...)
{
    va_list ap;

    printf("FAIL ");
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
    fflush(stdout);
    exit(1);
}

#endif /* FUZZ_RAND_H */
