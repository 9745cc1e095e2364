/* dnal core: errors and checked calls, allocation, flat arenas, the oneDNN
 * engine and threads, and the wrappers over oneDNN 2.x descriptors
 * (src/core/onednn_desc.c is the only file that creates oneDNN descriptors
 * or reads their fields, so a port to oneDNN 3.x touches that file alone). */
#ifndef DNAL_CORE_H
#define DNAL_CORE_H

#include <stddef.h>
#include <stdint.h>
#include <oneapi/dnnl/dnnl.h>

/* ---- exit codes (docs/design.md, "Exit codes") ---- */
enum {
    DNAL_EXIT_OK = 0,
    DNAL_EXIT_USAGE = 1,        /* usage or config error: nothing was started */
    DNAL_EXIT_DATA = 2,         /* an input is missing, corrupt or out of range (named) */
    DNAL_EXIT_NUMERIC = 3,      /* non-finite loss or gradient */
    DNAL_EXIT_SOFTWARE = 70,    /* internal: a failed assertion, a oneDNN or MPI failure,
                                   memory exhausted (sysexits' EX_SOFTWARE) */
    DNAL_EXIT_CHECKPOINTED = 75 /* checkpointed on a signal; requeue (EX_TEMPFAIL) */
};

/* Stop signals (src/core/stop.c): SIGUSR1, SIGTERM and SIGINT set a flag
 * that the run polls; a second SIGTERM or SIGINT, or DNAL_STOP_GRACE_S
 * seconds after the first, ends the process at once (exit 75). */
enum { DNAL_STOP_GRACE_S = 20 };
void dnal_stop_install(void);
void dnal_stop_request(int sig); /* async-signal-safe */
int dnal_stop_requested(void);   /* the first stop signal, or 0 */
/* Slow work before the first step (main thread only): if a stop was
 * asked for, says so and ends every rank with 75 (nothing to save). */
void dnal_stop_check(const char *doing);

/* For fuzzing harnesses only: called with the exit code instead of ending
 * the process when a fatal error happens (the hook must not return; a
 * harness longjmps back to its entry). NULL restores the default. */
typedef void (*dnal_fatal_hook_fn)(int code);
void dnal_set_fatal_hook(dnal_fatal_hook_fn hook);

/* Ends the process with code, on every rank together (MPI_Finalize, not
 * MPI_Abort): for an orderly stop that all ranks agreed on. */
_Noreturn void dnal_exit_all(int code);
/* Prints "dnal: error: MESSAGE" on stderr and ends the process with CODE.
 * Inside a multi-rank MPI run it calls MPI_Abort so that no rank is left
 * waiting in a collective; otherwise exit(). */
