/*
 * lnm_parse.c -- calls into nmc_portspec_parse for libnetmap.  The
 * piecewise decoders (nmreq_header_decode, nmreq_register_decode) must
 * know where a name ends and where the options start; rather than a second
 * copy of the grammar, each byte is asked of the parser once, and the
 * answer cached: "netmap:a" c "b" keeps c in the name or not, "netmap:a@"
 * c "1" is a mem_id or not.
 */
#include "lnm_parse.h"

#include <errno.h>
#include <string.h>

struct lnm_parse *lnm_parse(struct nmctx *ctx, const char *head, const char *text, size_t len,
                            bool offsets)
{
    size_t hlen = strlen(head);
    struct lnm_parse *p = nmctx_malloc(ctx, sizeof(*p));
    char *whole = p ? nmctx_malloc(ctx, hlen + len + 1) : NULL;

    if (whole == NULL) {
        nmctx_free(ctx, p);
        nmctx_ferror(ctx, "out of memory");
        errno = ENOMEM;
        return NULL;
    }
    memcpy(whole, head, hlen);
    memcpy(whole + hlen, text, len);
    whole[hlen + len] = '\0';
    memset(&p->err, 0, sizeof(p->err));
    p->rc = nmc_portspec_parse(whole, NMC_PORTSPEC_NMPORT | (offsets ? NMC_PORTSPEC_OFFSETS : 0),
                               &p->spec, &p->err);
    if (p->rc < 0)
        p->err.position = p->err.position >= hlen ? p->err.position - (uint32_t)hlen : 0;
    nmctx_free(ctx, whole);
    return p;
}

void lnm_parse_free(struct nmctx *ctx, struct lnm_parse *p)
{
    nmctx_free(ctx, p);
}

enum { UNKNOWN, YES, NO };

/* The parse of "netmap:a" followed by the bytes given, or NULL. */
static struct lnm_parse *probe(struct nmctx *ctx, const char *tail)
{
    return lnm_parse(ctx, LNM_STANDIN, tail, strlen(tail), true);
}

static int cached(int *slot)
{
    return __atomic_load_n(slot, __ATOMIC_RELAXED);
}

bool lnm_ends_name(struct nmctx *ctx, unsigned char c)
{
    static int answer[256];
    char tail[3] = { (char)c, 'b', '\0' };
    struct lnm_parse *p;
    int a;

    if (c == '\0')
        return true;
    a = cached(&answer[c]);
    if (a != UNKNOWN)
        return a == YES;
    p = probe(ctx, tail);
    if (p == NULL)
        return true;                /* out of memory: the caller's parse fails too */
    a = (p->rc == 0 && p->spec.nr_name[0] == 'a' && p->spec.nr_name[1] == (char)c &&
         strcmp(p->spec.nr_name + 2, "b") == 0) ? NO : YES;
    lnm_parse_free(ctx, p);
    __atomic_store_n(&answer[c], a, __ATOMIC_RELAXED);
    return a == YES;
}

bool lnm_starts_options(struct nmctx *ctx, unsigned char c)
{
    static int answer[256];
    char tail[4] = { '@', (char)c, '1', '\0' };
    struct lnm_parse *p;
    int a;

    if (c == '\0')
        return false;               /* "@" at the end: an empty mem_id */
    a = cached(&answer[c]);
    if (a != UNKNOWN)
        return a == YES;
    p = probe(ctx, tail);
    if (p == NULL)
        return false;
    a = (p->rc == 0 && p->spec.mem_id != 0) ? NO : YES;
    lnm_parse_free(ctx, p);
    __atomic_store_n(&answer[c], a, __ATOMIC_RELAXED);
    return a == YES;
}
