/*
 * alloc.c -- first-fit bitmap allocators for the IF, RING and BUF pools.
 * Called only under the region lock (control path).
 */
#include "nmc_int.h"

#include <errno.h>
#include <string.h>

static inline bool bit_get(const uint64_t *m, uint32_t i) { return (m[i / 64] >> (i % 64)) & 1; }
static inline void bit_set(uint64_t *m, uint32_t i) { m[i / 64] |= 1ULL << (i % 64); }
static inline void bit_clr(uint64_t *m, uint32_t i) { m[i / 64] &= ~(1ULL << (i % 64)); }

/* Find and mark `count` consecutive free bits; returns the first or -ENOMEM. */
int64_t nmc_bits_alloc_run(uint64_t *map, uint32_t nbits, uint32_t count)
{
    uint32_t run = 0;

    if (count == 0 || count > nbits)
        return -ENOMEM;
    for (uint32_t i = 0; i < nbits; i++) {
        if (map[i / 64] == ~0ULL && i % 64 == 0 && i + 64 <= nbits) {
            run = 0;
            i += 63;
            continue;
        }
        run = bit_get(map, i) ? 0 : run + 1;
        if (run == count) {
            uint32_t first = i + 1 - count;
            for (uint32_t j = first; j <= i; j++)
                bit_set(map, j);
            return first;
        }
    }
    return -ENOMEM;
}

void nmc_bits_free_run(uint64_t *map, uint32_t nbits, uint32_t first, uint32_t count)
{
    for (uint32_t j = first; j < first + count && j < nbits; j++)
        bit_clr(map, j);
}

static uint64_t *bufmap(struct nmc_region *r) { return (uint64_t *)(r->ctl + r->g.buf_map_ofs); }

/* Allocate `count` single buffers (not necessarily contiguous), scanning
 * a word at a time from where the previous allocation stopped, and claim
 * their memory (claim.c): -ENOMEM when the region has too few free,
 * -ENOSPC when the runtime directory cannot back them. */
int nmc_buf_alloc(struct nmc_region *r, uint32_t *out, uint32_t count)
{
    uint64_t *m = bufmap(r);
    uint32_t n = r->g.buf_num, words = (n + 63) / 64, got = 0;
    uint32_t w = r->hdr->buf_hint / 64;
    int err;

    if (count > r->hdr->buf_free)
        return -ENOMEM;
    if (w >= words)
        w = 0;
    for (uint32_t s = 0; s <= words && got < count; s++, w = (w + 1 == words) ? 0 : w + 1) {
        uint64_t avail = ~m[w];
        if (w == words - 1 && n % 64)
            avail &= (1ULL << (n % 64)) - 1;
        while (avail && got < count) {
            uint32_t b = (uint32_t)__builtin_ctzll(avail);
            avail &= avail - 1;
            m[w] |= 1ULL << b;
            out[got++] = w * 64 + b;
        }
    }
    err = got < count ? -ENOMEM : nmc_claim_bufs(r, out, count);
    if (err < 0) {                      /* the free count lied, or no memory: undo */
        for (uint32_t k = 0; k < got; k++)
            bit_clr(m, out[k]);
        return err;
    }
    r->hdr->buf_hint = w * 64;
    r->hdr->buf_free -= count;
    return 0;
}

/* Free one buffer; indexes out of range, reserved or already free are
 * ignored (they may come from a corrupted ring or list).  The next
 * allocation starts no later than the lowest freed buffer: buffers are
 * reused before new memory is claimed (claim.c), so a region claims what
 * its ports use at once, not its whole pool over time. */
void nmc_buf_free(struct nmc_region *r, uint32_t idx)
{
    uint64_t *m = bufmap(r);

    if (idx < 2 || idx >= r->g.buf_num || !bit_get(m, idx))
        return;
    bit_clr(m, idx);
    r->hdr->buf_free++;
    if (idx < r->hdr->buf_hint)
        r->hdr->buf_hint = idx & ~63u;
}

/* Every buffer of r free but the reserved 0 and 1: for a region no port
 * and no holder owns any more (a kept spare, spare.c), whatever a
 * corrupted ring lost on the way. */
void nmc_buf_free_all(struct nmc_region *r)
{
    uint64_t *m = bufmap(r);

    memset(m, 0, (r->g.buf_num + 63) / 64 * sizeof(uint64_t));
    m[0] |= 3;
    r->hdr->buf_free = r->g.buf_num - 2;
    r->hdr->buf_hint = 0;
}

/* Free a list linked through the first uint32 of each buffer (netmap's
 * extra-buffer list); bounded, so a loop in a corrupted list ends.
 * Returns the number freed. */
uint32_t nmc_buf_free_list(struct nmc_region *r, uint32_t head)
{
    uint64_t *m = bufmap(r);
    uint32_t freed = 0;

    for (uint32_t steps = 0; head >= 2 && head < r->g.buf_num && steps < r->g.buf_num; steps++) {
        uint32_t next;
        if (!bit_get(m, head))
            break;                      /* already free: the list is corrupt */
        memcpy(&next, nmc_buf(r->mem, &r->g, head), sizeof(next));
        nmc_buf_free(r, head);
        freed++;
        head = next;
    }
    return freed;
}

/* `count` buffers linked through their first uint32 (0 ends the list),
 * allocated and claimed a batch at a time; all or nothing. */
int nmc_buf_alloc_list(struct nmc_region *r, uint32_t count, uint32_t *head)
{
    uint8_t *mem = r->mem;
    uint32_t prev = 0, batch[256];

    *head = 0;
    if (count > r->hdr->buf_free)
        return -ENOMEM;
    for (uint32_t k = 0; k < count; ) {
        uint32_t n = count - k < 256 ? count - k : 256;
        int err = nmc_buf_alloc(r, batch, n);
        if (err < 0) {
            nmc_buf_free_list(r, *head);
            *head = 0;
            return err;
        }
        for (uint32_t i = 0; i < n; i++, k++) {
            memset(nmc_buf(mem, &r->g, batch[i]), 0, sizeof(uint32_t));
            if (prev)
                memcpy(nmc_buf(mem, &r->g, prev), &batch[i], sizeof(batch[i]));
            else
                *head = batch[i];
            prev = batch[i];
        }
    }
    return 0;
}