_Noreturn void dnal_fatal(int code, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Same, prefixed with the source location (for internal failures). */
_Noreturn void dnal_fatal_at(int code, const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

_Noreturn void dnal_dnnl_failed(int status, const char *call, const char *file, int line);
_Noreturn void dnal_mpi_failed(int err, const char *call, const char *file, int line);
_Noreturn void dnal_h5_failed(const char *call, const char *file, int line);
const char *dnal_dnnl_status_str(int status);

/* One checked-call macro per foreign library: file:line plus the library's own message. */
#define DNNL_CHECK(call)                                                        \
    do {                                                                        \
        dnnl_status_t dnal_s_ = (call);                                         \
        if (dnal_s_ != dnnl_success)                                            \
            dnal_dnnl_failed((int)dnal_s_, #call, __FILE__, __LINE__);          \
    } while (0)
#define MPI_CHECK(call)                                                         \
    do {                                                                        \
        int dnal_e_ = (call);                                                   \
        if (dnal_e_ != 0 /* MPI_SUCCESS */)                                     \
            dnal_mpi_failed(dnal_e_, #call, __FILE__, __LINE__);                \
    } while (0)
/* HDF5 calls return a negative herr_t or hid_t on failure. Failures of HDF5
 * are input/output failures: exit code 2. */
#define H5_CHECK(call)                                                          \
    ({                                                                          \
        __typeof__(call) dnal_h_ = (call);                                      \
        if (dnal_h_ < 0) dnal_h5_failed(#call, __FILE__, __LINE__);             \
        dnal_h_;                                                                \
    })
/* An internal invariant; failing it is a bug in dnal, not in the input. */
#define DNAL_ASSERT(cond)                                                       \
    do {                                                                        \
        if (!(cond))                                                            \
            dnal_fatal_at(DNAL_EXIT_SOFTWARE, __FILE__, __LINE__,               \
                          "internal error: %s", #cond);                         \
    } while (0)

/* Turns off HDF5's automatic error-stack printing: H5_CHECK reports instead. */
void dnal_h5_quiet(void);

/* ---- memory ---- */

/* Every allocation of dnal goes through these (never in the step loop):
 * 64-byte aligned, zeroed (calloc), resized (realloc: not aligned), copied
 * (strdup). On failure they end the process with exit 70 naming the size
 * and the calling file and line. Free with dnal_free (or free). */
#define dnal_alloc(bytes) dnal_alloc_at((bytes), __FILE__, __LINE__)
#define dnal_calloc(bytes) dnal_calloc_at((bytes), __FILE__, __LINE__)
#define dnal_realloc(p, bytes) dnal_realloc_at((p), (bytes), __FILE__, __LINE__)
#define dnal_strdup(s) dnal_strdup_at((s), __FILE__, __LINE__)
void *dnal_alloc_at(size_t bytes, const char *file, int line);
void *dnal_calloc_at(size_t bytes, const char *file, int line);
void *dnal_realloc_at(void *p, size_t bytes, const char *file, int line);
char *dnal_strdup_at(const char *s, const char *file, int line);
void dnal_free(void *p);
/* An allocation sized by what an input file says: `count` elements of
 * `size` bytes, zeroed. A size that overflows, exceeds `limit` bytes (0: no
 * limit) or cannot be allocated is the input's fault: exit 2 naming
 * `origin` (the file) and `what`. */
void *dnal_alloc_input(size_t count, size_t size, size_t limit, const char *origin,
                       const char *what);

/* SHA-256 of bytes, or of a file's contents, as 64 hex digits and a NUL
 * (what `sha256sum` prints). The file form returns 0 or an errno value. */
enum { DNAL_SHA256_HEX = 65 };
void dnal_sha256(const void *data, size_t len, char hex[DNAL_SHA256_HEX]);
int dnal_sha256_file(const char *path, char hex[DNAL_SHA256_HEX]);

/* A flat arena: regions are reserved first (offsets only), then one zeroed,
 * aligned block is committed. Parameters, gradients, optimizer state, alpha
 * and activations each live in one arena, carved by offsets. */
typedef struct dnal_arena {
    size_t bytes; /* reserved so far */
    char *base;   /* NULL until committed */
} dnal_arena;

size_t dnal_arena_reserve(dnal_arena *a, size_t bytes); /* returns a 64-byte aligned offset */
void dnal_arena_commit(dnal_arena *a);
void *dnal_arena_at(const dnal_arena *a, size_t offset);
void dnal_arena_release(dnal_arena *a);

/* ---- oneDNN engine and stream ---- */
typedef struct dnal_ctx {
    dnnl_engine_t engine;
    dnnl_stream_t stream;
    /* the activation layout oneDNN's convolutions pick on this CPU, probed
     * once at creation (dnal_md_conv_layout) */
    dnnl_memory_desc_t conv_layout;
    /* networks built on this context run every layer on its own (net->no_fuse;
     * dnal bench --no-fuse measures what fusion gains) */
    int no_fuse;
    /* networks built on this context hold their parameters, statistics,
     * alpha and masks but no activations and no primitives: they cannot run,
     * they are read, pruned, compacted, costed and written (dnal export, a
     * model file's checks). What a file claims about its input size then
     * costs nothing until a network is built to run at that size. */
    int params_only;
    /* networks built on this context are their layers and counts alone
     * (n_param, n_stats, n_gates, the shapes): not even the flat buffers.
     * A reader checks what a file claims against them before it builds a
     * network whose buffers the claim would size (checkpoints, model files) */
    int count_only;
    /* the number format of activations and of the weights' working copies
     * in networks built on this context (run.dtype): dnnl_f32 (the default)
     * or dnnl_bf16; parameters, gradients and statistics stay f32 */
    dnnl_data_type_t dtype;
} dnal_ctx;

dnal_ctx *dnal_ctx_create(void);
/* A context for run.dtype ("f32" or "bf16"): where this CPU has no bf16
 * primitives, exit 1 naming its ISA; where it emulates them, a warning on
 * stderr (once a process). */
dnal_ctx *dnal_ctx_create_for(const char *dtype);
/* How this CPU runs bf16 primitives. */
typedef enum dnal_bf16_support {
    DNAL_BF16_NONE = 0,     /* oneDNN creates no bf16 primitive (below avx512_core) */
    DNAL_BF16_EMULATED = 1, /* avx512_core without bf16 instructions: emulated, slow */
    DNAL_BF16_NATIVE = 2    /* avx512_core_bf16 or avx512_core_amx */
} dnal_bf16_support;
dnal_bf16_support dnal_bf16_supported(const dnal_ctx *ctx);
/* Networks built on ctx from now on run in dtype (dnnl_f32 or dnnl_bf16):
 * re-probes ctx->conv_layout for it. Returns 0 (ctx unchanged) where
 * oneDNN has no convolution in that type on this CPU. */
int dnal_ctx_set_dtype(dnal_ctx *ctx, dnnl_data_type_t dtype);
/* The threads oneDNN and dnal's own loops use (run.threads; 0 keeps
 * OpenMP's default, OMP_NUM_THREADS). */
void dnal_set_threads(int64_t threads);
void dnal_ctx_destroy(dnal_ctx *ctx);
/* Runs a primitive on the context's stream (checked). */
void dnal_exec(const dnal_ctx *ctx, dnnl_primitive_t p, int nargs, const dnnl_exec_arg_t *args);
const char *dnal_isa_name(void);

/* ---- memory descriptors (wrappers: src/core/onednn_desc.c) ---- */
typedef dnnl_memory_desc_t dnal_md;

/* nchw / nc / oihw / goihw / x: plain row-major f32, ndims 1..5 */
dnal_md dnal_md_plain(int ndims, const int64_t *dims);
/* 4-D, channels last (NHWC) */
dnal_md dnal_md_channels_last(const int64_t *dims);
/* format_tag any: the primitive picks the layout */
dnal_md dnal_md_any(int ndims, const int64_t *dims);
/* The same descriptor (layout, or any) with elements of another type. */
dnal_md dnal_md_with_type(const dnal_md *md, dnnl_data_type_t dtype);
/* The element type of a descriptor, and whether it is bf16. */
dnnl_data_type_t dnal_md_type(const dnal_md *md);
int dnal_md_is_bf16(const dnal_md *md);
/* a specific 4-D activation layout, for tests: "nchw", "nhwc", "nChw8c", "nChw16c" */
dnal_md dnal_md_tag4(const int64_t dims[4], const char *tag);
/* The same layout kind (dnal_md_like) with c channels. */
dnal_md dnal_md_with_channels(const dnal_md *md, int64_t c);
/* The layout kind of `kind` (the order of its dims and its inner blocks,
 * e.g. aBcd16b or acdb) over other dims of the same rank, strided as oneDNN
 * strides a format tag, of kind's element type. `kind` must be a blocked
 * (not any) layout. */
dnal_md dnal_md_like(const dnal_md *kind, int ndims, const int64_t *dims);
/* The activation layout kinds a network may use (see dnal_net.layout).
 * The destination oneDNN picks (format any) for a generic 32->32 3x3
 * convolution of ctx->dtype on this CPU, e.g. aBcd16b with AVX-512, aBcd8b
 * with AVX2 and SSE4.1: a probe, run by dnal_ctx_create (and
 * dnal_ctx_set_dtype) into ctx->conv_layout. */
dnal_md dnal_md_conv_layout(const dnal_ctx *ctx);
/* The same probe for elements of dtype; 0 where oneDNN has no such convolution. */
int dnal_md_conv_layout_of(const dnal_ctx *ctx, dnnl_data_type_t dtype, dnal_md *layout);
/* The channel block of an activation layout kind: the channels oneDNN
 * computes together in it (16 in nChw16c, 8 in nChw8c), so that a layer
 * keeping a multiple of it pads none; 1 for a layout without one (NHWC). */
int64_t dnal_layout_channel_block(const dnal_md *kind);
/* Channels last (NHWC), of ctx->dtype. */
dnal_md dnal_md_channels_last_kind(const dnal_ctx *ctx);
int dnal_md_equal(const dnal_md *a, const dnal_md *b);
/* The logical dims of a descriptor (of up to 4 dims) into dims, the missing
 * trailing ones 1; returns the number of dims. */
int dnal_md_dims(const dnal_md *md, int64_t dims[4]);
size_t dnal_md_bytes(const dnal_md *md);
/* A channel view of a 4-D (or 2-D) f32 or bf16 activation layout: element
 * (n,c,h,w) is at n*sn + (c/cb)*sc + h*sh + w*sw + c%cb. Supports plain
 * layouts and layouts blocked on channels only (nChw8c, nChw16c); returns 0
 * otherwise. */
typedef struct dnal_chan_view {
    int64_t n, c, h, w; /* logical dims */
    int64_t cpad;       /* channels rounded up to the block */
    int64_t cb;         /* channel block (1 = plain) */
    int64_t sn, sc, sh, sw;
    int bf16;           /* elements are bf16 (else f32) */
} dnal_chan_view;
int dnal_md_chan_view(const dnal_md *md, dnal_chan_view *v);
/* A dense 4-D channels-last (NHWC) layout. */
int dnal_md_is_channels_last(const dnal_md *md);
/* short layout name for messages and tests, e.g. "aBcd16b" */
const char *dnal_md_layout_str(const dnal_md *md, char *buf, size_t len);

/* ---- primitive descriptors (all creation lives in src/core/onednn_desc.c) ---- */
typedef dnnl_primitive_desc_t dnal_pd;

typedef struct dnal_conv_geom {
    int64_t stride, pad; /* same in both spatial dims */
} dnal_conv_geom;

dnal_pd dnal_pd_conv_fwd(const dnal_ctx *ctx, const dnal_md *src, const dnal_md *wei,
                         const dnal_md *bias, const dnal_md *dst, dnal_conv_geom g);
/* Same, NULL where oneDNN has no implementation for these layouts. */
dnal_pd dnal_pd_conv_fwd_try(const dnal_ctx *ctx, const dnal_md *src, const dnal_md *wei,
                             const dnal_md *bias, const dnal_md *dst, dnal_conv_geom g);
dnal_pd dnal_pd_conv_bwd_data(const dnal_ctx *ctx, const dnal_md *diff_src, const dnal_md *wei,
                              const dnal_md *diff_dst, dnal_conv_geom g, dnal_pd hint);
dnal_pd dnal_pd_conv_bwd_weights(const dnal_ctx *ctx, const dnal_md *src,
                                 const dnal_md *diff_wei, const dnal_md *diff_bias,
                                 const dnal_md *diff_dst, dnal_conv_geom g, dnal_pd hint);

enum { DNAL_BN_TRAIN = 0, DNAL_BN_INFER = 1 };
/* BN with separate scale and shift; INFER uses the given (running) statistics;
 * relu: ReLU fused on the output (training keeps its mask in a workspace) */
dnal_pd dnal_pd_bn_fwd(const dnal_ctx *ctx, int kind, const dnal_md *data, float eps, int relu);
dnal_pd dnal_pd_bn_bwd(const dnal_ctx *ctx, const dnal_md *data, float eps, int relu,
                       dnal_pd hint);

/* alg: dnnl_eltwise_relu (alpha 0) or dnnl_eltwise_clip (alpha lower, beta upper) */
dnal_pd dnal_pd_eltwise_fwd(const dnal_ctx *ctx, dnnl_alg_kind_t alg, const dnal_md *data,
                            float alpha, float beta);
dnal_pd dnal_pd_eltwise_bwd(const dnal_ctx *ctx, dnnl_alg_kind_t alg, const dnal_md *data,
                            float alpha, float beta, dnal_pd hint);

typedef struct dnal_pool_geom {
    int64_t kernel, stride, pad;
} dnal_pool_geom;
dnal_pd dnal_pd_pool_fwd(const dnal_ctx *ctx, dnnl_alg_kind_t alg, const dnal_md *src,
                         const dnal_md *dst, dnal_pool_geom g);
dnal_pd dnal_pd_pool_bwd(const dnal_ctx *ctx, dnnl_alg_kind_t alg, const dnal_md *diff_src,
                         const dnal_md *diff_dst, dnal_pool_geom g, dnal_pd hint);

dnal_pd dnal_pd_ip_fwd(const dnal_ctx *ctx, const dnal_md *src, const dnal_md *wei,
                       const dnal_md *bias, const dnal_md *dst);
dnal_pd dnal_pd_ip_bwd_data(const dnal_ctx *ctx, const dnal_md *diff_src, const dnal_md *wei,
                            const dnal_md *diff_dst, dnal_pd hint);
dnal_pd dnal_pd_ip_bwd_weights(const dnal_ctx *ctx, const dnal_md *src, const dnal_md *diff_wei,
                               const dnal_md *diff_bias, const dnal_md *diff_dst, dnal_pd hint);

/* dst = a + b; relu: max(a + b, 0) (a ReLU post-op) */
dnal_pd dnal_pd_binary_add(const dnal_ctx *ctx, const dnal_md *a, const dnal_md *b,
                           const dnal_md *dst, int relu);
dnal_pd dnal_pd_reorder(const dnal_ctx *ctx, const dnal_md *src, const dnal_md *dst);

/* Queries of a primitive descriptor. */
dnal_md dnal_pd_md(dnal_pd pd, dnnl_query_t what, int index);
size_t dnal_pd_scratch_bytes(dnal_pd pd);
const char *dnal_pd_impl(dnal_pd pd);
/* oneDNN's reference (unoptimised) implementation was picked */
int dnal_pd_is_reference(dnal_pd pd);
/* oneDNN's ISA-independent C++ implementation was picked (its name ends in
 * ":any"; the reference ones among them) */
int dnal_pd_is_generic(dnal_pd pd);

/* Primitive from a descriptor (checked). */
dnnl_primitive_t dnal_primitive(dnal_pd pd);
/* A memory object over caller-owned storage. */
dnnl_memory_t dnal_memory(const dnal_ctx *ctx, const dnal_md *md, void *handle);

#endif
