/*
 * calloc_fault.c -- allocation fault injection for the engine, preloaded
 * into a Python process by test_nic_alloc_faults.py.
 *
 * fault_arm(k): the k-th calloc() the engine (libnmcompat.so) makes from
 * now on fails with ENOMEM; until fault_disarm(), every block the engine
 * callocs is recorded, and forgotten when freed.  fault_live() is how many
 * recorded blocks are not freed: what a failed open leaked.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stddef.h>
#include <string.h>

extern void *__libc_calloc(size_t n, size_t size);
extern void __libc_free(void *p);

#define MAX_LIVE 4096

static int armed, countdown;
static void *live[MAX_LIVE];
static int nlive;

static int from_engine(const void *caller)
{
    Dl_info info;

    return dladdr(caller, &info) && info.dli_fname && strstr(info.dli_fname, "libnmcompat.so");
}

void fault_arm(int k)
{
    armed = 1;
    countdown = k;
    nlive = 0;
}

int fault_disarm(void)
{
    armed = 0;
    return countdown;               /* > 0: fewer callocs than k were made */
}

int fault_live(void)
{
    int n = 0;

    for (int i = 0; i < nlive; i++)
        n += live[i] != NULL;
    return n;
}

void *calloc(size_t n, size_t size)
{
    void *p;

    if (!armed || !from_engine(__builtin_return_address(0)))
        return __libc_calloc(n, size);
    if (countdown > 0 && --countdown == 0) {
        errno = ENOMEM;
        return NULL;
    }
    p = __libc_calloc(n, size);
    if (p && nlive < MAX_LIVE)
        live[nlive++] = p;
    return p;
}

void free(void *p)
{
    for (int i = 0; p && armed && i < nlive; i++)
        if (live[i] == p)
            live[i] = NULL;
    __libc_free(p);
}
