/*
 * nmreq_decode.c -- libnetmap's piecewise portspec decoders, each a parse
 * by nmc_portspec_parse of its piece: the name ("subsystem:vpname") alone;
 * the mode after a stand-in name; the option list after a stand-in name,
 * its values handed to the caller's option parsers.  On failure errno is
 * set, the parser's message goes to the context, and nothing the caller
 * passed is changed.
 */
#include "lnm_parse.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

/* Where the name at text ends: at the first byte after the prefix's ':'
 * that the parser does not keep in a name. */
static size_t name_end(struct nmctx *ctx, const char *text)
{
    const char *colon = strchr(text, ':');
    size_t i;

    if (colon == NULL)
        return strlen(text);
    for (i = (size_t)(colon - text) + 1; !lnm_ends_name(ctx, (unsigned char)text[i]); i++)
        ;
    return i;
}

int nmreq_header_decode(const char **ppspec, struct nmreq_header *hdr, struct nmctx *ctx)
{
    const char *text = *ppspec;
    size_t end;
    struct lnm_parse *p;

    ctx = ctx ? ctx : nmctx_get();
    end = name_end(ctx, text);
    p = lnm_parse(ctx, "", text, end, false);
    if (p == NULL)
        return -1;
    if (p->rc < 0) {
        nmctx_ferror(ctx, "%s: %s", text, p->err.message);
        lnm_parse_free(ctx, p);
        return lnm_fail(EINVAL);
    }
    memset(hdr->nr_name, 0, sizeof(hdr->nr_name));
    snprintf(hdr->nr_name, sizeof(hdr->nr_name), "%s", p->spec.nr_name);
    lnm_parse_free(ctx, p);
    *ppspec = text + end;
    return 0;
}

/* Where the mode at text ends: the end, or the first '@' that starts
 * the options. */
static size_t mode_end(struct nmctx *ctx, const char *text)
{
    size_t i;

    for (i = 0; text[i] != '\0'; i++)
        if (text[i] == '@' && lnm_starts_options(ctx, (unsigned char)text[i + 1]))
            break;
    return i;
}

int nmreq_register_decode(const char **pmode, struct nmreq_register *reg, struct nmctx *ctx)
{
    const char *text = *pmode;
    struct lnm_parse *p;
    size_t end;
    int err;

    ctx = ctx ? ctx : nmctx_get();
    if (text[0] != '\0' && text[0] != '@' && !lnm_ends_name(ctx, (unsigned char)text[0])) {
        nmctx_ferror(ctx, "unknown modifier: '%c'", text[0]);
        return lnm_fail(EINVAL);
    }
    end = mode_end(ctx, text);
    p = lnm_parse(ctx, LNM_STANDIN, text, end, false);
    if (p == NULL)
        return -1;
    err = p->rc < 0 ? EINVAL : 0;
    if (err)
        nmctx_ferror(ctx, "%s", p->err.message);
    else if (p->spec.mem_id && reg->nr_mem_id && p->spec.mem_id != reg->nr_mem_id) {
        nmctx_ferror(ctx, "invalid setting of mem_id to %" PRIu16 " (already set to %" PRIu16 ")",
                     p->spec.mem_id, reg->nr_mem_id);
        err = EINVAL;
    }
    if (!err) {
        reg->nr_mode = p->spec.nr_mode;
        reg->nr_ringid = p->spec.nr_ringid;
        reg->nr_flags = p->spec.nr_flags;
        if (p->spec.mem_id)
            reg->nr_mem_id = p->spec.mem_id;
        *pmode = text + end;
    }
    lnm_parse_free(ctx, p);
    return err ? lnm_fail(err) : 0;
}

/* ------------------------------------------------------------------ */
/* nmreq_options_decode                                                */
/* ------------------------------------------------------------------ */

/* The value of @conf's key as text in num, or NULL when not given. */
static const char *conf_value(const struct nmc_portspec *s, const char *key, char *num)
{
    /* each tx key, then its rx key; the generic key names both */
    static const struct { const char *key, *generic; uint32_t bit; } keys[] = {
        { "tx_rings", "rings", NMC_PORTSPEC_CONF_TX_RINGS },
        { "rx_rings", NULL, NMC_PORTSPEC_CONF_RX_RINGS },
        { "host_tx_rings", "host_rings", NMC_PORTSPEC_CONF_HOST_TX_RINGS },
        { "host_rx_rings", NULL, NMC_PORTSPEC_CONF_HOST_RX_RINGS },
        { "tx_slots", "slots", NMC_PORTSPEC_CONF_TX_SLOTS },
        { "rx_slots", NULL, NMC_PORTSPEC_CONF_RX_SLOTS } };
    const uint64_t val[] = { s->conf_tx_rings, s->conf_rx_rings, s->conf_host_tx_rings,
                             s->conf_host_rx_rings, s->conf_tx_slots, s->conf_rx_slots };

    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        /* a generic key ("rings") holds when both directions have one value */
        bool generic = keys[i].generic && strcmp(key, keys[i].generic) == 0 &&
                       (s->conf_given & keys[i + 1].bit) && val[i] == val[i + 1];
        if ((generic || strcmp(key, keys[i].key) == 0) && (s->conf_given & keys[i].bit)) {
            snprintf(num, 32, "%" PRIu64, val[i]);
            return num;
        }
    }
    return NULL;
}

