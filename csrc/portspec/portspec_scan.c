/*
 * portspec_scan.c -- the register suffix of a port name (ring selection,
 * "/flags", "@memid") in both grammars: one state machine, each state a
 * function that consumes input and returns the next state (or -errno).
 */
#include "portspec_int.h"

#include <errno.h>
#include <net/netmap.h>

#define RING_LIMIT 0x0FFF               /* NETMAP_RING_MASK; valid ids are below it */
#define MEMID_MAX  0xFFFF               /* nr_mem_id is 16 bits wide */

enum scan_state {
    ST_START,                           /* nothing of the suffix yet */
    ST_RING_DONE,                       /* after an item: '/' or '@' may follow */
    ST_ONE_SW,                          /* after '^' (nmport): a ring number may follow */
    ST_NUMBER,                          /* a ring (or legacy pipe) number is due */
    ST_FLAGS,                           /* after '/': a flag or '@' is due */
    ST_FLAGS_OK,                        /* after a flag */
    ST_MEMID,                           /* after '@' */
    ST_OPTIONS,                         /* the nmport option list starts at pos */
};

static int ps_scan_step(struct ps_scan *s, int state);

static int quote_char(struct ps_scan *s, const char *what, size_t at)
{
    return ps_fail(s->c, EINVAL, at, "%s: '%.*s'", what, (int)ps_char_len(s->c, at), s->c->text + at);
}

static char take(struct ps_scan *s)
{
    return s->c->text[s->pos++];
}

static char peek(const struct ps_scan *s)
{
    return s->pos < s->c->len ? s->c->text[s->pos] : '\0';
}

static int suffix_start(struct ps_scan *s, char ch, const char *complaint)
{
    if (ch == '/')
        return ST_FLAGS;
    if (ch == '@')
        return ST_MEMID;
    return quote_char(s, complaint, s->pos - 1);
}

static int st_start(struct ps_scan *s)
{
    char ch = take(s);

    s->mode_pos = s->pos - 1;
    switch (ch) {
    case '^':
        s->mode = NR_REG_SW;
        return s->legacy ? ST_RING_DONE : ST_ONE_SW;
    case '*':
        s->mode = NR_REG_NIC_SW;
        return ST_RING_DONE;
    case '-':
        s->mode = NR_REG_ONE_NIC;
        return ST_NUMBER;
    case '{':
    case '}':
        if (!s->legacy)
            break;
        s->mode = ch == '{' ? NR_REG_PIPE_MASTER : NR_REG_PIPE_SLAVE;
        return ST_NUMBER;
    }
    return suffix_start(s, ch, "unknown modifier");
}

static int st_one_sw(struct ps_scan *s)
{
    if (!ps_is_digit(peek(s)))
        return ST_RING_DONE;
    s->mode = NR_REG_ONE_SW;
    return ST_NUMBER;
}

static int st_number(struct ps_scan *s)
{
    size_t start = s->pos;
    long long number;

    if (s->legacy)
        number = ps_strtol(s->c, start, &s->pos);
    else if (ps_is_digit(peek(s)))
        number = ps_read_decimal(s->c, start, &s->pos);
    else
        return ps_fail(s->c, EINVAL, s->pos, "got '%.*s' while expecting a number",
                       (int)(s->c->len - s->pos), s->c->text + s->pos);
    if (number < 0 || number >= RING_LIMIT)
        return ps_fail(s->c, EINVAL, start, "'%lld' out of range [0, %d)", number, RING_LIMIT);
    s->ringid = (uint16_t)number;
    return ST_RING_DONE;
}

static uint64_t flag_bit(char ch)
{
    switch (ch) {
    case 'x': return NR_EXCLUSIVE;
    case 'z': return NR_ZCOPY_MON;
    case 't': return NR_MONITOR_TX;
    case 'r': return NR_MONITOR_RX;
    case 'R': return NR_RX_RINGS_ONLY;
    case 'T': return NR_TX_RINGS_ONLY;
    }
    return 0;
}

static int st_flag(struct ps_scan *s)
{
    char ch = take(s);
    uint64_t bit = flag_bit(ch);

    if (ch == '@')
        return ST_MEMID;
    if (!bit)
        return quote_char(s, "unrecognized flag", s->pos - 1);
    s->flags |= bit;
    return ST_FLAGS_OK;
}

static int legacy_memid(struct ps_scan *s)
{
    size_t start = s->pos;
    long long number;

    if (s->mem_id)
        return ps_fail(s->c, EINVAL, s->pos - 1, "double setting of memid");
    number = ps_strtol(s->c, start, &s->pos);
    if (number <= 0)
        return ps_fail(s->c, EINVAL, start, "invalid memid %lld, must be >0", number);
    if (number > MEMID_MAX)
        return ps_fail(s->c, EINVAL, start, "memid %lld out of range [1, %d]", number, MEMID_MAX);
    s->mem_id = (uint16_t)number;
    return ST_RING_DONE;
}

static int st_memid(struct ps_scan *s)
{
    size_t start = s->pos;
    long long number;

    if (s->legacy)
        return legacy_memid(s);
    if (!ps_is_digit(peek(s))) {
        s->pos--;                       /* the '@' opens the option list */
        return ST_OPTIONS;
    }
    number = ps_read_decimal(s->c, start, &s->pos);
    if (number <= 0 || number > MEMID_MAX)
        return ps_fail(s->c, EINVAL, start, "invalid mem_id: '%lld'", number);
    if (s->mem_id && s->mem_id != number)
        return ps_fail(s->c, EINVAL, start, "invalid setting of mem_id to %lld (already set to %u)",
                       number, s->mem_id);
    s->mem_id = (uint16_t)number;
    return ST_RING_DONE;
}

static int ps_scan_step(struct ps_scan *s, int state)
{
    switch (state) {
    case ST_START:
        return st_start(s);
    case ST_ONE_SW:
        return st_one_sw(s);
    case ST_NUMBER:
        return st_number(s);
    case ST_FLAGS:
    case ST_FLAGS_OK:
        return st_flag(s);
    case ST_MEMID:
        return st_memid(s);
    }
    return suffix_start(s, take(s), "unexpected character");        /* ST_RING_DONE */
}

/* Run the machine from s->pos to the end of the text or of the suffix. */
static int scan_run(struct ps_scan *s)
{
    int state = ST_START;

    while (state >= 0 && state != ST_OPTIONS && s->pos < s->c->len)
        state = ps_scan_step(s, state);
    return state;
}

int ps_scan_register(struct ps_scan *s)
{
    int state = scan_run(s);

    if (state < 0)
        return state;
    if (s->legacy) {
        if (state != ST_START && state != ST_RING_DONE && state != ST_FLAGS_OK)
            return ps_fail(s->c, EINVAL, s->pos, "unexpected end of port name");
        return 0;
    }
    if (state == ST_MEMID)
        return ps_fail(s->c, EINVAL, s->pos, "invalid empty mem_id");
    if (state == ST_NUMBER || state == ST_FLAGS)
        return ps_fail(s->c, EINVAL, s->pos, "unexpected end of request");
    return 0;
}
