/*
 * portspec.c -- nmc_portspec_parse: a port name in libnetmap's grammar
 * (nmport_parse) or the legacy one (nm_parse/nm_open) turned into the
 * register request the kernel would receive.  The grammars are documented
 * in nmcompat/_portspec.py; the pieces are in portspec_name.c (names),
 * portspec_scan.c (register suffix) and portspec_options.c (options).
 */
#include "portspec_int.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <net/netmap.h>

/* The kernel name text[start, end), with the legacy pipe number appended:
 * "x{3" is NR_REG_ALL_NIC on the pipe named "x{3", as the kernel's legacy
 * path makes it. */
static void set_name(struct ps_ctx *c, size_t start, size_t end, struct ps_scan *s)
{
    struct nmc_portspec *out = c->out;

    memcpy(out->nr_name, c->text + start, end - start);
    out->nr_name[end - start] = '\0';
    if (s->mode == NR_REG_PIPE_MASTER || s->mode == NR_REG_PIPE_SLAVE) {
        snprintf(out->nr_name + (end - start), sizeof(out->nr_name) - (end - start), "%c%u",
                 s->mode == NR_REG_PIPE_MASTER ? '{' : '}', s->ringid);
        s->mode = NR_REG_ALL_NIC;
        s->ringid = 0;
    }
}

static void set_register(struct nmc_portspec *out, const struct ps_scan *s)
{
    out->nr_mode = s->mode;
    out->nr_ringid = s->ringid;
    out->nr_flags = s->flags;
    out->mem_id = s->mem_id;
    nmc_portname_split(out->nr_name, &out->name);
}

static int parse_nmport(struct ps_ctx *c, bool accept_offsets)
{
    struct ps_scan s = {.c = c, .mode = NR_REG_ALL_NIC};
    size_t start, end;
    int ret;

    if ((ret = ps_nmport_header(c, &c->out->subsys, &start, &end)) < 0)
        return ret;
    s.pos = end;
    if ((ret = ps_scan_register(&s)) < 0 || (ret = ps_parse_options(c, s.pos, accept_offsets)) < 0)
        return ret;
    set_name(c, start, end, &s);
    set_register(c->out, &s);
    if (c->out->name.pipe_role != NMC_PORTSPEC_PIPE_NONE &&
        s.mode != NR_REG_ALL_NIC && s.mode != NR_REG_ONE_NIC)
        return ps_fail(c, EINVAL, s.mode_pos, "a pipe accepts only the all-rings or one-ring-pair mode");
    return 0;
}

static int parse_legacy(struct ps_ctx *c)
{
    struct ps_scan s = {.c = c, .legacy = true, .mode = NR_REG_ALL_NIC};
    size_t start, end;
    int ret;

    if ((ret = ps_legacy_header(c, &start, &end)) < 0)
        return ret;
    s.pos = end;
    if ((ret = ps_scan_register(&s)) < 0)
        return ret;
    set_name(c, start, end, &s);
    set_register(c->out, &s);
    return 0;
}

/* Refuse a text that the fixed buffers could not hold, at the start of
 * the character that reaches the limit. */
static int check_text_size(struct ps_ctx *c)
{
    size_t at = NMC_PORTSPEC_TEXT_MAX - 1;

    if (c->len < NMC_PORTSPEC_TEXT_MAX)
        return 0;
    while (at > 0 && ((unsigned char)c->text[at] & 0xC0) == 0x80)
        at--;
    return ps_fail(c, EINVAL, at, "port name too long (%d bytes at most)", NMC_PORTSPEC_TEXT_MAX - 1);
}

int nmc_portspec_parse(const char *text, int grammar, struct nmc_portspec *out,
                       struct nmc_portspec_error *err)
{
    int base = grammar & ~NMC_PORTSPEC_OFFSETS;
    struct ps_ctx c = {
        .text = text, .len = strnlen(text, NMC_PORTSPEC_TEXT_MAX), .out = out, .err = err,
        .msg_prefix = "",
    };
    int ret;

    memset(out, 0, sizeof(*out));
    memset(err, 0, sizeof(*err));
    if (base != NMC_PORTSPEC_NMPORT && base != NMC_PORTSPEC_LEGACY)
        return ps_fail(&c, EINVAL, 0, "unknown port-name grammar %d", grammar);
    if (base == NMC_PORTSPEC_LEGACY && grammar != base)
        return ps_fail(&c, EINVAL, 0, "the legacy grammar has no options to accept");
    out->grammar = base;
    if ((ret = check_text_size(&c)) < 0)
        return ret;
    ret = base == NMC_PORTSPEC_NMPORT ? parse_nmport(&c, grammar & NMC_PORTSPEC_OFFSETS) : parse_legacy(&c);
    if (ret < 0)
        memset(out, 0, sizeof(*out));  /* nothing half-parsed */
    return ret;
}
