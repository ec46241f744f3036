/*
 * portspec_options.c -- libnetmap's option list ("@conf:rings=4",
 * "@share=vale0:a", "@extmem:file=/f,if-num=2", "@offset=64"): its syntax
 * (one table of options and their keys) and what each option records.
 * Nothing is opened: @extmem keeps its file name, @share its port name.
 */
#include "portspec_int.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#define MAX_KEYS 9

/* The keys an option was given with a value: where each value is. */
struct found {
    bool set[MAX_KEYS];
    size_t pos[MAX_KEYS], len[MAX_KEYS];
    size_t key_pos[MAX_KEYS], key_len[MAX_KEYS];    /* the key as typed (len 0: not typed) */
};

struct option_def {
    const char *name;
    const char *keys[MAX_KEYS];         /* NULL-terminated */
    int default_key;                    /* the key "@name=value" assigns, or -1 */
    bool needs_offsets;                 /* refused (EOPNOTSUPP) without NMC_PORTSPEC_OFFSETS */
    int (*apply)(struct ps_ctx *c, const struct found *f);
};

/* @conf's keys: the generic ones first, then the per-direction ones in
 * the order of the conf_given bits. */
enum { CONF_RINGS, CONF_HOST_RINGS, CONF_SLOTS, CONF_GENERIC, CONF_SPECIFIC = 6 };

static int apply_conf(struct ps_ctx *c, const struct found *f);
static int apply_share(struct ps_ctx *c, const struct found *f);
static int apply_extmem(struct ps_ctx *c, const struct found *f);
static int apply_offset(struct ps_ctx *c, const struct found *f);

static const struct option_def options[] = {
    {"share", {"port"}, 0, false, apply_share},
    {"conf", {"rings", "host_rings", "slots", "tx_rings", "rx_rings", "host_tx_rings",
              "host_rx_rings", "tx_slots", "rx_slots"}, -1, false, apply_conf},
    {"extmem", {"file", "if_num", "if_size", "ring_num", "ring_size", "buf_num", "buf_size"},
     0, false, apply_extmem},
    {"offset", {"initial", "bits"}, 0, true, apply_offset},
};

/* --------------------------------------------------------------------------
 * values */

/* A value that must be a decimal number in [0, limit]; what names it in
 * messages ("option 'conf': key 'rings'"). */
static int decimal_value(struct ps_ctx *c, const struct found *f, int key, uint64_t limit,
                         const char *what, uint64_t *out)
{
    const char *value = c->text + f->pos[key];
    size_t len = f->len[key];
    uint64_t number = 0;

    for (size_t i = 0; i < len; i++)
        if (!ps_is_digit(value[i]))
            return ps_fail(c, EINVAL, f->pos[key], "%s: invalid number '%.*s'", what, (int)len, value);
    for (size_t i = 0; i < len; i++) {
        unsigned digit = (unsigned)(value[i] - '0');

        if (number > (limit - digit) / 10)
            return ps_fail(c, EINVAL, f->pos[key], "%s: '%.*s' out of range [0, %llu]", what,
                           (int)len, value, (unsigned long long)limit);
        number = number * 10 + digit;
    }
    *out = number;
    return 0;
}

static int key_value(struct ps_ctx *c, const struct found *f, const char *option, int key,
                     const char *key_name, uint64_t limit, uint64_t *out)
{
    char what[64];

    if (f->key_len[key])                /* the user's spelling ("host-rings"), not ours */
        snprintf(what, sizeof(what), "option '%s': key '%.*s'", option, (int)f->key_len[key],
                 c->text + f->key_pos[key]);
    else
        snprintf(what, sizeof(what), "option '%s': key '%s'", option, key_name);
    return decimal_value(c, f, key, limit, what, out);
}

static void set_conf(struct nmc_portspec *out, int specific, uint64_t value)
{
    switch (specific) {
    case 0: out->conf_tx_rings = (uint16_t)value; break;
    case 1: out->conf_rx_rings = (uint16_t)value; break;
    case 2: out->conf_host_tx_rings = (uint16_t)value; break;
    case 3: out->conf_host_rx_rings = (uint16_t)value; break;
    case 4: out->conf_tx_slots = (uint32_t)value; break;
    default: out->conf_rx_slots = (uint32_t)value; break;
    }
    out->conf_given |= 1u << specific;
}

/* The specific keys win over the generic ones (rings sets tx_rings and
 * rx_rings, ...); a later @conf overrides an earlier one. */
