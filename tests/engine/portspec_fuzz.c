/*
 * portspec_fuzz.c -- feed the port-name parser (csrc/portspec/) random
 * texts and check what it promises, built together with the parser's
 * sources under -fsanitize=address,undefined by
 * tests/unit/test_portspec_fuzz_c.py; any sanitizer report aborts the run.
 *
 *   portspec_fuzz [-s seed] [-n iterations]
 *
 * Texts: pieces of both grammars mutated with any byte (invalid UTF-8,
 * high bytes), texts up to and beyond NMC_PORTSPEC_TEXT_MAX, and buffers
 * of NMC_PORTSPEC_TEXT_MAX bytes without a terminating NUL (the parser
 * must not read past them).  Each is parsed with both grammars (nmport
 * with and without NMC_PORTSPEC_OFFSETS).  Checked: the return agrees
 * with err (-errnum, or -ENOENT for errnum 0), err's position lies in the
 * text and its message is terminated; a request's name is terminated, not
 * empty (nmport), shorter than IFNAMSIZ (legacy) and splits again to the
 * same pieces; a second parse gives the same bytes; kernel-name splits of
 * random 64-byte buffers stay in bounds.
 *
 * Output: "done iterations=N requests=R errors=E" and exit 0, or
 * "FAIL <why>" and exit 1.
 */
#include "nmcompat_portspec.h"
#include "fuzz_rand.h"

#include <errno.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *const pieces[] = {
    "netmap:", "vale0:", "vale:", "valeA_1:", "netmap", "vale", "eth0", "a", "x{1", "p}in", "{", "}",
    "^", "*", "-", "-3", "^7", "{2", "}5", "/", "/xzrtRT", "@", "@2", "@65536", "@conf:", "@conf=",
    "rings=4", "host-rings=1", "tx_slots=4294967295", "rx-slots=4294967296", ",", "=", ":",
    "@share=", "@share:port=", "netmap:y", "vale1:b", "@extmem=/f", "@extmem:file=/f,if-num=2",
    "buf_size=99999999999999999999", "@offset=64", "@offset:initial=18446744073709551615,bits=7",
    "@bogus", " ", "+", "0", "4094", "4095", "\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80", "\xff",
    "\x80", "\xe2\x82",
};

/* A text of pieces, with a few bytes replaced, into buf (NUL-terminated). */
static size_t make_text(char *buf, size_t size)
{
    static const char *const starts[] = {"netmap:eth0", "vale0:a", "netmap:p{1", ""};
    const char *start = starts[pick(4)];
    size_t len = strlen(start), want = pick(8) == 0 ? size - 1 : pick(120);

    memcpy(buf, start, len);

    while (len < want && (want > 200 || pick(3))) {
        const char *p = pieces[pick(sizeof(pieces) / sizeof(pieces[0]))];
        bool run = pick(6) == 0;                    /* a run of one byte instead */
        size_t n = run ? 1 + pick(64) : strlen(p);

        if (len + n >= size)
            break;
        if (run)
            memset(buf + len, "a-{@,=:\xc3"[pick(8)], n);
        else
            memcpy(buf + len, p, n);
        len += n;
    }
    for (uint32_t i = pick(4); i > 0 && len > 0; i--)
        buf[pick((uint32_t)len)] = (char)(1 + pick(255));
    buf[len] = '\0';
    return len;
}

static void check_name(const char *text, int grammar, const struct nmc_portspec *out)
{
    struct nmc_portname again;
    size_t len = strnlen(out->nr_name, sizeof(out->nr_name));

    if (len == sizeof(out->nr_name))
        fail("'%s' grammar %d: unterminated nr_name", text, grammar);
    if (grammar != NMC_PORTSPEC_LEGACY && len == 0)
        fail("'%s': empty nr_name from the nmport grammar", text);
    if (grammar == NMC_PORTSPEC_LEGACY && len >= 20)
        fail("'%s': legacy nr_name '%s' too long", text, out->nr_name);
    if (len == 0)
        return;
    if (nmc_portname_split(out->nr_name, &again) != 0 || memcmp(&again, &out->name, sizeof(again)) != 0)
        fail("'%s' grammar %d: the name does not split again to the same pieces", text, grammar);
}

