/*
 * nmcompat_portspec.h -- the parser of netmap's two port-name grammars
 * (libnmcompat, csrc/portspec/).
 *
 * NMC_PORTSPEC_NMPORT is libnetmap's nmport_parse grammar
 * ("netmap:eth0-1/x@2@conf:rings=4"), NMC_PORTSPEC_LEGACY the grammar of
 * nm_parse/nm_open in <net/netmap_user.h> ("netmap:eth0{3", "vale0:a").
 * Both grammars, their differences and the deliberate deviations from
 * netmap's own parsers are documented in nmcompat/_portspec.py and
 * docs/DESIGN.md.  The parser is pure: it opens no file or device, and
 * leaves @share ports and @extmem files for the caller to resolve.
 *
 * Positions are byte offsets into the text; texts are taken as UTF-8
 * (names are limited by the bytes they take, as in the kernel).
 */
#ifndef NMCOMPAT_PORTSPEC_H
#define NMCOMPAT_PORTSPEC_H

#include <stdbool.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#pragma GCC visibility push(default)     /* exported: see nmcompat.h */

/* The grammar argument of nmc_portspec_parse: one of the two grammars,
 * optionally or-ed with NMC_PORTSPEC_OFFSETS. */
#define NMC_PORTSPEC_NMPORT  1          /* libnetmap's nmport_parse */
#define NMC_PORTSPEC_LEGACY  2          /* nm_parse / nm_open */
/* With NMC_PORTSPEC_NMPORT: accept "@offset" and fill the offset_* fields;
 * without it "@offset" fails with EOPNOTSUPP (nmcompat's ports have no
 * buffer offsets). */
#define NMC_PORTSPEC_OFFSETS 256

#define NMC_PORTSPEC_NAMSIZ  64         /* NETMAP_REQ_IFNAMSIZ: nr_name's size */
/* A text of this many bytes or more is refused (EINVAL, "port name too
 * long"); every string field below therefore fits in this size. */
#define NMC_PORTSPEC_TEXT_MAX 4096
/* err->message holds any message for a text below NMC_PORTSPEC_TEXT_MAX. */
#define NMC_PORTSPEC_MSGSIZ  4352        /* NMC_PORTSPEC_TEXT_MAX + 256 */

/* struct nmc_portname.subsys / pipe_role */
#define NMC_PORTSPEC_NETMAP  1          /* "netmap:" prefix */
#define NMC_PORTSPEC_VALE    2          /* "vale..." prefix */
#define NMC_PORTSPEC_PIPE_NONE   0
#define NMC_PORTSPEC_PIPE_MASTER 1      /* '{' */
#define NMC_PORTSPEC_PIPE_SLAVE  2      /* '}' */

/* conf_given bits: the per-direction @conf keys that were given ("rings",
 * "host_rings" and "slots" set both directions' bits). */
#define NMC_PORTSPEC_CONF_TX_RINGS      1
#define NMC_PORTSPEC_CONF_RX_RINGS      2
#define NMC_PORTSPEC_CONF_HOST_TX_RINGS 4
#define NMC_PORTSPEC_CONF_HOST_RX_RINGS 8
#define NMC_PORTSPEC_CONF_TX_SLOTS      16
#define NMC_PORTSPEC_CONF_RX_SLOTS      32

/* extmem_given bits and the index of each key in extmem_span[] (bit
 * 1 << index): the @extmem keys that were given a value. */
#define NMC_PORTSPEC_EXTMEM_FILE      0
#define NMC_PORTSPEC_EXTMEM_IF_NUM    1
#define NMC_PORTSPEC_EXTMEM_IF_SIZE   2
#define NMC_PORTSPEC_EXTMEM_RING_NUM  3
#define NMC_PORTSPEC_EXTMEM_RING_SIZE 4
#define NMC_PORTSPEC_EXTMEM_BUF_NUM   5
#define NMC_PORTSPEC_EXTMEM_BUF_SIZE  6
#define NMC_PORTSPEC_EXTMEM_KEYS      7

/* A kernel name (nr_name) split the way the kernel resolves it
 * (netmap_get_na): the last '{' makes a pipe master of the name before it,
 * else the last '}' a pipe slave; a parent starting with "val" is a VALE
 * port, split at its first ':'. */
struct nmc_portname {
    char parent[NMC_PORTSPEC_NAMSIZ];   /* the name before the pipe mark, or the whole name */
    char pipe_id[NMC_PORTSPEC_NAMSIZ];  /* the text after the pipe mark ("" without a pipe) */
    int pipe_role;                      /* NMC_PORTSPEC_PIPE_NONE/_MASTER/_SLAVE */
    bool val_prefix;                    /* parent starts with "val": the kernel takes it for VALE */
    bool vale;                          /* val_prefix and parent holds a ':' */
    char vale_switch[NMC_PORTSPEC_NAMSIZ]; /* parent before its first ':' ("vale0"), if vale */
    char vale_port[NMC_PORTSPEC_NAMSIZ];   /* parent after its first ':' ("a"), if vale */
};

