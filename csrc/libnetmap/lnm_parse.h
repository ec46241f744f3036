/*
 * lnm_parse.h -- libnetmap's way into nmcompat's one port-name parser
 * (nmcompat_portspec.h): a parse with its result and error together, and
 * the two character classes the piecewise decoders split a portspec by,
 * both learnt from the parser itself.
 */
#ifndef LNM_PARSE_H
#define LNM_PARSE_H

#include "lnm.h"

#include <stdbool.h>
#include <stddef.h>

#include <nmcompat_portspec.h>

struct lnm_parse {
    struct nmc_portspec spec;
    struct nmc_portspec_error err;
    int rc;                         /* 0, or -errno */
};

/* nmc_portspec_parse(head + text[0, len)) with the nmport grammar (and
 * @offset when offsets); NULL only when memory ran out (errno ENOMEM,
 * message sent).  Error positions count from text. */
struct lnm_parse *lnm_parse(struct nmctx *ctx, const char *head, const char *text, size_t len,
                            bool offsets);
void lnm_parse_free(struct nmctx *ctx, struct lnm_parse *p);

/* The prefix the decoders put before a mode or an option list so that it
 * parses as a whole portspec. */
#define LNM_STANDIN "netmap:a"

/* Does byte c end a port name (the parser takes it for the start of a mode,
 * flags, a mem_id or options)?  NUL does. */
bool lnm_ends_name(struct nmctx *ctx, unsigned char c);
/* Does '@' followed by c start the options rather than a mem_id? */
bool lnm_starts_options(struct nmctx *ctx, unsigned char c);

#endif
