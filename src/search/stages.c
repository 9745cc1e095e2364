/* The stage loop: pretrain, search, prune and finetune, the steps of each
 * (forward, backward, the gradient allreduce, the weight update, the
 * architecture update on rank 0), and the checks and stops between steps. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <omp.h>

#include "internal.h"

/* what one stage does besides forward and backward */
typedef struct stage_plan {
    dnal_stage stage;
    double epochs;
    dnal_gate_mode mode;
    int search;                 /* beta schedule and architecture updates */
    dnal_lr_schedule sched;     /* weights (frozen layers skip the update) */
    double momentum, weight_decay;
    int nesterov;
    int momentum_reset;         /* momentum (and alpha's in the search) to 0 at each epoch */
} stage_plan;

/* dist.check_sync: every rank holds the same alpha, masks, beta, lambda */
static void check_replicas(dnal_run *r)
{
    const dnal_net *net = r->net;
    double scalars[2] = {r->arch.beta, r->arch.lambda};
    if (!dnal_dist_same(&r->dist, net->alpha, sizeof(float) * net->n_gates) ||
        !dnal_dist_same(&r->dist, net->mask, sizeof(float) * net->n_gates) ||
        !dnal_dist_same(&r->dist, scalars, sizeof scalars))
        dnal_fatal(DNAL_EXIT_SOFTWARE, "dist.check_sync: the ranks disagree on alpha, masks, beta "
                   "or lambda after step %lld", (long long)r->step);
    r->sync_checks++;
}

/* The architecture step (docs/design.md, "One training step"): alpha
 * gradients summed to rank 0, which averages them, adds the regulariser,
 * updates alpha, lambda (and holds beta, set by the schedule on every rank),
 * then broadcasts alpha, beta, lambda and the regulariser's value in one
 * message. */
static double arch_update(dnal_run *r, int held)
{
    dnal_net *net = r->net;
    dnal_dist *d = &r->dist;
    size_t alpha_bytes = sizeof(float) * net->n_gates;
    double scalars[3] = {0, 0, 0};
    dnal_dist_reduce_to_root(d, net->alpha_grad, net->n_gates);
    if (d->rank == 0) {
        for (size_t c = 0; d->size > 1 && c < net->n_gates; c++)
            net->alpha_grad[c] /= (float)d->size;
        scalars[2] = dnal_arch_step(&r->arch, net, &r->cfg, held);
        scalars[0] = r->arch.beta;
        scalars[1] = r->arch.lambda;
        memcpy(r->arch_msg, net->alpha, alpha_bytes);
        memcpy(r->arch_msg + alpha_bytes, scalars, sizeof scalars);
    }
    if (d->size > 1) {
        dnal_dist_bcast(d, r->arch_msg, alpha_bytes + sizeof scalars);
        memcpy(net->alpha, r->arch_msg, alpha_bytes);
        memcpy(scalars, r->arch_msg + alpha_bytes, sizeof scalars);
        r->arch.beta = scalars[0];
        r->arch.lambda = scalars[1];
    }
    if (r->cfg.dist.check_sync)
        check_replicas(r);
    return scalars[2];
}

/* The last layer (backward's first) of those the step updates whose weight
 * gradient is not finite (after averaging, the same on every rank), or
 * NULL. Adding g * 0 keeps the sum at 0 unless some g is Inf or NaN: one
 * vectorised pass over everything first. Frozen layers' gradients and the
 * padding between layers are read by no update: whatever they hold is no
 * failure, and no layer without a gradient is blamed. */
const dnal_layer *dnal_nonfinite_gradient(const dnal_net *net)
{
    float probe = 0.0f;
#pragma omp parallel for simd reduction(+ : probe) schedule(static)
    for (size_t i = 0; i < net->n_param; i++)
        probe += net->grad[i] * 0.0f;
    if (probe == 0.0f)
        return NULL;
    for (int i = net->n_layers - 1; i >= 0; i--) {
        const dnal_layer *l = net->layers[i];
        for (int k = 0; k < l->n_params && !l->frozen; k++)
            for (size_t j = 0; j < l->param[k].count; j++)
                if (!isfinite(net->grad[l->param[k].off + j]))
                    return l;
    }
    return NULL;
}