/* The value of @extmem's key: the file, or the number as written in the
 * option list (text). */
static const char *extmem_value(const struct nmc_portspec *s, const char *key, const char *text,
                                char *num)
{
    static const char *const keys[NMC_PORTSPEC_EXTMEM_KEYS] = {
        "file", "if_num", "if_size", "ring_num", "ring_size", "buf_num", "buf_size" };

    for (int i = 0; i < NMC_PORTSPEC_EXTMEM_KEYS; i++) {
        const struct nmc_portspec_span *sp = &s->extmem_span[i];
        if (strcmp(key, keys[i]) != 0 || !(s->extmem_given_keys & (1u << i)))
            continue;
        if (i == NMC_PORTSPEC_EXTMEM_FILE)
            return s->extmem_file;
        snprintf(num, 32, "%.*s", (int)(sp->len < 31 ? sp->len : 31),
                 text + sp->pos - strlen(LNM_STANDIN));
        return num;
    }
    return NULL;
}

static const char *key_value(const struct lnm_parse *p, const char *option, const char *key,
                             const char *text, char *num)
{
    const struct nmc_portspec *s = &p->spec;

    if (strcmp(option, "share") == 0)
        return strcmp(key, "port") == 0 ? s->share : NULL;
    if (strcmp(option, "conf") == 0)
        return conf_value(s, key, num);
    if (strcmp(option, "extmem") == 0)
        return extmem_value(s, key, text, num);
    if (strcmp(key, "initial") == 0)
        snprintf(num, 32, "%" PRIu64, s->offset_initial);
    else if (strcmp(key, "bits") == 0 && s->offset_bits)
        snprintf(num, 32, "%" PRIu32, s->offset_bits);
    else
        return NULL;
    return num;
}

static bool option_given(const struct nmc_portspec *s, const char *option)
{
    return (strcmp(option, "share") == 0 && s->share_given) ||
           (strcmp(option, "conf") == 0 && s->conf_given) ||
           (strcmp(option, "extmem") == 0 && s->extmem_given) ||
           (strcmp(option, "offset") == 0 && s->offset_given);
}

static struct nmreq_opt_parser *find_parser(struct nmreq_opt_parser *parsers, const char *name)
{
    for (struct nmreq_opt_parser *q = parsers; q != NULL; q = q->next)
        if (q->prefix != NULL && strcmp(q->prefix, name) == 0)
            return q;
    return NULL;
}

/* Hand one option's keys to its parser. */
static int run_parser(struct nmreq_opt_parser *q, const struct lnm_parse *p, const char *text,
                      void *token, struct nmctx *ctx)
{
    struct nmreq_parse_ctx pctx;
    char num[NMREQ_OPT_MAXKEYS][32];

    memset(&pctx, 0, sizeof(pctx));
    pctx.ctx = ctx;
    pctx.token = token;
    for (int i = 0; i < q->nr_keys && i < NMREQ_OPT_MAXKEYS; i++) {
        const struct nmreq_opt_key *k = &q->keys[i];
        if (k->key == NULL || k->id < 0 || k->id >= NMREQ_OPT_MAXKEYS)
            continue;
        pctx.keys[k->id] = key_value(p, q->prefix, k->key, text, num[k->id]);
        if ((k->flags & NMREQ_OPTK_MUSTSET) && pctx.keys[k->id] == NULL) {
            nmctx_ferror(ctx, "option '%s': mandatory key '%s' not assigned", q->prefix, k->key);
            return lnm_fail(EINVAL);
        }
    }
    return q->parse(&pctx) < 0 ? -1 : 0;
}

int nmreq_options_decode(const char *opt, struct nmreq_opt_parser *parsers, void *token,
                         struct nmctx *ctx)
{
    static const char *const order[] = { "share", "conf", "extmem", "offset" };
    struct nmreq_opt_parser *offset = find_parser(parsers, "offset");
    struct lnm_parse *p;
    int rc = 0;

    ctx = ctx ? ctx : nmctx_get();
    if (*opt == '\0')
        return 0;
    if (*opt != '@') {
        nmctx_ferror(ctx, "option list does not start with '@'");
        return lnm_fail(EINVAL);
    }
    p = lnm_parse(ctx, LNM_STANDIN, opt, strlen(opt),
                  offset != NULL && !(offset->flags & NMREQ_OPTF_DISABLED));
    if (p == NULL)
        return -1;
    if (p->rc < 0) {
        nmctx_ferror(ctx, "%s", p->err.message);
        rc = lnm_fail(p->err.errnum ? p->err.errnum : EINVAL);
    }
    for (size_t i = 0; rc == 0 && i < sizeof(order) / sizeof(order[0]); i++) {
        struct nmreq_opt_parser *q;
        if (!option_given(&p->spec, order[i]))
            continue;
        q = find_parser(parsers, order[i]);
        if (q == NULL) {
            nmctx_ferror(ctx, "unknown option: '%s'", order[i]);
            rc = lnm_fail(EINVAL);
        } else if (q->flags & NMREQ_OPTF_DISABLED) {
            nmctx_ferror(ctx, "option '%s' is not supported", order[i]);
            rc = lnm_fail(EOPNOTSUPP);
        } else if (q->parse != NULL) {
            rc = run_parser(q, p, opt, token, ctx);
        }
    }
    lnm_parse_free(ctx, p);
    return rc;
}
