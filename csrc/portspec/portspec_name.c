/*
 * portspec_name.c -- the name part of a port name (prefix, bridge, port
 * and pipe ids, length) in both grammars, and the split of kernel names.
 */
#define _GNU_SOURCE                     /* memrchr */
#include "portspec_int.h"

#include <errno.h>
#include <string.h>

#define LEGACY_NAMSIZ 16                /* IFNAMSIZ */
#define NMPORT_STOP "-*^/@"
#define LEGACY_STOP "-*^{}/@"

/* Refuse text[start, end) when it takes size bytes or more; the position
 * is the character that reaches size.  The message quotes the name when
 * quote_name. */
static int check_length(struct ps_ctx *c, size_t start, size_t end, size_t size, bool quote_name)
{
    size_t at = start + size - 1;

    if (end - start < size)
        return 0;
    while (at > start && ((unsigned char)c->text[at] & 0xC0) == 0x80)
        at--;
    if (quote_name)
        return ps_fail(c, EINVAL, at, "name '%.*s' too long", (int)(end - start), c->text + start);
    return ps_fail(c, EINVAL, at, "name too long");
}

static bool starts_with(const struct ps_ctx *c, const char *prefix)
{
    size_t n = strlen(prefix);

    return c->len >= n && memcmp(c->text, prefix, n) == 0;
}

static const char *find_char(const struct ps_ctx *c, char ch, size_t from)
{
    return from < c->len ? memchr(c->text + from, ch, c->len - from) : NULL;
}

/* "netmap" takes nothing before its ':', "vale" an identifier. */
static int check_subsys_id(struct ps_ctx *c, size_t prefix_len, bool allow_id, size_t colon)
{
    size_t bad;

    if (colon > prefix_len && !allow_id)
        return ps_fail(c, EINVAL, prefix_len, "no identifier allowed between '%.*s' and ':'",
                       (int)prefix_len, c->text);
    bad = ps_first_non_ident(c, prefix_len, colon);
    if (bad != colon)
        return ps_fail(c, EINVAL, bad, "invalid identifier '%.*s'", (int)(colon - prefix_len),
                       c->text + prefix_len);
    return 0;
}

/* The first brace of text[start, end) starts a pipe id: an identifier. */
static int check_pipe_id(struct ps_ctx *c, size_t start, size_t end)
{
    size_t brace = ps_find_any(c, "{}", start, end), bad;

    if (brace == end)
        return 0;
    if (brace + 1 == end)
        return ps_fail(c, EINVAL, brace + 1, "invalid empty pipe name");
    bad = ps_first_non_ident(c, brace + 1, end);
    if (bad != end)
        return ps_fail(c, EINVAL, bad, "invalid pipe name '%.*s'", (int)(end - brace - 1),
                       c->text + brace + 1);
    return 0;
}

int ps_nmport_header(struct ps_ctx *c, int *subsys, size_t *start, size_t *end)
{
    bool vale = starts_with(c, "vale");
    size_t prefix_len = vale ? 4 : 6;
    const char *colon_at;
    size_t colon;
    int ret;

    /* A name with no ':' at all was written without its prefix (x{1, as
     * netmap's docs write pipes): show it with one.  One with a ':' has a
     * misspelled prefix, which no suggestion of ours would fix. */
    if (!vale && !starts_with(c, "netmap") && (c->len == 0 || find_char(c, ':', 0)))
        return ps_fail(c, EINVAL, 0, "invalid request, prefix unknown or missing "
                       "(a port name starts with 'netmap:' or 'vale')");
    if (!vale && !starts_with(c, "netmap"))
        return ps_fail(c, EINVAL, 0, "invalid request, prefix unknown or missing "
                       "(a port name starts with 'netmap:' or 'vale': 'netmap:%.*s')",
                       (int)c->len, c->text);
    if (!(colon_at = find_char(c, ':', prefix_len)))
        return ps_fail(c, EINVAL, c->len, "missing ':'");
    colon = (size_t)(colon_at - c->text);
    if ((ret = check_subsys_id(c, prefix_len, vale, colon)) < 0)
        return ret;
    *subsys = vale ? NMC_PORTSPEC_VALE : NMC_PORTSPEC_NETMAP;
    *start = vale ? 0 : colon + 1;
    *end = ps_find_any(c, NMPORT_STOP, colon + 1, c->len);
    if ((ret = check_pipe_id(c, colon + 1, *end)) < 0 ||
        (ret = check_length(c, *start, *end, NMC_PORTSPEC_NAMSIZ, true)) < 0)
        return ret;
    if (*end == *start)
        return ps_fail(c, EINVAL, *start, "invalid empty port name");
    return 0;
}