static void check_finite(dnal_run *r, const stage_plan *sp, double loss)
{
    const dnal_layer *bad = dnal_nonfinite_gradient(r->net);
    if (!isfinite(loss) || bad)
        dnal_fatal(DNAL_EXIT_NUMERIC,
                   "non-finite %s at step %lld (stage %s, step %lld of the stage, layer %s); the "
                   "last checkpoint is intact",
                   isfinite(loss) ? "gradient" : "loss", (long long)r->step + 1,
                   dnal_stage_name(sp->stage), (long long)r->stage_step + 1,
                   isfinite(loss) ? bad->name : "loss");
}

/* every checkpoint.every steps, and on a signal (to any rank) at the same
 * step on every rank: checkpoint, then exit 75 */
static void checkpoint_or_stop(dnal_run *r)
{
    int every_due = r->cfg.checkpoint.every > 0 && r->step % r->cfg.checkpoint.every == 0;
    int stop = dnal_dist_any(&r->dist, run_io_stop_requested());
    if (!every_due && !stop)
        return;
    dnal_dist_average(&r->dist, r->net->stats, r->net->n_stats);
    run_io_checkpoint(r, stop);
    if (stop) {
        report_stopped(r->step, DNAL_EXIT_CHECKPOINTED);
        dnal_exit_all(DNAL_EXIT_CHECKPOINTED);
    }
}

/* the mean loss of the interval over the ranks, the progress line and the
 * log row; returns the time the interval ended */
static double log_interval(dnal_run *r, const stage_plan *sp, const dnal_pass *train, int64_t s,
                         int64_t total, double t0, double t_last, double loss_sum, int64_t since,
                         double reg, double lr, int end_of_epoch)
{
    double mean_loss = loss_sum / (double)since;
    dnal_dist_sum(&r->dist, &mean_loss, 1); /* over the ranks' slices */
    mean_loss /= (double)r->dist.size;
    double now = omp_get_wtime();
    double ips = (double)(since * r->batch) / (now - t_last);
    double eta = (now - t0) / (double)(s + 1) * (double)(total - s - 1);
    progress_line line = {.stage = sp->stage, .search = sp->search,
                          .epoch = s / r->steps_per_epoch + 1,
                          .step = s % r->steps_per_epoch + 1, .loss = mean_loss, .reg = reg,
                          .lr = lr, .images_per_s = ips, .elapsed_s = now - t0, .eta_s = eta,
                          .final = end_of_epoch};
    report_progress(r, &line);
    dnal_cost c = run_cost(r, train);
    dnal_log_step row = {.step = r->step, .epoch = (double)(s + 1) / (double)r->steps_per_epoch,
                         .stage = sp->stage, .loss = mean_loss, .reg = reg,
                         .lambda = sp->search ? r->arch.lambda : NAN, .lr = lr,
                         .beta = sp->search ? r->arch.beta : NAN, .flops = c.flops,
                         .params = c.params, .images_per_s = ips};
    run_io_step(r, &row);
    return now;
}

static void evaluate_epoch(dnal_run *r, const stage_plan *sp, const dnal_pass *eval, int64_t s,
                           dnal_eval *last)
{
    double epoch = (double)(s + 1) / (double)r->steps_per_epoch;
    dnal_eval e = run_evaluate(r, eval, 1);
    r->eval_pending = e.count < 0; /* a stop cut it short: the resumed run evaluates */
    if (r->eval_pending)
        return;
    *last = e;
    report_eval(sp->stage, epoch, last);
    run_io_eval(r, sp->stage, epoch, last);
    run_merge_skipped(r);
}

