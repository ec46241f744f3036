/*
 * nmctx.c -- libnetmap's contexts: where messages go (error callback,
 * verbosity), how memory is allocated, how the list of mapped regions is
 * locked.  The default context prints each message and a newline on
 * stderr and locks with a mutex.
 */
#include "lnm.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#define LNM_MAXERRMSG 1000

static pthread_mutex_t default_mutex = PTHREAD_MUTEX_INITIALIZER;

static void print_error(struct nmctx *ctx, const char *msg)
{
    (void)ctx;
    fprintf(stderr, "%s\n", msg);
}

static void *plain_malloc(struct nmctx *ctx, size_t size)
{
    (void)ctx;
    return malloc(size);
}

static void plain_free(struct nmctx *ctx, void *p)
{
    (void)ctx;
    free(p);
}

static void mutex_lock(struct nmctx *ctx, int lock)
{
    (void)ctx;
    if (lock)
        pthread_mutex_lock(&default_mutex);
    else
        pthread_mutex_unlock(&default_mutex);
}

static struct nmctx global_ctx = {
    .verbose = 1,
    .error = print_error,
    .malloc = plain_malloc,
    .free = plain_free,
    .lock = mutex_lock,
    .mem_descs = NULL,
};

static struct nmctx *default_ctx = &global_ctx;

struct nmctx *nmctx_get(void)
{
    return __atomic_load_n(&default_ctx, __ATOMIC_ACQUIRE);
}

struct nmctx *nmctx_set_default(struct nmctx *ctx)
{
    return __atomic_exchange_n(&default_ctx, ctx ? ctx : &global_ctx, __ATOMIC_ACQ_REL);
}

void nmctx_set_threadsafe(void)
{
    global_ctx.lock = mutex_lock;
}

static struct nmctx *ctx_or_default(struct nmctx *ctx)
{
    return ctx ? ctx : nmctx_get();
}

nmctx_error_cb nmctx_set_error(struct nmctx *ctx, nmctx_error_cb error)
{
    nmctx_error_cb old;

    ctx = ctx_or_default(ctx);
    old = ctx->error;
    ctx->error = error ? error : print_error;
    return old;
}

int nmctx_set_verbose(struct nmctx *ctx, int verbose)
{
    int old;

    ctx = ctx_or_default(ctx);
    old = ctx->verbose;
    ctx->verbose = verbose;
    return old;
}

void nmctx_ferror(struct nmctx *ctx, const char *fmt, ...)
{
    char msg[LNM_MAXERRMSG];
    va_list ap;
    int n;

    ctx = ctx_or_default(ctx);
    if (!ctx->verbose || !ctx->error)
        return;
    va_start(ap, fmt);
    n = vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (n < 0)
        ctx->error(ctx, "internal error");
    else if (n >= (int)sizeof(msg))
        ctx->error(ctx, "error message too long");
    else
        ctx->error(ctx, msg);
}

void *nmctx_malloc(struct nmctx *ctx, size_t size)
{
    ctx = ctx_or_default(ctx);
    return ctx->malloc ? ctx->malloc(ctx, size) : malloc(size);
}

void nmctx_free(struct nmctx *ctx, void *p)
{
    ctx = ctx_or_default(ctx);
    if (ctx->free)
        ctx->free(ctx, p);
    else
        free(p);
}

void nmctx_lock(struct nmctx *ctx)
{
    ctx = ctx_or_default(ctx);
    if (ctx->lock)
        ctx->lock(ctx, 1);
}

void nmctx_unlock(struct nmctx *ctx)
{
    ctx = ctx_or_default(ctx);
    if (ctx->lock)
        ctx->lock(ctx, 0);
}
