/* A run's state and the functions its files share (not installed: the
 * run is opaque outside src/search).
 *
 *   run.c      opening and closing a run, its data (epoch orders, batches,
 *              skipped files), evaluation
 *   stages.c   the stage loop: pretrain, search, prune, finetune
 *   run_io.c   the run's files: run log, checkpoints, the model file,
 *              run.init and --resume, the stop signals
 *   report.c   every line a person reads on stdout */
#ifndef DNAL_SEARCH_INTERNAL_H
#define DNAL_SEARCH_INTERNAL_H

#include "dnal/io.h"
#include "dnal/search.h"

struct dnal_run {
    dnal_config cfg;          /* resolved */
    dnal_ctx *ctx;
    dnal_dataset *train, *test;
    dnal_model_cfg model;     /* the dense model */
    dnal_net *net;            /* dense, or compact after pruning */
    int compact;
    dnal_arch arch;
    dnal_arch_record record;  /* after pruning */
    dnal_cost dense_cost, compact_cost;
    dnal_cost compact_authors;  /* the compact cost counted the authors' way */
    double top1_search, top1_pruned, top1_final;
    dnal_dist dist;           /* the ranks sharing the run */
    int64_t batch;            /* global batch */
    int64_t local_batch, shard_first; /* this rank's slice of each global batch */
    unsigned char *arch_msg;  /* rank 0's alpha, beta, lambda, regulariser after an update */
    int64_t sync_checks;      /* dist.check_sync comparisons passed */
    int64_t steps_per_epoch;  /* full batches of the train split */
    int64_t *order;           /* this epoch's order of the train split */
    int64_t order_epoch;      /* the epoch `order` belongs to (-1: none) */
    int64_t *order_next;      /* the next epoch's, for batches decoded ahead */
    int64_t order_next_epoch;
    dnal_loader *loader;      /* streamed data with data.workers > 0, else NULL */
    int64_t loader_next;      /* the stage's next step to hand to the loader */
    uint8_t *skip_flags;      /* streamed data: the ranks' skipped files, merged */
    int64_t skipped_printed;
    int32_t *labels;
    dnal_arena buffers;       /* order, order_next, labels, arch_msg, skip_flags */
    int64_t step;             /* steps done in the whole run */
    int64_t stage_step;       /* steps done in the stage running (0 between stages) */
    dnal_sgd opt;             /* the weights' optimizer of the stage running */
    double log_loss_sum;      /* loss summed since the last progress line ... */
    int64_t log_since;        /* ... over this many steps (for exact resume) */
    float *resume_momentum;   /* weight momentum a resumed stage starts with */
    int tty;                  /* progress updates one line in place */
    char done[64];            /* stages done, comma-separated */
    int eval_pending;         /* a stop cut the evaluation at stage_step short */
    char run_id[DNAL_RUN_ID_LEN]; /* new, or the resumed checkpoint's */
    int64_t steps_here;       /* steps this process ran (0: a stop loses nothing) */
    dnal_runlog *log;         /* rank 0's run log (NULL: none, or another rank) */
    dnal_latency *latency;    /* search.latency_table bound to the dense network, or NULL */
    dnal_latency_times latency_times; /* the compact network's time, once pruned */
};

/* ---- run.c */
/* step s of a stage of `total` steps into the network's input and labels */
void run_load_batch(dnal_run *r, int64_t s, int64_t total);
/* streamed data: every rank learns the files any rank found unusable */
void run_merge_skipped(dnal_run *r);
/* dnal_evaluate over the run's test split, BN statistics averaged first;
 * stoppable: a stop signal (any rank) cuts it short, returning count -1 */
dnal_eval run_evaluate(dnal_run *r, const dnal_pass *p, int stoppable);
/* FLOPs and parameters under the gates of pass p (the compact network's own) */
dnal_cost run_cost(dnal_run *r, const dnal_pass *p);

/* ---- run_latency.c */
/* search.latency_table read and bound to the dense network (exit 2 if it
 * does not fit), handed to the regulariser; nothing without one */
void run_latency_open(dnal_run *r);
/* with a table: the compact network's step predicted and measured against
 * the dense one's (r->latency_times), and the prune_latency line */
void run_latency_prune(dnal_run *r, dnal_net *dense, dnal_net *compact);

/* ---- run_io.c: every call is a no-op where there is nothing to write */
void run_io_step(dnal_run *r, const dnal_log_step *row);
void run_io_gates(dnal_run *r);
void run_io_eval(dnal_run *r, dnal_stage stage, double epoch, const dnal_eval *e);
/* after each of pretrain, search, prune, finetune (r->done lists it) */
void run_io_stage_end(dnal_run *r, const char *stage);
/* every checkpoint.every steps, and when a signal stops the run */
void run_io_checkpoint(dnal_run *r, int stopping);
/* after the last stage: the log marked finished and closed */
void run_io_finish(dnal_run *r);
/* a stop signal arrived (on this rank) */
int run_io_stop_requested(void);

/* ---- report.c (rank 0's stdout; other ranks print to /dev/null) */
typedef struct progress_line {
    dnal_stage stage;
    int search;                 /* the search stage's columns */
    int64_t epoch, step;        /* of the stage, 1-based */
    double loss, reg, lr, images_per_s, elapsed_s, eta_s;
    int final;                  /* the last line of an epoch */
} progress_line;
void report_progress(const dnal_run *r, const progress_line *p);
void report_eval(dnal_stage stage, double epoch, const dnal_eval *e);
void report_search_end(const dnal_run *r);
void report_removed_candidates(const dnal_run *r);
/* multiple: the channel multiple applied; auto_from: the layout whose
 * block it is (prune.channel_multiple=auto), else NULL */
void report_prune(const dnal_run *r, int64_t multiple, const char *auto_from);
void report_summary(const dnal_run *r);
void report_latency(const dnal_run *r);
/* the fit could not reach the budget: the smallest network the layer rules
 * and the channel multiple allow costs `reached` of dense */
void report_budget_missed(const dnal_budget *b, double reached, int64_t multiple);
void report_skipped(int64_t train, int64_t test);
void report_stopped(int64_t step, int code);
void report_checkpoint(const char *what, const char *path, int64_t step, int signal);
void report_model_file(const char *path);
void report_init(const char *path, const dnal_checkpoint_info *info);
void report_resume(const dnal_run *r, const char *path, const dnal_checkpoint_info *info);
void report_log(const char *path, int resumed, int missing, int64_t step, const char *moved);
void report_run_id(const char *id, int resumed);

#endif