static dnal_eval run_stage(dnal_run *r, const stage_plan *sp)
{
    dnal_net *net = r->net;
    const dnal_config *cfg = &r->cfg;
    dnal_pass train = {.training = 1, .gate_mode = sp->mode, .beta = (float)r->arch.beta};
    dnal_pass eval = train;
    eval.training = 0;
    dnal_sgd *opt = &r->opt;
    dnal_sgd_init(opt, net->n_param, sp->momentum, sp->nesterov);
    int64_t total = (int64_t)llround(sp->epochs * (double)r->steps_per_epoch);
    int64_t start = r->stage_step; /* > 0: a resumed stage */
    if (start > 0 && r->resume_momentum)
        memcpy(opt->velocity, r->resume_momentum, sizeof(float) * net->n_param);
    dnal_free(r->resume_momentum);
    r->resume_momentum = NULL;
    dnal_eval last = {.top1 = NAN};
    double t0 = omp_get_wtime(), t_last = t0, reg = 0;
    double loss_sum = start > 0 ? r->log_loss_sum : 0;
    int64_t every = cfg->log.every, since = start > 0 ? r->log_since : 0;
    dnal_dist_plan(&r->dist, net); /* buckets over the layers this stage trains */
    r->loader_next = start;        /* the loader starts with this stage's first step */
    if (start >= total && total > 0) /* resumed after the stage's last step */
        last = run_evaluate(r, &eval, 0);
    if (r->steps_here == 0)
        dnal_stop_check("starting the stage");
    if (r->eval_pending && start > 0) { /* the evaluation a stop cut short, again */
        evaluate_epoch(r, sp, &eval, start - 1, &last);
        if (r->eval_pending)
            checkpoint_or_stop(r); /* stopped again (every rank agreed): exits */
    }
    for (int64_t s = start; s < total; s++) {
        double lr = dnal_lr_at(&sp->sched, (double)s / (double)r->steps_per_epoch);
        if (sp->momentum_reset && s > 0 && s % r->steps_per_epoch == 0) {
            /* a new optimiser each epoch, as the authors' loops make one */
            memset(opt->velocity, 0, sizeof(float) * net->n_param);
            if (sp->search)
                memset(r->arch.opt.velocity, 0, sizeof(float) * net->n_gates);
        }
        if (sp->search) {
            r->arch.beta = dnal_beta_at(cfg, s, total, r->steps_per_epoch);
            train.beta = eval.beta = (float)r->arch.beta;
        }
        if (sp->search && s == 0)
            run_io_gates(r); /* where the search starts */
        run_load_batch(r, s, total);
        dnal_net_forward(net, &train);
        double loss = dnal_softmax_ce_result(net->loss).loss;
        dnal_net_backward(net, &train, dnal_dist_grad_ready, &r->dist);
        dnal_dist_grad_finish(&r->dist, net);
        check_finite(r, sp, loss);
        dnal_update_weights(net, opt, lr, sp->weight_decay);
        if (sp->search)
            reg = arch_update(r, dnal_beta_held(cfg, s, total));
        r->step++;
        r->steps_here++;
        if (sp->search && ((s + 1) % cfg->log.gate_every == 0 || s + 1 == total))
            run_io_gates(r);
        loss_sum += loss;
        since++;
        int end_of_epoch = (s + 1) % r->steps_per_epoch == 0 || s + 1 == total;
        if ((s + 1) % every == 0 || end_of_epoch) {
            t_last = log_interval(r, sp, &train, s, total, t0, t_last, loss_sum, since, reg, lr,
                                  end_of_epoch);
            loss_sum = 0;
            since = 0;
        }
        if (end_of_epoch) {
            evaluate_epoch(r, sp, &eval, s, &last);
            t_last = omp_get_wtime(); /* evaluation time is not training throughput */
        }
        r->stage_step = s + 1;
        r->log_loss_sum = loss_sum;
        r->log_since = since;
        checkpoint_or_stop(r);
    }
    r->stage_step = 0;
    dnal_sgd_free(opt);
    return last;
}