/* A part of the parsed text. */
struct nmc_portspec_span {
    uint32_t pos;                       /* byte offset in the text */
    uint32_t len;                       /* bytes */
};

/* A parsed port name: the register request the kernel would receive
 * (nr_name, nr_mode, nr_ringid, nr_flags, nr_mem_id; @conf's keys go to
 * nmreq_register's nr_*_rings/slots) and the options for the caller. */
struct nmc_portspec {
    int grammar;                        /* NMC_PORTSPEC_NMPORT or _LEGACY, as parsed */
    int subsys;                         /* NMC_PORTSPEC_NETMAP or _VALE: the prefix used */
    char nr_name[NMC_PORTSPEC_NAMSIZ];  /* as NIOCCTRL carries it, pipe suffix included
                                           ("eth0", "vale0:a{1"; legacy "x{3" from "netmap:x{3") */
    uint32_t nr_mode;                   /* NR_REG_* (legacy pipe modes come out as NR_REG_ALL_NIC) */
    uint16_t nr_ringid;                 /* ring (pair) of NR_REG_ONE_NIC / NR_REG_ONE_SW, else 0 */
    uint64_t nr_flags;                  /* NR_EXCLUSIVE, NR_MONITOR_*, NR_ZCOPY_MON, NR_*_RINGS_ONLY */
    uint16_t mem_id;                    /* "@N": 1..65535, 0 when not given */
    struct nmc_portname name;           /* nr_name split as the kernel would (see above) */

    /* @conf: values of the keys whose bit is set in conf_given */
    uint32_t conf_given;                /* NMC_PORTSPEC_CONF_* bits */
    uint16_t conf_tx_rings;             /* 0..65535 */
    uint16_t conf_rx_rings;
    uint16_t conf_host_tx_rings;
    uint16_t conf_host_rx_rings;
    uint32_t conf_tx_slots;             /* 0..2^32-1 */
    uint32_t conf_rx_slots;

    /* @share: the port name whose memory to share, unresolved (only its
     * prefix and name were checked); "" when not given */
    bool share_given;
    char share[NMC_PORTSPEC_TEXT_MAX];

    /* @extmem: the file, not opened, and its decimal keys */
    bool extmem_given;
    uint32_t extmem_given_keys;         /* 1 << NMC_PORTSPEC_EXTMEM_* of the keys given */
    char extmem_file[NMC_PORTSPEC_TEXT_MAX]; /* the file key's value */
    uint32_t extmem_if_num, extmem_if_size, extmem_ring_num;    /* 0..2^32-1 */
    uint32_t extmem_ring_size, extmem_buf_num, extmem_buf_size;
    struct nmc_portspec_span extmem_span[NMC_PORTSPEC_EXTMEM_KEYS]; /* where each value is in the text */

    /* @offset (only with NMC_PORTSPEC_OFFSETS) */
    bool offset_given;
    uint64_t offset_initial;            /* "initial" (mandatory): 0..2^64-1 */
    uint32_t offset_bits;               /* "bits": 0..2^32-1, 0 when not given */
};

/* Why a text was refused. */
struct nmc_portspec_error {
    int errnum;                         /* EINVAL (syntax), EOPNOTSUPP (a refused option), 0 for a
                                           legacy name that nm_open does not take as netmap's */
    uint32_t position;                  /* byte offset of the offending character (it may be the
                                           text's length when it ended too early) */
    char message[NMC_PORTSPEC_MSGSIZ];  /* the reason, e.g. "unknown modifier: '+'" */
};

/* Parse text with the grammar given; 0 and *out filled, or -errnum with
 * *err filled (-ENOENT for errnum 0: not a netmap name for nm_open). */
int nmc_portspec_parse(const char *text, int grammar, struct nmc_portspec *out,
                       struct nmc_portspec_error *err);

/* Split a kernel name (NUL-terminated within NMC_PORTSPEC_NAMSIZ bytes);
 * 0, or -EINVAL for an empty or unterminated name.  Callers judge the
 * pieces: an empty parent or pipe id, a "val" name without ':'. */
int nmc_portname_split(const char *nr_name, struct nmc_portname *out);

#pragma GCC visibility pop

#ifdef __cplusplus
}
#endif

#endif /* NMCOMPAT_PORTSPEC_H */
