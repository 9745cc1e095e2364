/* The oneDNN CPU engine, its stream and its threads. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <omp.h>

#include "dnal/core.h"

dnal_ctx *dnal_ctx_create(void)
{
    dnal_ctx *ctx = dnal_calloc(sizeof *ctx);
    DNNL_CHECK(dnnl_engine_create(&ctx->engine, dnnl_cpu, 0));
    DNNL_CHECK(dnnl_stream_create(&ctx->stream, ctx->engine, dnnl_stream_default_flags));
    ctx->dtype = dnnl_f32;
    ctx->conv_layout = dnal_md_conv_layout(ctx);
    return ctx;
}

int dnal_ctx_set_dtype(dnal_ctx *ctx, dnnl_data_type_t dtype)
{
    dnal_md layout;
    if (!dnal_md_conv_layout_of(ctx, dtype, &layout))
        return 0;
    ctx->dtype = dtype;
    ctx->conv_layout = layout;
    return 1;
}

dnal_ctx *dnal_ctx_create_for(const char *dtype)
{
    dnal_ctx *ctx = dnal_ctx_create();
    if (strcmp(dtype, "bf16"))
        return ctx;
    static int warned;
    switch (dnal_bf16_supported(ctx)) {
    case DNAL_BF16_NONE:
        dnal_fatal(DNAL_EXIT_USAGE,
                   "run.dtype=bf16: oneDNN creates no bf16 primitives on this CPU (ISA %s); "
                   "bf16 needs avx512_core or later, native with avx512_core_bf16 or "
                   "avx512_core_amx; use run.dtype=f32",
                   dnal_isa_name());
    case DNAL_BF16_EMULATED:
        if (!warned++)
            fprintf(stderr, "dnal: warning: run.dtype=bf16 on ISA %s is emulated (no bf16 "
                            "instructions): expect it slower than f32\n",
                    dnal_isa_name());
        break;
    case DNAL_BF16_NATIVE: break;
    }
    DNAL_ASSERT(dnal_ctx_set_dtype(ctx, dnnl_bf16));
    return ctx;
}

/* oneDNN 2.6 creates bf16 primitives from avx512_core on, with the bf16
 * instructions (vdpbf16ps, vcvtneps2bf16) from avx512_core_bf16 on (the ISA
 * values are bit sets: amx includes bf16); below, it emulates them */
dnal_bf16_support dnal_bf16_supported(const dnal_ctx *ctx)
{
    dnal_md layout;
    if (!dnal_md_conv_layout_of(ctx, dnnl_bf16, &layout))
        return DNAL_BF16_NONE;
    unsigned isa = (unsigned)dnnl_get_effective_cpu_isa(), bf16 = dnnl_cpu_isa_avx512_core_bf16;
    return (isa & bf16) == bf16 ? DNAL_BF16_NATIVE : DNAL_BF16_EMULATED;
}

void dnal_ctx_destroy(dnal_ctx *ctx)
{
    if (!ctx)
        return;
    dnnl_stream_destroy(ctx->stream);
    dnnl_engine_destroy(ctx->engine);
    free(ctx);
}

void dnal_set_threads(int64_t threads)
{
    if (threads > 0) /* oneDNN's CPU runtime is OpenMP: its threads are OpenMP's */
        omp_set_num_threads((int)threads);
}

void dnal_exec(const dnal_ctx *ctx, dnnl_primitive_t p, int nargs, const dnnl_exec_arg_t *args)
{
    DNNL_CHECK(dnnl_primitive_execute(p, ctx->stream, nargs, args));
}

const char *dnal_isa_name(void)
{
    switch (dnnl_get_effective_cpu_isa()) {
    case dnnl_cpu_isa_all: return "all";
    case dnnl_cpu_isa_sse41: return "sse41";
    case dnnl_cpu_isa_avx: return "avx";
    case dnnl_cpu_isa_avx2: return "avx2";
    case dnnl_cpu_isa_avx512_mic: return "avx512_mic";
    case dnnl_cpu_isa_avx512_mic_4ops: return "avx512_mic_4ops";
    case dnnl_cpu_isa_avx512_core: return "avx512_core";
    case dnnl_cpu_isa_avx512_core_vnni: return "avx512_core_vnni";
    case dnnl_cpu_isa_avx512_core_bf16: return "avx512_core_bf16";
    case dnnl_cpu_isa_avx512_core_amx: return "avx512_core_amx";
    case dnnl_cpu_isa_avx2_vnni: return "avx2_vnni";
    default: return "unknown";
    }
}

int64_t dnal_layout_channel_block(const dnal_md *kind)
{
    int64_t dims[4] = {1, 64, 1, 1};
    dnal_md md = dnal_md_like(kind, 4, dims);
    dnal_chan_view v;
    return dnal_md_chan_view(&md, &v) && v.cb > 1 ? v.cb : 1;
}
