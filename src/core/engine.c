/* The oneDNN CPU engine, its stream and its threads. */
#include <stdlib.h>

#include <omp.h>

#include "dnal/core.h"

dnal_ctx *dnal_ctx_create(void)
{
    dnal_ctx *ctx = dnal_calloc(sizeof *ctx);
    DNNL_CHECK(dnnl_engine_create(&ctx->engine, dnnl_cpu, 0));
    DNNL_CHECK(dnnl_stream_create(&ctx->stream, ctx->engine, dnnl_stream_default_flags));
    ctx->conv_layout = dnal_md_conv_layout(ctx);
    return ctx;
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
