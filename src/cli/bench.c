/* dnal bench: times forward, backward and update of a model on synthetic
 * data; prints each layer kind's share of the step and the bench line
 * (with primitives_ms, the layers' own time per step, and conv_ms, the
 * convolutions' part of it);
 * with data.dataset imagenet or imagenet-shards also the decoding rate
 * (bench_data line).
 * Under mpirun the global batch (data.batch) is split over the ranks and
 * the gradients averaged as in training (dist.allreduce, dist.bucket_kb);
 * the line then also gives the communication: allreduce_ms, the time one
 * blocking allreduce of every gradient takes (what overlap can hide), and
 * exposed_comm_ms, the time the step spent inside MPI calls (what it did
 * not hide). Times are rank 0's; the ranks run in lockstep. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mpi.h>
#include <omp.h>

#include "cli_internal.h"
#include "dnal/cli.h"
#include "dnal/data.h"
#include "dnal/dist.h"
#include "dnal/models.h"
#include "dnal/optim.h"
#include "dnal/search.h"

/* With a streamed dataset (imagenet, imagenet-shards): how fast this rank's
 * data.workers threads decode its slices of `batches` global batches (at
 * least 512 images) through the loader, against the training step's pace,
 * so a user sees whether loading keeps up. per_worker: images per second
 * of a worker's decoding time. */
static void bench_data(const dnal_config *cfg, const dnal_dist *dist, int64_t first, int64_t local,
                       long batches, double train_ips)
{
    dnal_data_cfg dc = dnal_data_config(cfg, DNAL_SPLIT_TRAIN);
    dnal_dataset *d = dnal_dataset_open(&dc, DNAL_SPLIT_TRAIN);
    int workers = cfg->data.workers > 0 ? (int)cfg->data.workers : 1;
    int64_t n = dnal_dataset_size(d), *order = dnal_alloc(sizeof *order * (size_t)n);
    int64_t *index = dnal_alloc(sizeof *index * (size_t)local), c, h, w;
    dnal_dataset_shape(d, &c, &h, &w);
    float *images = dnal_alloc(sizeof *images * (size_t)(local * c * h * w));
    int32_t *labels = dnal_alloc(sizeof *labels * (size_t)local);
    dnal_epoch_order(cfg->run.seed, 0, n, order);
    if (batches * local < 512) /* enough images for a stable rate */
        batches = (512 + local - 1) / local;
    dnal_loader *l = dnal_loader_open(d, workers, 3, local);
    double t0 = omp_get_wtime();
    for (long b = 0, pushed = 0; b < batches; b++) {
        for (; pushed <= b + 2 && pushed < batches; pushed++) {
            for (int64_t k = 0; k < local; k++)
                index[k] = order[(pushed * cfg->data.batch + first + k) % n];
            dnal_loader_push(l, 0, index, local);
        }
        dnal_loader_pop(l, images, labels);
    }
    double wall = omp_get_wtime() - t0, images_done = (double)(batches * local);
    double busy = dnal_loader_busy_seconds(l);
    dnal_loader_close(l);
    double rate = images_done / wall;
    dnal_dist_sum(dist, &rate, 1); /* every rank decodes its own slice */
    printf("bench_data dataset=%s workers=%d ranks=%d image_size=%lld images_per_s=%.1f "
           "per_worker=%.1f train_images_per_s=%.1f keeps_up=%s skipped=%lld\n",
           cfg->data.dataset, workers, dist->size, (long long)h, rate, images_done / busy,
           train_ips, rate >= train_ips ? "yes" : "no", (long long)dnal_dataset_skipped(d));
    dnal_free(order);
    dnal_free(index);
    dnal_free(images);
    dnal_free(labels);
    dnal_dataset_close(d);
}

