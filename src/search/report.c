/* Every line of a run that a person (or a script grepping a SLURM output
 * file) reads on stdout: progress, evaluations, the search's end, pruning,
 * the summary and the kept-channels table, checkpoints, resumes. The
 * key=value lines are a contract (docs/design.md, "Output"). Only rank 0's
 * stdout is open; the other ranks print into /dev/null. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

void report_progress(const dnal_run *r, const progress_line *p)
{
    printf("%sstage=%s epoch=%lld step=%lld/%lld loss=%.4f", r->tty ? "\r" : "",
           dnal_stage_name(p->stage), (long long)p->epoch, (long long)p->step,
           (long long)r->steps_per_epoch, p->loss);
    if (p->search) {
        dnal_arch *a = (dnal_arch *)&r->arch;
        printf(" reg=%.4f lambda=%.3g beta=%.4g kept=%.3f flops=%.3f", p->reg, a->lambda, a->beta,
               dnal_arch_open_fraction(a, r->net), dnal_arch_expected_flops(a, r->net));
        if (a->latency.tab) /* the predicted time under the gates, of dense */
            printf(" time=%.3f", dnal_arch_expected_latency(a, r->net));
    } else if (r->compact) {
        printf(" flops=%.3f", r->compact_cost.flops / r->dense_cost.flops);
    }
    printf(" lr=%.4g images_per_s=%.0f elapsed=%.0fs eta=%.0fs%s", p->lr, p->images_per_s,
           p->elapsed_s, p->eta_s, r->tty && !p->final ? "\033[K" : "\n");
    if (r->tty && p->final)
        printf("\033[K");
    fflush(stdout);
}

void report_eval(dnal_stage stage, double epoch, const dnal_eval *e)
{
    printf("eval stage=%s epoch=%g top1=%.4f top5=%.4f loss=%.4f\n", dnal_stage_name(stage), epoch,
           e->top1, e->top5, e->loss);
    fflush(stdout);
}

void report_search_end(const dnal_run *r)
{
    dnal_arch *a = (dnal_arch *)&r->arch;
    printf("search_end beta=%.6g lambda=%.6g binary_gap=%.3g flops_expected=%.4f\n", a->beta,
           a->lambda, dnal_arch_binary_gap(a, r->net), dnal_arch_expected_flops(a, r->net));
    if (r->cfg.dist.check_sync)
        printf("check_sync ranks=%d checks=%lld identical=1\n", r->dist.size,
               (long long)r->sync_checks);
    fflush(stdout);
}

/* removable branches (supernet candidates) whose gates all closed, by the
 * name of the candidate (its last gate's name without the gate's part) */
void report_removed_candidates(const dnal_run *r)
{
    int branches = 0;
    int *gone = dnal_alloc(sizeof *gone * ((size_t)r->net->n_layers + 1));
    int removed = dnal_removed_branches(r->net, &branches, gone);
    if (branches > 0) {
        printf("prune removed_candidates=%d of %d\n", removed, branches);
        for (int k = 0; k < removed; k++) {
            const char *name = r->net->layers[gone[k]]->name, *dot = strrchr(name, '.');
            printf("prune removed %.*s\n", dot ? (int)(dot - name) : (int)strlen(name), name);
        }
    }
    dnal_free(gone);
    fflush(stdout);
}

void report_prune(const dnal_run *r, int64_t multiple, const char *auto_from)
{
    char layout[32];
    printf("prune flops=%.4f params=%.4f flops_authors=%.4f params_authors=%.4f "
           "channel_multiple=%lld%s%s compact_layout=%s\n",
           r->compact_cost.flops / r->dense_cost.flops,
           r->compact_cost.params / r->dense_cost.params,
           r->compact_authors.flops / r->dense_cost.flops,
           r->compact_authors.params / r->dense_cost.params, (long long)multiple,
           auto_from ? " auto_from=" : "", auto_from ? auto_from : "",
           dnal_md_layout_str(&r->net->layout, layout, sizeof layout));
    fflush(stdout);
}

void report_latency(const dnal_run *r)
{
    const dnal_latency_times *t = &r->latency_times;
    printf("prune_latency of=%s dense_ms=%.3f compact_ms=%.3f ratio=%.4f predicted_dense_ms=%.3f "
           "predicted_compact_ms=%.3f predicted_ratio=%.4f\n", t->of, t->dense_ms, t->compact_ms,
           t->ratio, t->predicted_dense_ms, t->predicted_compact_ms, t->predicted_ratio);
    fflush(stdout);
}