/* ------------------------------------------------------------ the stages */

static void freeze(dnal_net *net, int conv_bn, int classifier)
{
    for (int i = 0; i < net->n_layers; i++) {
        dnal_layer *l = net->layers[i];
        l->frozen = l->kind == DNAL_LINEAR ? classifier : conv_bn;
    }
}

static stage_plan weights_plan(dnal_stage stage, const dnal_stage_cfg *sc, dnal_gate_mode mode)
{
    stage_plan sp = {.stage = stage, .epochs = sc->epochs, .mode = mode,
                     .momentum = sc->momentum, .weight_decay = sc->weight_decay,
                     .nesterov = sc->nesterov, .momentum_reset = !strcmp(sc->momentum_reset, "epoch")};
    sp.sched = (dnal_lr_schedule){.kind = dnal_lr_kind_parse(sc->schedule), .base = sc->lr,
                                  .epochs = sc->epochs, .milestones = sc->milestones,
                                  .n_milestones = sc->n_milestones, .gamma = sc->gamma,
                                  .warmup_epochs = sc->warmup_epochs,
                                  .cosine_before = sc->cosine_before,
                                  .cosine_after = sc->cosine_after};
    return sp;
}

/* pretrain or finetune: the weights with SGD and the stage's schedule */
static dnal_eval train_weights(dnal_run *r, dnal_stage stage, const dnal_stage_cfg *sc,
                               dnal_gate_mode mode)
{
    freeze(r->net, 0, 0);
    stage_plan sp = weights_plan(stage, sc, mode);
    return run_stage(r, &sp);
}

/* alpha trained with the beta continuation; conv and BN frozen (staged
 * mode) or everything trained (joint mode) */
static dnal_eval search(dnal_run *r)
{
    const dnal_config *cfg = &r->cfg;
    DNAL_ASSERT(!r->compact);
    int joint = !strcmp(cfg->search.mode, "joint");
    /* staged: conv and BN frozen; the classifier trains unless switched off */
    freeze(r->net, !joint, !joint && !cfg->search.train_classifier);
    stage_plan sp = weights_plan(DNAL_STAGE_SEARCH, &cfg->pretrain, DNAL_GATE_SEARCH);
    sp.epochs = cfg->search.epochs;
    sp.search = 1;
    if (cfg->search.weight_decay >= 0) /* -1: pretrain's */
        sp.weight_decay = cfg->search.weight_decay;
    sp.momentum_reset = !strcmp(cfg->search.momentum_reset, "epoch");
    sp.sched = (dnal_lr_schedule){.kind = DNAL_LR_CONSTANT, .base = cfg->search.classifier_lr};
    dnal_eval e = run_stage(r, &sp);
    freeze(r->net, 0, 0);
    r->top1_search = e.top1;
    report_search_end(r);
    return e;
}

/* the compact network of the current masks replaces the dense one */
static void compact(dnal_run *r)
{
    DNAL_ASSERT(!r->compact);
    dnal_arch_record_of(&r->record, r->net);
    r->compact_cost = dnal_net_cost(r->net, r->net->mask);
    r->compact_authors = dnal_net_cost_as(r->net, r->net->mask, DNAL_COUNT_AUTHORS);
    dnal_net *small = dnal_net_compact(r->net, r->local_batch);
    run_latency_prune(r, r->net, small); /* while both are there */
    dnal_net_destroy(r->net);
    r->net = small;
    r->compact = 1;
    dnal_net_set_labels(r->net, r->labels);
}

/* masks from the gates, decided on rank 0 and broadcast so that every rank
 * builds the same network, then the compact network */
