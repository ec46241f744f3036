/* cffi declarations of the netmap structures the Python side reads (only
 * the fields it uses; "..." lets cffi take the real layout from
 * <net/netmap.h>).  The engine's own declarations are read from
 * include/nmcompat.h and include/nmcompat_tools.h by ffi_build.py. */
struct netmap_slot {
    uint32_t buf_idx;
    uint16_t len;
    uint16_t flags;
    uint64_t ptr;
};

struct netmap_ring {
    int64_t buf_ofs;
    uint32_t num_slots;
    uint32_t nr_buf_size;
    uint16_t ringid;
    uint16_t dir;
    uint32_t head;
    uint32_t cur;
    uint32_t tail;
    uint32_t flags;
    struct timeval ts;
    ...;
};

struct netmap_if {
    char ni_name[16];
    uint32_t ni_version;
    uint32_t ni_flags;
    uint32_t ni_tx_rings;
    uint32_t ni_rx_rings;
    uint32_t ni_bufs_head;
    uint32_t ni_host_tx_rings;
    uint32_t ni_host_rx_rings;
    ...;
};