static void check_error(const char *text, size_t len, int grammar, int ret, const struct nmc_portspec_error *err)
{
    size_t msg = strnlen(err->message, sizeof(err->message));

    if (ret != (err->errnum ? -err->errnum : -ENOENT))
        fail("'%.80s' grammar %d: returned %d with errnum %d", text, grammar, ret, err->errnum);
    if (err->position > len || msg == 0 || msg == sizeof(err->message))
        fail("'%.80s' grammar %d: position %u of %zu, message length %zu", text, grammar,
             err->position, len, msg);
}

/* Parse twice; 1 for a request, 0 for an error. */
static int parse_and_check(const char *text, size_t len, int grammar)
{
    static struct nmc_portspec out, out2;
    static struct nmc_portspec_error err, err2;
    int ret = nmc_portspec_parse(text, grammar, &out, &err);
    int ret2 = nmc_portspec_parse(text, grammar, &out2, &err2);

    if (ret != ret2 || memcmp(&out, &out2, sizeof(out)) != 0 || memcmp(&err, &err2, sizeof(err)) != 0)
        fail("'%.80s' grammar %d: two parses differ", text, grammar);
    if (ret > 0)
        fail("'%.80s' grammar %d: returned %d", text, grammar, ret);
    if (ret == 0)
        check_name(text, grammar, &out);
    else
        check_error(text, len, grammar, ret, &err);
    return ret == 0;
}

/* A buffer of exactly NMC_PORTSPEC_TEXT_MAX bytes and no NUL, on the heap
 * so that AddressSanitizer sees a read past it. */
static void unterminated(void)
{
    char *buf = malloc(NMC_PORTSPEC_TEXT_MAX);
    struct nmc_portspec *out = malloc(sizeof(*out));
    struct nmc_portspec_error *err = malloc(sizeof(*err));

    if (!buf || !out || !err)
        fail("out of memory");
    memcpy(buf, "netmap:", 7);
    memset(buf + 7, "a@-{"[pick(4)], NMC_PORTSPEC_TEXT_MAX - 7);
    if (nmc_portspec_parse(buf, NMC_PORTSPEC_NMPORT, out, err) != -EINVAL ||
        strcmp(err->message, "port name too long (4095 bytes at most)") != 0)
        fail("an unterminated text: %s", err->message);
    free(buf);
    free(out);
    free(err);
}

static void random_split(void)
{
    char *name = malloc(NMC_PORTSPEC_NAMSIZ);
    struct nmc_portname out;

    if (!name)
        fail("out of memory");
    for (size_t i = 0; i < NMC_PORTSPEC_NAMSIZ; i++)
        name[i] = "va{}:l0x"[pick(8)];
    if (pick(2))
        name[pick(NMC_PORTSPEC_NAMSIZ)] = '\0';
    if (nmc_portname_split(name, &out) == 0 &&
        (strnlen(out.parent, sizeof(out.parent)) == sizeof(out.parent) ||
         strnlen(out.pipe_id, sizeof(out.pipe_id)) == sizeof(out.pipe_id)))
        fail("a split gave an unterminated piece");
    free(name);
}

int main(int argc, char **argv)
{
    static const int grammars[] = {NMC_PORTSPEC_NMPORT, NMC_PORTSPEC_NMPORT | NMC_PORTSPEC_OFFSETS,
                                   NMC_PORTSPEC_LEGACY};
    static char text[NMC_PORTSPEC_TEXT_MAX + 64];
    unsigned long iterations = 20000, requests = 0, errors = 0;
    int opt;

    while ((opt = getopt(argc, argv, "s:n:")) != -1) {
        if (opt == 's')
            seed_state ^= strtoull(optarg, NULL, 0) * 0x9E3779B97F4A7C15ULL;
        else if (opt == 'n')
            iterations = strtoul(optarg, NULL, 0);
        else
            fail("usage: portspec_fuzz [-s seed] [-n iterations]");
    }
    for (unsigned long i = 0; i < iterations; i++) {
        size_t len = make_text(text, pick(4) ? 200 : sizeof(text));

        for (unsigned g = 0; g < 3; g++) {
            if (parse_and_check(text, len, grammars[g]))
                requests++;
            else
                errors++;
        }
        if (i % 64 == 0)
            unterminated();
        random_split();
    }
    printf("done iterations=%lu requests=%lu errors=%lu\n", iterations, requests, errors);
    return 0;
}
