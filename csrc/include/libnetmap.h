/*
 * libnetmap.h -- netmap's libnetmap C API (nmport_*, nmreq_*, nmctx_*).
 *
 * Part of nmcompat.  The declarations and structures are netmap's (API 14):
 * a program written for libnetmap builds against this header unchanged and
 * links with `nmcompat-config --libs`.  The functions live in
 * libnmcompat-netmap.so (csrc/libnetmap/) and talk to /dev/netmap with
 * plain open/ioctl/mmap, which the emulation linked in the same library
 * serves.  Port names are parsed by nmcompat's one implementation of the
 * grammar (nmcompat_portspec.h).
 *
 * A portspec:  subsystem:vpname[mode][options]
 *   subsystem  "netmap" (no id) or "vale" followed by a possibly empty id
 *   vpname     name, or name{pipe / name}pipe (a netmap pipe)
 *   mode       ^ ^N * -N @N, and /flags (x z t r R T)
 *   options    @share=PORT  @conf:KEY=N,...  @extmem:file=F,...
 *              @offset:initial=N,bits=B (disabled until
 *              nmport_enable_option("offset"))
 *
 * Thread safety: the default context locks its memory list with a mutex.
 */
#ifndef LIBNETMAP_H_
#define LIBNETMAP_H_

#include <stddef.h>
#include <stdint.h>

#include <net/netmap_user.h>

