/*
 * lnm_test.h -- what the libnetmap test programs share: checks that name
 * the failing line, and an error callback that keeps the last message.
 */
#ifndef LNM_TEST_H
#define LNM_TEST_H

#include <libnetmap.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHECK(c, ...) do { if (!(c)) { fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__); \
    fprintf(stderr, __VA_ARGS__); fprintf(stderr, " (errno %d %s; last message '%s')\n", errno, \
    strerror(errno), last_msg); exit(1); } } while (0)

static char last_msg[1024];
static int n_msgs;

static void keep_msg(struct nmctx *ctx, const char *msg)
{
    (void)ctx;
    snprintf(last_msg, sizeof(last_msg), "%s", msg);
    n_msgs++;
}

static inline void forget_msgs(void)
{
    last_msg[0] = '\0';
    n_msgs = 0;
}

/* A call expected to fail with err and to say `says` (a substring). */
#define CHECK_FAILS(call, err, says) do { forget_msgs(); errno = 0; \
    CHECK((call) && errno == (err) && strstr(last_msg, (says)) != NULL, \
          "%s: want errno %d and '%s'", #call, (err), (says)); } while (0)

#endif
