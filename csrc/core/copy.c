/*
 * copy.c -- streaming copies of frame bytes into another process's buffers.
 *
 * A VALE sender copies each frame into a buffer the receiver, on another
 * core, reads next.  An ordinary store first fetches the destination line
 * for ownership (from the receiver's cache, which read that buffer one
 * lap ago, or from memory) and leaves the copy in the sender's cache, from
 * where the receiver pulls it again.  A non-temporal store writes whole
 * lines towards memory without fetching them: for frames of a few hundred
 * bytes and more that is 1.1-2.7x faster here (docs/BENCHMARKS.md,
 * "Streaming copies"), and the receiver then reads the frame from memory,
 * not from the sender's cache: slower for one that reads all of it.  Who
 * streams what is the caller's policy (VALE: NMCOMPAT_VALE_STREAM_MIN).
 *
 * A streamed copy writes whole 64-byte lines: the caller guarantees that
 * both buffers hold len rounded up to 64 bytes (netmap buffers are 64-byte
 * multiples) and that dst is 64-byte aligned.  Streamed stores are weakly
 * ordered: nmc_copy_stream_end() orders them before whatever publishes
 * the copy (a release store of an index).
 */
#include "nmc_int.h"

#include <string.h>

#if defined(__x86_64__)
#include <immintrin.h>

static bool g_avx2;

__attribute__((constructor)) static void pick_copy(void)
{
    __builtin_cpu_init();
    g_avx2 = __builtin_cpu_supports("avx2");
}

__attribute__((target("avx2"))) static void stream_avx2(uint8_t *dst, const uint8_t *src,
                                                       uint32_t lines)
{
    for (uint32_t i = 0; i < lines; i++, dst += 64, src += 64) {
        __m256i a = _mm256_loadu_si256((const __m256i *)src);
        __m256i b = _mm256_loadu_si256((const __m256i *)(src + 32));
        _mm256_stream_si256((__m256i *)dst, a);
        _mm256_stream_si256((__m256i *)(dst + 32), b);
    }
}

static void stream_sse2(uint8_t *dst, const uint8_t *src, uint32_t lines)
{
    for (uint32_t i = 0; i < lines; i++, dst += 64, src += 64)
        for (uint32_t k = 0; k < 64; k += 16)
            _mm_stream_si128((__m128i *)(dst + k), _mm_loadu_si128((const __m128i *)(src + k)));
}

void nmc_copy_stream_sse2(void *dst, const void *src, uint32_t len)
{
    stream_sse2(dst, src, (len + 63) / 64);
}

void nmc_copy_stream(void *dst, const void *src, uint32_t len)
{
    uint32_t lines = (len + 63) / 64;

    if (g_avx2)
        stream_avx2(dst, src, lines);
    else
        stream_sse2(dst, src, lines);
}

void nmc_copy_stream_end(void)
{
    _mm_sfence();
}

#else /* no streaming stores: the ordinary copy */

void nmc_copy_stream(void *dst, const void *src, uint32_t len)
{
    memcpy(dst, src, len);
}

void nmc_copy_stream_end(void)
{
}

void nmc_copy_stream_sse2(void *dst, const void *src, uint32_t len)
{
    memcpy(dst, src, len);
}

#endif