static dnal_eval prune(dnal_run *r)
{
    DNAL_ASSERT(!r->compact);
    if (r->dist.rank == 0)
        dnal_prune(r->net, r->arch.beta, r->cfg.prune.threshold, r->cfg.prune.channel_multiple,
                   &r->arch.budget);
    dnal_dist_bcast(&r->dist, r->net->mask, sizeof(float) * r->net->n_gates);
    if (r->cfg.dist.check_sync)
        check_replicas(r);
    report_removed_candidates(r); /* while the dense net is there */
    int64_t multiple = r->cfg.prune.channel_multiple;
    /* auto: the block of the network's layout, or in channels last the one
     * of the convolutions' blocked layout (dnal_net_channel_block) */
    char dense_layout[32];
    dnal_md_layout_str(dnal_layout_channel_block(&r->net->layout) > 1 ? &r->net->layout
                                                                      : &r->ctx->conv_layout,
                       dense_layout, sizeof dense_layout);
    if (multiple == 0)
        multiple = dnal_net_channel_block(r->net);
    const dnal_budget *budget = &r->arch.budget;
    double reached = budget->target > 0 ? dnal_budget_fraction(budget, r->net, r->net->mask) : 0;
    compact(r);
    dnal_pass eval = {.training = 0, .gate_mode = DNAL_GATE_OFF, .beta = 1};
    dnal_eval e = run_evaluate(r, &eval, 0);
    r->top1_pruned = e.top1;
    report_eval(DNAL_STAGE_PRUNE, 0, &e);
    run_io_eval(r, DNAL_STAGE_PRUNE, 0, &e);
    report_prune(r, multiple, r->cfg.prune.channel_multiple == 0 ? dense_layout : NULL);
    if (reached > budget->target + 1e-9) /* the fit found nothing smaller */
        report_budget_missed(budget, reached, multiple);
    return e;
}

static void stage_done(dnal_run *r, const char *stage)
{
    dnal_dist_average(&r->dist, r->net->stats, r->net->n_stats); /* what checkpoints hold */
    size_t n = strlen(r->done);
    snprintf(r->done + n, sizeof r->done - n, "%s%s", n ? "," : "", stage);
    run_io_stage_end(r, stage);
}

static int in_list(const char *list, const char *name)
{
    char padded[128], want[32];
    snprintf(padded, sizeof padded, ",%s,", list);
    snprintf(want, sizeof want, ",%s,", name);
    return strstr(padded, want) != NULL;
}

/* a stage of run.stages not done yet (a resumed run skips the others) */
static int stage_to_run(const dnal_run *r, const char *name)
{
    return in_list(r->cfg.run.stages, name) && !in_list(r->done, name);
}

void dnal_run_stages(dnal_run *r)
{
    const dnal_config *cfg = &r->cfg;
    dnal_eval e = {.top1 = NAN};
    if (stage_to_run(r, "pretrain")) {
        e = train_weights(r, DNAL_STAGE_PRETRAIN, &cfg->pretrain, DNAL_GATE_OFF);
        stage_done(r, "pretrain");
    }
    if (stage_to_run(r, "search")) {
        if (r->compact)
            dnal_fatal(DNAL_EXIT_USAGE, "run.stages: cannot search a compact (pruned) network");
        e = search(r);
        stage_done(r, "search");
    }
    if (stage_to_run(r, "prune")) {
        if (r->compact)
            dnal_fatal(DNAL_EXIT_USAGE, "run.stages: the network is pruned already");
        e = prune(r);
        stage_done(r, "prune");
    }
    if (stage_to_run(r, "finetune")) {
        e = train_weights(r, DNAL_STAGE_FINETUNE, &cfg->finetune,
                          r->compact ? DNAL_GATE_OFF : DNAL_GATE_PRUNED);
        stage_done(r, "finetune");
    }
    r->top1_final = e.top1;
    report_summary(r);
    run_io_finish(r);
}