void report_budget_missed(const dnal_budget *b, double reached, int64_t multiple)
{
    printf("prune note: the budget %s=%.4g is out of reach: the smallest network with at least "
           "one channel per gated layer, in multiples of %lld, costs %.4f of dense\n",
           b->cost.name, b->target, (long long)multiple, reached);
    fflush(stdout);
}

/* the kept channels of every gated layer (after pruning) */
static void print_arch(const dnal_arch_record *rec)
{
    printf("%-28s %8s %8s %7s\n", "gated layer", "dense", "kept", "kept%");
    int64_t total = 0, kept = 0;
    for (int i = 0; i < rec->n; i++) {
        int64_t k = 0;
        for (int64_t c = 0; c < rec->channels[i]; c++)
            k += rec->mask[i][c] != 0.0f;
        printf("%-28s %8lld %8lld %6.1f%%\n", rec->name[i], (long long)rec->channels[i],
               (long long)k, 100.0 * (double)k / (double)rec->channels[i]);
        total += rec->channels[i];
        kept += k;
    }
    printf("%-28s %8lld %8lld %6.1f%%\n", "all", (long long)total, (long long)kept,
           total ? 100.0 * (double)kept / (double)total : 0.0);
}

void report_summary(const dnal_run *r)
{
    const dnal_latency_times *t = &r->latency_times;
    printf("summary flops_dense=%.0f flops_compact=%.0f params_dense=%.0f params_compact=%.0f "
           "flops_compact_authors=%.0f params_compact_authors=%.0f "
           "top1_search=%.4f top1_pruned=%.4f top1_final=%.4f",
           r->dense_cost.flops, r->compact_cost.flops, r->dense_cost.params,
           r->compact_cost.params, r->compact_authors.flops, r->compact_authors.params,
           r->top1_search, r->top1_pruned, r->top1_final);
    if (t->of[0]) /* pruned with a latency table */
        printf(" time_of=%s time_ratio=%.4f predicted_ratio=%.4f time_compact_ms=%.3f "
               "predicted_compact_ms=%.3f", t->of, t->ratio, t->predicted_ratio, t->compact_ms,
               t->predicted_compact_ms);
    printf("\n");
    if (r->compact)
        print_arch(&r->record);
    fflush(stdout);
}

void report_skipped(int64_t train, int64_t test)
{
    printf("data skipped train=%lld test=%lld (unreadable image files, named on stderr)\n",
           (long long)train, (long long)test);
    fflush(stdout);
}

void report_stopped(int64_t step, int code)
{
    printf("stopped step=%lld signal: checkpointed, exit %d (resume with --resume)\n",
           (long long)step, code);
    fflush(stdout);
}

void report_checkpoint(const char *what, const char *path, int64_t step, int signal)
{
    if (!strcmp(what, "step"))
        printf("checkpoint step=%lld path=%s%s\n", (long long)step, path, signal ? " signal=1" : "");
    else
        printf("checkpoint stage=%s path=%s\n", what, path);
    fflush(stdout);
}

void report_model_file(const char *path)
{
    printf("model path=%s\n", path);
    fflush(stdout);
}

void report_init(const char *path, const dnal_checkpoint_info *info)
{
    printf("init from=%s stages_done=%s step=%lld compact=%d\n", path, info->done,
           (long long)info->step, info->compact);
    fflush(stdout);
}

void report_resume(const dnal_run *r, const char *path, const dnal_checkpoint_info *info)
{
    printf("resume from=%s stages_done=%s step=%lld stage_step=%lld world_size=%d "
           "checkpoint_world_size=%d\n",
           path, info->done[0] ? info->done : "none", (long long)info->step,
           (long long)info->stage_step, r->dist.size, info->world_size);
    if (info->world_size != r->dist.size)
        printf("resume note: the checkpoint was written by %d ranks, this run has %d; the data "
               "order does not depend on it, per-rank BN statistics do\n",
               info->world_size, r->dist.size);
    fflush(stdout);
}

void report_run_id(const char *id, int resumed)
{
    printf("run id=%s%s\n", id[0] ? id : "none", resumed ? " (resumed)" : "");
    fflush(stdout);
}

void report_log(const char *path, int resumed, int missing, int64_t step, const char *moved)
{
    if (moved[0])
        printf("log note: %s could not be opened as this run's log; moved to %s, a new log "
               "starts at step %lld\n", path, moved, (long long)step);
    else if (missing)
        printf("log note: %s not found; a new log starts at step %lld\n", path, (long long)step);
    printf("log path=%s%s\n", path, resumed ? " resumed=1" : "");
    fflush(stdout);
}
