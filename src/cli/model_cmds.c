/* dnal export CKPT -o MODEL.h5 and dnal eval MODEL.h5: the compact model. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli_internal.h"
#include "dnal/cli.h"
#include "dnal/search.h"

int dnal_cmd_export(int argc, char **argv)
{
    const char *in = NULL, *out = NULL, *sets[16], *format = NULL;
    int nsets = 0, fold_bn = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-o") && i + 1 < argc)
            out = argv[++i];
        else if (!strcmp(argv[i], "--format") && i + 1 < argc)
            format = argv[++i];
        else if (!strcmp(argv[i], "--fold-bn"))
            fold_bn = 1;
        else if (!strcmp(argv[i], "--set") && i + 1 < argc && nsets < 16)
            sets[nsets++] = argv[++i];
        else if (argv[i][0] == '-') {
            fprintf(stderr, "dnal export: unknown option '%s' (see dnal export --help)\n", argv[i]);
            return DNAL_EXIT_USAGE;
        } else if (!in)
            in = argv[i];
        else {
            fprintf(stderr, "dnal export: unexpected argument '%s'\n", argv[i]);
            return DNAL_EXIT_USAGE;
        }
    }
    if (!in || !out) {
        fprintf(stderr, "dnal export: usage: dnal export CHECKPOINT -o MODEL.h5|MODEL.onnx "
                "[--format h5|onnx] [--fold-bn]\n");
        return DNAL_EXIT_USAGE;
    }
    size_t olen = strlen(out);
    if (!format) /* from the extension */
        format = olen > 5 && !strcmp(out + olen - 5, ".onnx") ? "onnx" : "h5";
    if ((strcmp(format, "onnx") && strcmp(format, "h5")) || (fold_bn && strcmp(format, "onnx"))) {
        fprintf(stderr, "dnal export: --format takes h5 or onnx (not '%s'); --fold-bn is for onnx\n",
                format);
        return DNAL_EXIT_USAGE;
    }
    dnal_ctx *ctx = dnal_ctx_create();
    ctx->params_only = 1; /* nothing runs: what the file claims costs no activations */
    dnal_checkpoint_info info;
    dnal_arch_record rec = {0};
    dnal_net *net = dnal_checkpoint_load(ctx, in, 1, &info, &rec);
    dnal_cost dense = info.model.dense, compact = info.model.compact;
    /* a searched, unpruned checkpoint is pruned with the run's settings
     * (--set prune.* overrides them) at its beta; one never searched stays dense */
    char done[80];
    snprintf(done, sizeof done, ",%s,", info.done);
    if (!info.compact) {
        dnal_config cfg;
        dnal_config_defaults(&cfg);
        if (dnal_config_load_text(&cfg, info.config, in))
            return DNAL_EXIT_DATA;
        for (int i = 0; i < nsets; i++)
            if (strncmp(sets[i], "prune.", 6) || dnal_config_set(&cfg, sets[i])) {
                fprintf(stderr, "dnal export: --set takes prune.threshold or prune.channel_multiple\n");
                return DNAL_EXIT_USAGE;
            }
        /* a time budget: the run's latency table, bound to this network */
        dnal_latency_use latency = {NULL, strcmp(cfg.search.latency_of, "infer")
                                              ? DNAL_LATENCY_TRAIN : DNAL_LATENCY_INFER};
        if (cfg.search.latency_target > 0 && strstr(done, ",search,"))
            latency.tab = dnal_latency_load(cfg.search.latency_table, net, &info.model.cfg);
        dnal_budget budget = dnal_budget_of_config(&cfg, &latency);
        if (strstr(done, ",search,"))
            dnal_prune(net, info.beta, cfg.prune.threshold, cfg.prune.channel_multiple, &budget);
        dnal_latency_free((dnal_latency *)latency.tab);
        dnal_arch_record_of(&rec, net);
        compact = dnal_net_cost(net, net->mask);
        dnal_net *small = dnal_net_compact(net, 1);
        dnal_net_destroy(net);
        net = small;
    }
    if (!strcmp(format, "onnx"))
        dnal_onnx_save(out, net, fold_bn);
    else
        dnal_model_save(out, &info.model.cfg, &rec, net, dense, compact);
    printf("export model=%s flops_dense=%.0f flops=%.0f params_dense=%.0f params=%.0f path=%s%s\n",
           info.model.name, dense.flops, compact.flops, dense.params, compact.params, out,
           strcmp(format, "onnx") ? "" : fold_bn ? " format=onnx fold_bn=1" : " format=onnx");
    dnal_arch_record_free(&rec);
    dnal_checkpoint_info_free(&info);
    dnal_net_destroy(net);
    dnal_ctx_destroy(ctx);
    return DNAL_EXIT_OK;
}

int dnal_cmd_eval(int argc, char **argv)
{
    dnal_config cfg;
    const char *pos[1];
    int npos = 0, rc = cli_config("eval", argc, argv, &cfg, &npos, 1, pos);
    if (rc)
        return rc;
    if (npos != 1) {
        fprintf(stderr, "dnal eval: usage: dnal eval MODEL.h5 [--set data.*=...]\n");
        return DNAL_EXIT_USAGE;
    }
    dnal_set_threads(cfg.run.threads);
    dnal_data_cfg d = dnal_data_config(&cfg, DNAL_SPLIT_TEST);
    dnal_ctx *ctx = dnal_ctx_create_for(cfg.run.dtype);
    dnal_dataset *test = dnal_dataset_open(&d, DNAL_SPLIT_TEST);
    dnal_model_info info; /* compared with the data before a network is built */
    dnal_model_file_info(pos[0], cfg.data.batch, &info);
    int64_t c, h, w;
    dnal_dataset_shape(test, &c, &h, &w);
    if (c != info.cfg.in_channels || h != info.cfg.image_size ||
        dnal_dataset_classes(test) != info.cfg.classes)
        dnal_fatal(DNAL_EXIT_USAGE, "%s takes %lldx%lldx%lld images of %lld classes; %s gives %lldx%lldx%lld of %lld",
                   pos[0], (long long)info.cfg.in_channels, (long long)info.cfg.image_size,
                   (long long)info.cfg.image_size, (long long)info.cfg.classes,
                   dnal_dataset_name(test), (long long)c, (long long)h, (long long)w,
                   (long long)dnal_dataset_classes(test));
    dnal_net *net = dnal_model_load(ctx, pos[0], cfg.data.batch, &info);
    int32_t *labels = dnal_alloc(sizeof *labels * (size_t)cfg.data.batch);
    dnal_pass p = {.training = 0, .gate_mode = DNAL_GATE_OFF, .beta = 1};
    dnal_eval e = dnal_evaluate(net, test, &p, labels, NULL);
    dnal_cost real = dnal_net_cost(net, NULL);
    printf("eval stage=model epoch=0 top1=%.4f top5=%.4f loss=%.4f\n", e.top1, e.top5, e.loss);
    printf("model model=%s flops=%.0f params=%.0f flops_dense=%.0f params_dense=%.0f samples=%lld\n",
           info.name, real.flops, real.params, info.dense.flops, info.dense.params,
           (long long)e.count);
    dnal_free(labels);
    dnal_net_destroy(net);
    dnal_dataset_close(test);
    dnal_ctx_destroy(ctx);
    return DNAL_EXIT_OK;
}
