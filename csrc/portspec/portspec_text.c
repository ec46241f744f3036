/*
 * portspec_text.c -- the port-name parser's small pieces: errors with
 * their position, character classes, and the two ways of reading numbers
 * (plain decimal for libnetmap's grammar, strtol() for the legacy one).
 */
#include "portspec_int.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int ps_fail(struct ps_ctx *c, int errnum, size_t pos, const char *fmt, ...)
{
    struct nmc_portspec_error *err = c->err;
    size_t used;
    va_list ap;

    err->errnum = errnum;
    err->position = (uint32_t)(c->pos_base + pos);
    used = (size_t)snprintf(err->message, sizeof(err->message), "%s", c->msg_prefix);
    if (used < sizeof(err->message)) {
        va_start(ap, fmt);
        vsnprintf(err->message + used, sizeof(err->message) - used, fmt, ap);
        va_end(ap);
    }
    return errnum ? -errnum : -ENOENT;
}

bool ps_is_digit(char ch)
{
    return ch >= '0' && ch <= '9';
}

bool ps_is_ident(char ch)
{
    return ps_is_digit(ch) || (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || ch == '_';
}

size_t ps_find_any(const struct ps_ctx *c, const char *chars, size_t start, size_t end)
{
    for (size_t i = start; i < end; i++)
        if (strchr(chars, c->text[i]))
            return i;
    return end;
}

size_t ps_first_non_ident(const struct ps_ctx *c, size_t start, size_t end)
{
    for (size_t i = start; i < end; i++)
        if (!ps_is_ident(c->text[i]))
            return i;
    return end;
}

size_t ps_char_len(const struct ps_ctx *c, size_t pos)
{
    unsigned char lead = (unsigned char)c->text[pos];
    size_t n = lead < 0xC0 ? 1 : lead < 0xE0 ? 2 : lead < 0xF0 ? 3 : 4;

    return pos + n <= c->len ? n : c->len - pos;
}

long long ps_read_decimal(const struct ps_ctx *c, size_t pos, size_t *end)
{
    long long value = 0;

    for (; pos < c->len && ps_is_digit(c->text[pos]); pos++) {
        int digit = c->text[pos] - '0';

        value = value > (LLONG_MAX - digit) / 10 ? LLONG_MAX : value * 10 + digit;
    }
    *end = pos;
    return value;
}

long long ps_strtol(const struct ps_ctx *c, size_t pos, size_t *end)
{
    size_t start = pos;
    long long value;
    bool negative = false;

    while (start < c->len && strchr(" \t\n\v\f\r", c->text[start]) && c->text[start])
        start++;
    if (start < c->len && (c->text[start] == '-' || c->text[start] == '+'))
        negative = c->text[start++] == '-';
    value = ps_read_decimal(c, start, end);
    if (*end == start) {
        *end = pos;
        return 0;
    }
    return negative ? -value : value;
}