static int apply_conf(struct ps_ctx *c, const struct found *f)
{
    uint64_t value;
    int ret;

    for (int key = 0; key < CONF_GENERIC + CONF_SPECIFIC; key++) {
        bool slots = key == CONF_SLOTS || key >= CONF_GENERIC + 4;
        int target = key < CONF_GENERIC ? 2 * key : key - CONF_GENERIC;

        if (!f->set[key])
            continue;
        if ((ret = key_value(c, f, "conf", key, options[1].keys[key], slots ? UINT32_MAX : UINT16_MAX,
                             &value)) < 0)
            return ret;
        set_conf(c->out, target, value);
        if (key < CONF_GENERIC)
            set_conf(c->out, target + 1, value);
    }
    return 0;
}

/* The port is checked as far as its name goes (nmport_header). */
static int apply_share(struct ps_ctx *c, const struct found *f)
{
    struct ps_ctx port = {
        .text = c->text + f->pos[0], .len = f->len[0], .out = c->out, .err = c->err,
        .msg_prefix = "option 'share': ", .pos_base = c->pos_base + f->pos[0],
    };
    size_t start, end;
    int subsys, ret;

    if ((ret = ps_nmport_header(&port, &subsys, &start, &end)) < 0)
        return ret;
    if (c->out->share_given && (strlen(c->out->share) != port.len ||
                                memcmp(c->out->share, port.text, port.len) != 0))
        return ps_fail(c, EINVAL, f->pos[0], "option 'share': already set to '%s'", c->out->share);
    memcpy(c->out->share, port.text, port.len);
    c->out->share[port.len] = '\0';
    c->out->share_given = true;
    return 0;
}

static int apply_extmem(struct ps_ctx *c, const struct found *f)
{
    const struct option_def *def = &options[2];
    uint64_t value[NMC_PORTSPEC_EXTMEM_KEYS] = {0};
    struct nmc_portspec *out = c->out;
    int ret;

    if (out->extmem_given)
        return ps_fail(c, EINVAL, f->pos[0], "option 'extmem': extmem already in use");
    for (int key = 1; key < NMC_PORTSPEC_EXTMEM_KEYS; key++)
        if (f->set[key] && (ret = key_value(c, f, "extmem", key, def->keys[key], UINT32_MAX,
                                            &value[key])) < 0)
            return ret;
    for (int key = 0; key < NMC_PORTSPEC_EXTMEM_KEYS; key++) {
        if (!f->set[key])
            continue;
        out->extmem_given_keys |= 1u << key;
        out->extmem_span[key] = (struct nmc_portspec_span){(uint32_t)(c->pos_base + f->pos[key]),
                                                           (uint32_t)f->len[key]};
    }
    memcpy(out->extmem_file, c->text + f->pos[0], f->len[0]);
    out->extmem_file[f->len[0]] = '\0';
    out->extmem_if_num = (uint32_t)value[NMC_PORTSPEC_EXTMEM_IF_NUM];
    out->extmem_if_size = (uint32_t)value[NMC_PORTSPEC_EXTMEM_IF_SIZE];
    out->extmem_ring_num = (uint32_t)value[NMC_PORTSPEC_EXTMEM_RING_NUM];
    out->extmem_ring_size = (uint32_t)value[NMC_PORTSPEC_EXTMEM_RING_SIZE];
    out->extmem_buf_num = (uint32_t)value[NMC_PORTSPEC_EXTMEM_BUF_NUM];
    out->extmem_buf_size = (uint32_t)value[NMC_PORTSPEC_EXTMEM_BUF_SIZE];
    out->extmem_given = true;
    return 0;
}

static int apply_offset(struct ps_ctx *c, const struct found *f)
{
    uint64_t initial, bits = 0;
    int ret;

    if (c->out->offset_given)
        return ps_fail(c, EINVAL, f->pos[0], "option 'offset': offset already in use");
    if ((ret = key_value(c, f, "offset", 0, "initial", UINT64_MAX, &initial)) < 0 ||
        (f->set[1] && (ret = key_value(c, f, "offset", 1, "bits", UINT32_MAX, &bits)) < 0))
        return ret;
    c->out->offset_initial = initial;
    c->out->offset_bits = (uint32_t)bits;
    c->out->offset_given = true;
    return 0;
}

/* --------------------------------------------------------------------------
 * syntax */

static int key_index(const struct option_def *def, const char *key)
{
    for (int i = 0; i < MAX_KEYS && def->keys[i]; i++)
        if (strcmp(def->keys[i], key) == 0)
            return i;
    return -1;
}

/* "key=value" in text[start, end); '-' in a key means '_'; "key=" leaves
 * the key unset, as libnetmap. */
