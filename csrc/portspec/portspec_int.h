/*
 * portspec_int.h -- what the files of the port-name parser share: the
 * cursor over the text, the error helper and the number readers.
 */
#ifndef NMC_PORTSPEC_INT_H
#define NMC_PORTSPEC_INT_H

#include "nmcompat_portspec.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The text being parsed, where errors go, and how they are worded: a
 * nested parse (the port of "@share") reports with a prefix and at an
 * offset into the outer text. */
struct ps_ctx {
    const char *text;
    size_t len;
    struct nmc_portspec *out;
    struct nmc_portspec_error *err;
    const char *msg_prefix;             /* "" or "option 'share': " */
    size_t pos_base;                    /* where text starts in the outer text */
};

/* Fill ctx->err (message printf-style, after ctx's prefix) and return
 * -errnum, or -ENOENT for errnum 0. */
int ps_fail(struct ps_ctx *c, int errnum, size_t pos, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

bool ps_is_digit(char ch);
bool ps_is_ident(char ch);
/* Index of the first byte of text[start, end) in chars, else end. */
size_t ps_find_any(const struct ps_ctx *c, const char *chars, size_t start, size_t end);
/* Index of the first byte of text[start, end) outside [A-Za-z0-9_], else end. */
size_t ps_first_non_ident(const struct ps_ctx *c, size_t start, size_t end);
/* Bytes of the UTF-8 character starting at pos (at least 1, within the text). */
size_t ps_char_len(const struct ps_ctx *c, size_t pos);

/* The digits at pos as a value saturated at LLONG_MAX; *end after them. */
long long ps_read_decimal(const struct ps_ctx *c, size_t pos, size_t *end);
/* A number read as C strtol(): spaces, a sign, digits (saturated at
 * +-LLONG_MAX); without digits 0 and *end = pos. */
long long ps_strtol(const struct ps_ctx *c, size_t pos, size_t *end);

/* The nmport name header: the prefix, "[id]:" and the name up to the
 * register suffix.  *subsys is NMC_PORTSPEC_NETMAP or _VALE, the kernel
 * name is text[*start, *end) (checked: not empty, below NAMSIZ bytes). */
int ps_nmport_header(struct ps_ctx *c, int *subsys, size_t *start, size_t *end);

/* The legacy name header ("netmap:IF" or "valeX:Y"); fills out->subsys,
 * the kernel name is text[*start, *end). */
int ps_legacy_header(struct ps_ctx *c, size_t *start, size_t *end);

/* The register suffix: scanned from pos; on success pos is the end of
 * the text or (nmport) the '@' that opens the option list. */
struct ps_scan {
    struct ps_ctx *c;
    size_t pos;
    bool legacy;
    uint32_t mode;                      /* NR_REG_*, NR_REG_ALL_NIC until a modifier */
    size_t mode_pos;                    /* where the modifier is */
    uint16_t ringid;
    uint64_t flags;
    uint16_t mem_id;
};

int ps_scan_register(struct ps_scan *s);

/* The nmport option list from pos (an '@', or the end). */
int ps_parse_options(struct ps_ctx *c, size_t pos, bool accept_offsets);

#endif /* NMC_PORTSPEC_INT_H */