/* takes --steps N, --warmup N and --no-fuse out of argv */
static int bench_flags(int *argc, char **argv, long *steps, long *warmup, int *no_fuse)
{
    int out = 1;
    for (int i = 1; i < *argc; i++) {
        if (!strcmp(argv[i], "--no-fuse")) {
            *no_fuse = 1;
            continue;
        }
        long *dst = !strcmp(argv[i], "--steps") ? steps : !strcmp(argv[i], "--warmup") ? warmup : NULL;
        if (!dst) {
            argv[out++] = argv[i];
            continue;
        }
        char *end = NULL;
        if (i + 1 >= *argc || (*dst = strtol(argv[i + 1], &end, 10), *end != '\0') || *dst < 0 ||
            (dst == steps && *dst < 1)) {
            fprintf(stderr, "dnal bench: %s needs a count\n", argv[i]);
            return DNAL_EXIT_USAGE;
        }
        i++;
    }
    *argc = out;
    return 0;
}

int dnal_cmd_bench(int argc, char **argv)
{
    long steps = 10, warmup = 3;
    dnal_config cfg;
    const char *file[1];
    int no_fuse = 0, nfile = 0, rc = bench_flags(&argc, argv, &steps, &warmup, &no_fuse);
    if (rc || (rc = cli_config("bench", argc, argv, &cfg, &nfile, 1, file)))
        return rc;
    dnal_set_threads(cfg.run.threads);
    cli_mpi_start();
    dnal_dist dist;
    dnal_dist_init(&dist, MPI_COMM_WORLD, !strcmp(cfg.dist.allreduce, "blocking"), cfg.dist.bucket_kb);
    int64_t first, local;
    if (!dnal_dist_shard(cfg.data.batch, dist.rank, dist.size, &first, &local))
        dnal_fatal(DNAL_EXIT_USAGE, "data.batch=%lld does not split evenly over %d ranks",
                   (long long)cfg.data.batch, dist.size);

    dnal_ctx *ctx = dnal_ctx_create_for(cfg.run.dtype);
    ctx->no_fuse = no_fuse;
    dnal_net *net;
    dnal_model_info info;
    dnal_model_cfg m;
    if (nfile) { /* an exported compact model: its own shapes */
        net = dnal_model_load(ctx, file[0], local, &info);
        m = info.cfg;
        m.batch = local;
    } else { /* a zoo model at the input it was published for, or data.image_size */
        const dnal_model_spec *spec = dnal_model_get(cfg.model.name);
        m = dnal_model_config(&cfg, local, spec->in_channels,
                              cfg.data.image_size ? cfg.data.image_size : spec->image_size,
                              spec->classes);
        if (!strcmp(m.name, DNAL_MODEL_ONNX)) /* the file's input */
            dnal_onnx_shape(m.path, m.no_gate, &m.in_channels, &m.image_size, &m.classes);
        net = dnal_model_build(ctx, &m);
        dnal_model_start(net, &m, cfg.run.seed);
    }
    int32_t *labels = dnal_alloc(sizeof *labels * (size_t)m.batch);
    float *x = dnal_tensor_data(net->input);
    for (size_t i = 0; i < dnal_tensor_count(net->input); i++) /* each rank its own images */
        x[i] = (float)(((i + (size_t)first * 7919u) * 2654435761u) % 1000) / 500.0f - 1.0f;
    for (int64_t i = 0; i < m.batch; i++)
        labels[i] = (int32_t)(i % m.classes);
    dnal_net_set_labels(net, labels);
    dnal_sgd opt;
    dnal_sgd_init(&opt, net->n_param, cfg.pretrain.momentum, 0);
    dnal_pass pass = {.training = 1, .gate_mode = DNAL_GATE_OFF, .beta = 1};

    dnal_dist_plan(&dist, net);
    double t_update = 0, t_total = 0;
    for (long s = 0; s < warmup + steps; s++) {
        if (s == warmup) {
            net->profile = 1;
            dnal_dist_reset_times(&dist);
            MPI_CHECK(MPI_Barrier(MPI_COMM_WORLD));
        }
        double t0 = omp_get_wtime();
        dnal_net_forward(net, &pass);
        dnal_net_backward(net, &pass, dnal_dist_grad_ready, &dist);
        dnal_dist_grad_finish(&dist, net);
        double t1 = omp_get_wtime();
        dnal_sgd_update(&opt, 1e-3, cfg.pretrain.weight_decay, net->param, net->grad, 0, net->n_param);
        double t2 = omp_get_wtime();
        if (s >= warmup) {
            t_update += t2 - t1;
            t_total += t2 - t0;
        }
    }
    double exposed = dist.t_exposed;
    /* the same gradients in one blocking allreduce per step: the cost of
     * communication if nothing overlapped it */
    dist.blocking = 1;
    dnal_dist_reset_times(&dist);
    MPI_CHECK(MPI_Barrier(MPI_COMM_WORLD));
    for (long s = 0; s < steps; s++)
        dnal_dist_grad_finish(&dist, net);
    double allreduce = dist.t_allreduce;
    /* fwd + bwd: the layers' own times and the gradient sums of fan-out
     * (primitives_ms), without the update; conv the convolutions' share */
    double fwd = 0, bwd = net->grad_sum_time, conv = 0, kind_time[DNAL_LAYER_KINDS][2] = {{0}};
    for (int i = 0; i < net->n_layers; i++) {
        if (net->layers[i]->kind == DNAL_CONV)
            conv += net->fwd_time[i] + net->bwd_time[i];
        kind_time[net->layers[i]->kind][0] += net->fwd_time[i];
        kind_time[net->layers[i]->kind][1] += net->bwd_time[i];
        fwd += net->fwd_time[i];
        bwd += net->bwd_time[i];
    }
    double per = 1e3 / (double)steps;
    for (int k = 0; k < DNAL_LAYER_KINDS; k++) {
        double t = kind_time[k][0] + kind_time[k][1];
        if (t > 0)
            printf("bench_layer kind=%s forward_ms=%.3f backward_ms=%.3f share=%.3f\n",
                   dnal_layer_kind_name((dnal_layer_kind)k), kind_time[k][0] * per,
                   kind_time[k][1] * per, t / t_total);
    }
    printf("bench_layer kind=grad_sum forward_ms=0.000 backward_ms=%.3f share=%.3f\n",
           net->grad_sum_time * per, net->grad_sum_time / t_total);
    printf("bench_layer kind=update forward_ms=0.000 backward_ms=%.3f share=%.3f\n", t_update * per,
           t_update / t_total);
    dnal_cost cost = dnal_net_cost(net, NULL);
    printf("bench model=%s batch=%lld ranks=%d threads=%d images_per_s=%.1f step_ms=%.3f "
           "forward_ms=%.3f backward_ms=%.3f update_ms=%.3f primitives_ms=%.3f conv_ms=%.3f "
           "compute_ms=%.3f allreduce_ms=%.3f exposed_comm_ms=%.3f flops=%.0f params=%.0f "
           "fused_gates=%d fused_relus=%d dtype=%s isa=%s%s%s\n",
           m.name, (long long)cfg.data.batch, dist.size, omp_get_max_threads(),
           (double)(cfg.data.batch * steps) / t_total, t_total * per, fwd * per, bwd * per,
           t_update * per, (fwd + bwd) * per, conv * per, (t_total - exposed) * per,
           allreduce * per, exposed * per, cost.flops, cost.params, net->n_fused_gates,
           net->n_fused_relus, cfg.run.dtype, dnal_isa_name(),
           nfile ? " file=" : "", nfile ? file[0] : "");
    if (!strcmp(cfg.data.dataset, "imagenet") || !strcmp(cfg.data.dataset, "imagenet-shards"))
        bench_data(&cfg, &dist, first, local, steps, (double)(cfg.data.batch * steps) / t_total);
    dnal_sgd_free(&opt);
    dnal_dist_free(&dist);
    dnal_free(labels);
    dnal_net_destroy(net);
    dnal_ctx_destroy(ctx);
    MPI_Finalize();
    return DNAL_EXIT_OK;
}