static int parse_key(struct ps_ctx *c, const struct option_def *def, size_t start, size_t end,
                     struct found *f)
{
    const char *equal = memchr(c->text + start, '=', end - start);
    size_t key_end = equal ? (size_t)(equal - c->text) : end;
    const char *as_typed = c->text + start;
    int index, typed = (int)(key_end - start);
    char key[NMC_PORTSPEC_TEXT_MAX];

    for (size_t i = start; i < key_end; i++)
        key[i - start] = c->text[i] == '-' ? '_' : c->text[i];
    key[key_end - start] = '\0';
    if (key_end == start)
        return ps_fail(c, EINVAL, start, "option '%s': empty key", def->name);
    if ((index = key_index(def, key)) < 0)
        return ps_fail(c, EINVAL, start, "unknown key: '%.*s'", typed, as_typed);
    if (f->set[index])
        return ps_fail(c, EINVAL, start, "option '%s': duplicate key '%.*s', already set to '%.*s'",
                       def->name, typed, as_typed, (int)f->len[index], c->text + f->pos[index]);
    if (!equal)
        return ps_fail(c, EINVAL, end, "option '%s': missing '=value' for key '%.*s'", def->name,
                       typed, as_typed);
    if (key_end + 1 < end) {
        f->set[index] = true;
        f->pos[index] = key_end + 1;
        f->len[index] = end - key_end - 1;
        f->key_pos[index] = start;
        f->key_len[index] = key_end - start;
    }
    return 0;
}

/* The body after the option's name: ":key=value,..." or "=value". */
static int read_body(struct ps_ctx *c, const struct option_def *def, size_t delim, size_t end,
                     struct found *f)
{
    int ret;

    if (delim == end)
        return ps_fail(c, EINVAL, end, "syntax error: missing body after '%s'", def->name);
    if (c->text[delim] == ':') {
        for (size_t pos = delim + 1; pos < end;) {
            const char *comma = memchr(c->text + pos, ',', end - pos);
            size_t item_end = comma ? (size_t)(comma - c->text) : end;

            if ((ret = parse_key(c, def, pos, item_end, f)) < 0)
                return ret;
            if (!comma)
                break;
            pos = item_end + 1;
            if (pos == end)             /* a trailing ',' leaves an empty last key */
                return ps_fail(c, EINVAL, pos, "option '%s': empty key", def->name);
        }
        return 0;
    }
    if (def->default_key < 0)
        return ps_fail(c, EINVAL, delim, "syntax error: '=' not valid after '%s'", def->name);
    if (delim + 1 == end)
        return ps_fail(c, EINVAL, end, "missing value for option '%s'", def->name);
    f->set[def->default_key] = true;
    f->pos[def->default_key] = delim + 1;
    f->len[def->default_key] = end - delim - 1;
    return 0;
}

static const struct option_def *find_option(const char *name, size_t len)
{
    for (size_t i = 0; i < sizeof(options) / sizeof(options[0]); i++)
        if (strlen(options[i].name) == len && memcmp(options[i].name, name, len) == 0)
            return &options[i];
    return NULL;
}

/* One option, text[start, end) (after its '@'). */
static int parse_option(struct ps_ctx *c, size_t start, size_t end, bool accept_offsets)
{
    size_t delim = ps_find_any(c, ":=", start, end);
    const struct option_def *def = find_option(c->text + start, delim - start);
    struct found f = {0};
    int ret;

    if (!def)
        return ps_fail(c, EINVAL, start, "unknown option: '%.*s'", (int)(delim - start), c->text + start);
    if (def->needs_offsets && !accept_offsets)
        return ps_fail(c, EOPNOTSUPP, start, "option '%s' is not supported", def->name);
    if ((ret = read_body(c, def, delim, end, &f)) < 0)
        return ret;
    if (def->default_key >= 0 && !f.set[def->default_key])   /* the default key is the mandatory one */
        return ps_fail(c, EINVAL, start, "option '%s': mandatory key '%s' not assigned", def->name,
                       def->keys[def->default_key]);
    return def->apply(c, &f);
}

int ps_parse_options(struct ps_ctx *c, size_t pos, bool accept_offsets)
{
    int ret;

    while (pos < c->len) {
        size_t start = pos + 1;
        const char *at = start < c->len ? memchr(c->text + start, '@', c->len - start) : NULL;
        size_t end = at ? (size_t)(at - c->text) : c->len;

        if (end == start)
            return ps_fail(c, EINVAL, start, "invalid empty option");
        if ((ret = parse_option(c, start, end, accept_offsets)) < 0)
            return ret;
        pos = end;
    }
    return 0;
}
