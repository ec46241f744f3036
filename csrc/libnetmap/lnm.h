/*
 * lnm.h -- what the libnetmap files share (nothing here is exported).
 * libnetmap speaks to /dev/netmap only through open/ioctl/mmap, and knows
 * nmcompat only through nmcompat_portspec.h (the port-name grammar),
 * nmc_name_mem_id() and nmc_extmem_min_size() (a refused extmem's reason).
 */
#ifndef LNM_H
#define LNM_H

#include <libnetmap.h>

/* One entry of a descriptor's cleanup list: what undoing its parse does. */
struct nmport_cleanup_d {
    struct nmport_cleanup_d *next;
    void (*cleanup)(struct nmport_cleanup_d *, struct nmport_d *);
};

void lnm_push_cleanup(struct nmport_d *d, struct nmport_cleanup_d *c);
/* Run and free the entries pushed after `mark` (NULL: all of them). */
void lnm_cleanup_to(struct nmport_d *d, struct nmport_cleanup_d *mark);

/* The descriptor nmport_new() makes, in ctx. */
struct nmport_d *lnm_new_in(struct nmctx *ctx);

/* Fail with err: errno set, -1 returned. */
int lnm_fail(int err);

/* Options of nmport_parse() that nmport_enable/disable_option() switch. */
enum lnm_option { LNM_OPT_SHARE, LNM_OPT_CONF, LNM_OPT_EXTMEM, LNM_OPT_OFFSET, LNM_OPT_COUNT };
int lnm_option_enabled(enum lnm_option opt);
const char *lnm_option_label(enum lnm_option opt);

#endif
