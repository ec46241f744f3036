/*
 * copy_stream.c -- the streamed copy (csrc/core/copy.c), both ways the
 * engine can take (AVX2 where the CPU has it, and the SSE2 fallback), for
 * every length from 1 to 4096: the destination holds the source's bytes up
 * to the length rounded up to 64, and nothing before or after that range
 * changes.  Built with the engine sources, run under AddressSanitizer and
 * UBSan as well.  Prints "done lengths=N" or the first mismatch.
 */
#include "nmc_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define AREA  8192u
#define AT    128u                      /* the copy's place in the areas: 64-byte aligned */
#define GUARD 0x5a

static int check(const uint8_t *dst, const uint8_t *src, uint32_t len, const char *how)
{
    uint32_t end = AT + (len + 63) / 64 * 64;

    for (uint32_t i = 0; i < AREA; i++) {
        uint8_t want = i >= AT && i < end ? src[i] : GUARD;
        if (dst[i] != want) {
            printf("%s len=%u: byte %u is %#x, not %#x\n", how, len, i, dst[i], want);
            return -1;
        }
    }
    return 0;
}

int main(void)
{
    uint8_t *src = aligned_alloc(64, AREA), *dst = aligned_alloc(64, AREA);
    uint32_t n = 0;

    if (!src || !dst)
        return 2;
    for (uint32_t i = 0; i < AREA; i++)
        src[i] = (uint8_t)(i * 7 + (i >> 8) + 1);
    for (uint32_t len = 1; len <= 4096; len++, n++) {
        for (int way = 0; way < 2; way++) {
            memset(dst, GUARD, AREA);
            if (way == 0)
                nmc_copy_stream(dst + AT, src + AT, len);
            else
                nmc_copy_stream_sse2(dst + AT, src + AT, len);
            nmc_copy_stream_end();
            if (check(dst, src, len, way == 0 ? "nmc_copy_stream" : "nmc_copy_stream_sse2") < 0)
                return 1;
        }
    }
    printf("done lengths=%u\n", n);
    free(src);
    free(dst);
    return 0;
}