/* "valeX:Y": bridge and port are identifiers; the kernel name is all of it. */
static int legacy_vale_header(struct ps_ctx *c, size_t *end)
{
    const char *colon_at = find_char(c, ':', 0);
    size_t colon, bad;
    int ret;

    if (!colon_at)
        return ps_fail(c, EINVAL, c->len, "missing ':' in vale name");
    colon = (size_t)(colon_at - c->text);
    if ((bad = ps_first_non_ident(c, 4, colon)) != colon)
        return ps_fail(c, EINVAL, bad, "invalid bridge name");
    *end = ps_find_any(c, LEGACY_STOP, colon + 1, c->len);
    if ((bad = ps_first_non_ident(c, colon + 1, *end)) != *end)
        return ps_fail(c, EINVAL, bad, "invalid bridge port name");
    if ((ret = check_length(c, 0, *end, LEGACY_NAMSIZ, false)) < 0)
        return ret;
    c->out->subsys = NMC_PORTSPEC_VALE;
    return 0;
}

int ps_legacy_header(struct ps_ctx *c, size_t *start, size_t *end)
{
    int ret;

    *start = 0;
    if (starts_with(c, "vale"))
        return legacy_vale_header(c, end);
    if (!starts_with(c, "netmap:"))
        return ps_fail(c, 0, 0, "name not recognised (it must start with 'netmap:' or 'vale')");
    *start = 7;
    *end = ps_find_any(c, LEGACY_STOP, 7, c->len);
    if ((ret = check_length(c, 7, *end, LEGACY_NAMSIZ, false)) < 0)
        return ret;
    c->out->subsys = NMC_PORTSPEC_NETMAP;
    return 0;
}

/* dst = src[0, n) as a string (n below NMC_PORTSPEC_NAMSIZ). */
static void copy_piece(char *dst, const char *src, size_t n)
{
    memcpy(dst, src, n);
    dst[n] = '\0';
}

static void split_vale(struct nmc_portname *out)
{
    char *colon = strchr(out->parent, ':');

    out->val_prefix = strncmp(out->parent, "val", 3) == 0;
    out->vale = out->val_prefix && colon != NULL;
    if (!out->vale)
        return;
    copy_piece(out->vale_switch, out->parent, (size_t)(colon - out->parent));
    strcpy(out->vale_port, colon + 1);
}

int nmc_portname_split(const char *nr_name, struct nmc_portname *out)
{
    size_t len = strnlen(nr_name, NMC_PORTSPEC_NAMSIZ);
    const char *brace;

    memset(out, 0, sizeof(*out));
    if (len == 0 || len == NMC_PORTSPEC_NAMSIZ)
        return -EINVAL;
    brace = memrchr(nr_name, '{', len);         /* '{' first, as netmap_get_pipe_na */
    if (!brace)
        brace = memrchr(nr_name, '}', len);
    if (brace) {
        copy_piece(out->parent, nr_name, (size_t)(brace - nr_name));
        copy_piece(out->pipe_id, brace + 1, len - (size_t)(brace - nr_name) - 1);
        out->pipe_role = *brace == '{' ? NMC_PORTSPEC_PIPE_MASTER : NMC_PORTSPEC_PIPE_SLAVE;
    } else {
        copy_piece(out->parent, nr_name, len);
    }
    split_vale(out);
    return 0;
}