#ifdef __cplusplus
extern "C" {
#endif

#pragma GCC visibility push(default)    /* exported by libnmcompat-netmap.so */

struct nmctx;
struct nmport_d;
struct nmem_d;
struct nmport_cleanup_d;

/* ------------------------------------------------------------------ */
/* Port descriptors                                                    */
/* ------------------------------------------------------------------ */

struct nmport_d {
    struct nmreq_header hdr;        /* the request (nr_body = &reg) */
    struct nmreq_register reg;

    /* read-only from here on */
    struct nmem_d *mem;             /* shared by every port of one mem_id in a ctx */
    struct nmctx *ctx;              /* the context the descriptor was made with */
    int register_done;
    int mmap_done;
    struct nmreq_opt_extmem *extmem;    /* the extmem option in hdr, if any */

    /* as nm_open()'s nm_desc */
    int fd;                         /* /dev/netmap, -1 when not open */
    struct netmap_if *nifp;
    uint16_t first_tx_ring;
    uint16_t last_tx_ring;
    uint16_t first_rx_ring;
    uint16_t last_rx_ring;
    uint16_t cur_tx_ring;           /* next ring nmport_inject() tries */
    uint16_t cur_rx_ring;

    struct nmport_cleanup_d *clist; /* what undoing the parse releases (LIFO) */
};

/*
 *                 | nmport_new
 * nmport_prepare =|
 *                 | nmport_parse
 *                                      nmport_open = prepare + open_desc
 *                 | nmport_register
 * nmport_open_desc=|
 *                 | nmport_mmap
 *
 * Each step returns 0 (a pointer) on success; on failure -1 (NULL), errno
 * set, a message sent through the context's error callback, and the
 * descriptor as it was before the step.  nmport_undo_* reverse the steps.
 */
struct nmport_d *nmport_open(const char *portspec);
void nmport_close(struct nmport_d *d);
int nmport_inject(struct nmport_d *d, const void *buf, size_t size);

struct nmport_d *nmport_new(void);
int nmport_parse(struct nmport_d *d, const char *portspec);
int nmport_register(struct nmport_d *d);
int nmport_mmap(struct nmport_d *d);
void nmport_delete(struct nmport_d *d);
void nmport_undo_parse(struct nmport_d *d);
void nmport_undo_register(struct nmport_d *d);
void nmport_undo_mmap(struct nmport_d *d);

struct nmport_d *nmport_prepare(const char *portspec);
int nmport_open_desc(struct nmport_d *d);
void nmport_undo_prepare(struct nmport_d *d);
void nmport_undo_open_desc(struct nmport_d *d);

/* A prepared copy of d (request without options), in d's context. */
struct nmport_d *nmport_clone(struct nmport_d *d);

/* Memory given by the program (NETMAP_REQ_OPT_EXTMEM), between parse and
 * register; _from_file maps the file (unmapped by nmport_close()). */
int nmport_extmem(struct nmport_d *d, void *base, size_t size);
int nmport_extmem_from_file(struct nmport_d *d, const char *fname);
struct nmreq_pools_info *nmport_extmem_getinfo(struct nmport_d *d);

/* Per-slot offsets (NETMAP_REQ_OPT_OFFSETS). */
int nmport_offset(struct nmport_d *d, uint64_t initial, uint64_t maxoff,
                  uint64_t bits, uint64_t mingap);

/* Options of the portspec: a disabled one is refused (EOPNOTSUPP) when a
 * name uses it.  Enabling an unknown option fails with EOPNOTSUPP;
 * disabling one does nothing. */
void nmport_disable_option(const char *opt);
int nmport_enable_option(const char *opt);

/* ------------------------------------------------------------------ */
/* Requests                                                            */
/* ------------------------------------------------------------------ */

/* nr_version = NETMAP_API, nr_reqtype, nr_body; everything else 0. */
void nmreq_header_init(struct nmreq_header *hdr, uint16_t reqtype, void *body);

/* "subsystem:vpname" at *ppspec into hdr->nr_name; *ppspec moves past it. */
int nmreq_header_decode(const char **ppspec, struct nmreq_header *hdr, struct nmctx *ctx);

/* The mode at *pmode into reg's nr_mode, nr_ringid, nr_flags, nr_mem_id;
 * stops (no error) at an '@' that starts the options. */
int nmreq_register_decode(const char **pmode, struct nmreq_register *reg, struct nmctx *ctx);

struct nmreq_parse_ctx;
typedef int (*nmreq_opt_parser_cb)(struct nmreq_parse_ctx *);

#define NMREQ_OPT_MAXKEYS 16

struct nmreq_opt_key {
    const char *key;
    int id;                         /* index in nmreq_parse_ctx.keys */
    unsigned int flags;
#define NMREQ_OPTK_ALLOWEMPTY   (1U << 0)   /* "=value" may be left out */
#define NMREQ_OPTK_MUSTSET      (1U << 1)   /* mandatory */
#define NMREQ_OPTK_DEFAULT      (1U << 2)   /* what "@option=value" sets */
};

struct nmreq_opt_parser {
    const char *prefix;             /* the option's name */
    nmreq_opt_parser_cb parse;
    int default_key;                /* -1: none */
    int nr_keys;
    unsigned int flags;
#define NMREQ_OPTF_DISABLED     (1U << 0)
#define NMREQ_OPTF_ALLOWEMPTY   (1U << 1)   /* the option may have no body */
    struct nmreq_opt_parser *next;
    struct nmreq_opt_key keys[NMREQ_OPT_MAXKEYS];
} __attribute__((aligned(16)));

struct nmreq_parse_ctx {
    struct nmctx *ctx;
    void *token;                    /* as given to nmreq_options_decode */
    const char *keys[NMREQ_OPT_MAXKEYS];    /* value of each key, NULL if unset */
};

/* The options part ("@..." up to the end) through the parsers list. */
int nmreq_options_decode(const char *opt, struct nmreq_opt_parser *parsers,
                         void *token, struct nmctx *ctx);

/* The mem_id of the port named at *portname (PORT_INFO_GET); *portname
 * moves past the name.  -1 on error. */
int32_t nmreq_get_mem_id(const char **portname, struct nmctx *ctx);

void nmreq_push_option(struct nmreq_header *hdr, struct nmreq_option *opt);
void nmreq_remove_option(struct nmreq_header *hdr, struct nmreq_option *opt);
struct nmreq_option *nmreq_find_option(struct nmreq_header *hdr, uint32_t reqtype);
void nmreq_free_options(struct nmreq_header *hdr);     /* free()s each option */
const char *nmreq_option_name(uint32_t reqtype);

#define nmreq_foreach_option(h_, o_) \
    for ((o_) = (struct nmreq_option *)(uintptr_t)((h_)->nr_options); \
         (o_) != NULL; \
         (o_) = (struct nmreq_option *)(uintptr_t)((o_)->nro_next))

/* ------------------------------------------------------------------ */
/* Contexts                                                            */
/* ------------------------------------------------------------------ */

typedef void (*nmctx_error_cb)(struct nmctx *, const char *);
typedef void *(*nmctx_malloc_cb)(struct nmctx *, size_t);
typedef void (*nmctx_free_cb)(struct nmctx *, void *);
typedef void (*nmctx_lock_cb)(struct nmctx *, int);

struct nmctx {
    int verbose;                    /* 0: no message reaches error() */
    nmctx_error_cb error;           /* default: the message and '\n' on stderr */
    nmctx_malloc_cb malloc;
    nmctx_free_cb free;
    nmctx_lock_cb lock;             /* lock(ctx, 1) / lock(ctx, 0); NULL: none */
    struct nmem_d *mem_descs;       /* the regions mapped through this ctx */
};

struct nmem_d {
    uint16_t mem_id;
    int refcount;                   /* nmport_d's using the mapping */
    void *mem;
    size_t size;
    int is_extmem;
    struct nmem_d *next;
    struct nmem_d *prev;
};

struct nmctx *nmctx_get(void);
struct nmctx *nmctx_set_default(struct nmctx *ctx);     /* the previous one; NULL: the built-in */
void nmctx_set_threadsafe(void);    /* the default context's mutex (always installed) */
void nmctx_ferror(struct nmctx *ctx, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void *nmctx_malloc(struct nmctx *ctx, size_t size);
void nmctx_free(struct nmctx *ctx, void *p);
void nmctx_lock(struct nmctx *ctx);
void nmctx_unlock(struct nmctx *ctx);

/* nmcompat's additions (netmap's programs set the fields themselves):
 * set ctx's error callback (NULL: the default) or verbosity, return the
 * previous value; ctx NULL means the default context. */
nmctx_error_cb nmctx_set_error(struct nmctx *ctx, nmctx_error_cb error);
int nmctx_set_verbose(struct nmctx *ctx, int verbose);

#pragma GCC visibility pop

#ifdef __cplusplus
}
#endif

#endif /* LIBNETMAP_H_ */
