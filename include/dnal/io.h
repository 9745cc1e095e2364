/* dnal io: the files dnal reads and writes besides the datasets: the
 * compact model file, checkpoints and the HDF5 run log (layouts in
 * docs/design.md); the run configuration and its INI form are in
 * dnal/config.h. io knows networks and models, not the method: what a run
 * puts in a checkpoint or a log row it hands over as plain values. Files
 * are written to PATH.tmp and renamed when complete; a missing, truncated
 * or foreign file is exit 2 naming it. */
#ifndef DNAL_IO_H
#define DNAL_IO_H

#include <stddef.h>
#include <stdint.h>

#include "dnal/config.h"
#include "dnal/models.h"

/* ---- the compact model file (dnal export / eval / bench) ---- */

typedef struct dnal_model_info {
    char name[32];
    dnal_model_cfg cfg;     /* the dense model (cfg.name points to name) */
    dnal_cost dense, compact;
    dnal_cost compact_authors; /* the compact network counted the authors' way
                                  (dnal_net_cost_as); = compact when dense */
} dnal_model_info;

/* Writes the compact network `net` with the masks that made it. */
void dnal_model_save(const char *path, const dnal_model_cfg *m, const dnal_arch_record *rec,
                     const dnal_net *net, dnal_cost dense, dnal_cost compact);
/* Rebuilds the compact network of a model file for `batch`, the whole file
 * checked first (exit 2 naming what is wrong) on a network that holds no
 * activations; on a params_only ctx that network is returned. */
dnal_net *dnal_model_load(const dnal_ctx *ctx, const char *path, int64_t batch,
                          dnal_model_info *info);
/* A model file's attributes, checked, without building anything (compare
 * them with the data before a network is built for it). */
void dnal_model_file_info(const char *path, int64_t batch, dnal_model_info *info);

/* Writes `net` (a network without gates: the compact one) as an ONNX model
 * (src/io/onnx_export.c: opset 13, dynamic batch, input "input", output
 * "logits"); fold_bn folds each BN into the conv before it. */
void dnal_onnx_save(const char *path, const dnal_net *net, int fold_bn);

/* ---- the latency table (dnal profile, search.latency_table) ---- */

/* A compact network's step against its dense network's (search.latency_table):
 * predicted from the table, and measured at the end of prune (alternated
 * pairs, the ratio their median). NaN: not known; of "": none. */
typedef struct dnal_latency_times {
    char of[8];                      /* "train" or "infer" (search.latency_of) */
    double dense_ms, compact_ms, ratio;
    double predicted_dense_ms, predicted_compact_ms, predicted_ratio;
} dnal_latency_times;
/* Every value NaN, of "". */
dnal_latency_times dnal_latency_times_none(void);

/* Writes the table (layout in src/io/latency_file.c and docs/design.md),
 * with each gate's curve predicted on `net`, the dense network of model m
 * it was measured on (tab bound to it). */
void dnal_latency_save(const char *path, const dnal_latency *tab, const dnal_net *net,
                       const dnal_model_cfg *m);
/* Reads the entries of net's layers, checked (format, the model m against
 * the one measured: name, width, input, classes, gate_stem, classifier_bn,
 * an ONNX file's SHA-256 and no_gate; counts rising to each layer's dense channels, finite
 * times; exit 2 naming the file), bound to net; a note on stderr when it
 * was measured at another thread count or ISA. */
dnal_latency *dnal_latency_load(const char *path, const dnal_net *net, const dnal_model_cfg *m);

/* ---- checkpoints (stage ends, every checkpoint.every steps, signals) ---- */

/* A run's id, stored in each of its checkpoints (a resumed run keeps it). */
enum { DNAL_RUN_ID_LEN = 40 };

/* Rows of the run log when a checkpoint was written (a resume cuts back to them). */
typedef struct dnal_log_rows {
    int64_t steps, gates, eval;
} dnal_log_rows;

/* Everything a checkpoint holds besides the network's flat buffers. Saving
 * reads it (pointers stay the caller's); loading fills it (free with
 * dnal_checkpoint_info_free). */
typedef struct dnal_checkpoint_info {
    dnal_model_info model;
    int compact;            /* the network is the compact one (masks in the record) */
    double beta, lambda;
    int held;               /* beta was held at the last architecture update */
    int64_t step;           /* steps done in the whole run */
    int64_t stage_step;     /* steps done in the stage running (0: at a stage end) */
    int64_t log_since;      /* steps since the last progress line ... */
    double log_loss_sum;    /* ... and their loss sum */
    char *done;             /* stages done, comma-separated */
    char *config;           /* the run's resolved configuration (INI text) */
    float *alpha_momentum;  /* dense gated channels (zeros for a compact checkpoint) */
    float *weight_momentum; /* n_param of the network, or NULL (at a stage end) */
    double top1_search, top1_pruned;
    int world_size;
    dnal_log_rows log_rows;
    int eval_pending;       /* a stop cut the evaluation of the epoch that ended at stage_step */
    char run_id[DNAL_RUN_ID_LEN]; /* "" in checkpoints from before run ids */
    dnal_latency_times latency;   /* once pruned with a latency table; none in older files */
} dnal_checkpoint_info;

/* Writes `net` (dense with alpha and masks, or compact with rec's masks)
 * and info. */
void dnal_checkpoint_save(const char *path, const dnal_checkpoint_info *info,
                          const dnal_net *net, const dnal_arch_record *rec);
/* The network of a checkpoint for `batch`; rec (may be NULL) receives the
 * masks of a compact one. */
dnal_net *dnal_checkpoint_load(const dnal_ctx *ctx, const char *path, int64_t batch,
                               dnal_checkpoint_info *info, dnal_arch_record *rec);
void dnal_checkpoint_info_free(dnal_checkpoint_info *info);
/* A checkpoint's model attributes, checked, without building anything
 * (model->cfg.name points into model). */
void dnal_checkpoint_model(const char *path, int64_t batch, dnal_model_info *model);
/* A checkpoint's stored configuration (INI text; free() it). */
char *dnal_checkpoint_config(const char *path);
/* `arg` if it is a file, else the newest dnal checkpoint in the folder
 * `arg` of one run: the run whose checkpoint was written last, and of its
 * checkpoints the one with most steps, then most stages done (model.h5 is
 * not one), into out; a note on stderr names it when the folder holds
 * several runs. 0, or exit code 2 after printing what is missing. */
int dnal_checkpoint_find(const char *arg, char *out, size_t len);
/* The name of the step checkpoint of `step` in dir. */
void dnal_checkpoint_step_path(char *out, size_t len, const char *dir, int64_t step);
/* Removes all but the newest `keep` step checkpoints of dir that run_id
 * wrote; other runs' are left alone. */
void dnal_checkpoint_keep_newest(const char *dir, int64_t keep, const char *run_id);
/* 1 if dir holds a dnal checkpoint of another run than run_id (its path
 * into example), else 0 (also when dir does not exist). */
int dnal_checkpoint_dir_foreign(const char *dir, const char *run_id, char *example, size_t len);
/* A new run id: UTC time and 32 random bits, e.g. 20261204T021500Z-1a2b3c4d. */
void dnal_run_id_new(char out[DNAL_RUN_ID_LEN]);

/* ---- the HDF5 run log (rank 0 writes it) ---- */

typedef struct dnal_runlog dnal_runlog;

/* What the log records once, at its creation or a resume. */
typedef struct dnal_runlog_info {
    const char *config;          /* resolved INI text */
    int64_t world_size, threads;
    uint64_t seed;
    dnal_cost dense;             /* the dense network's cost */
    dnal_cost compact;           /* after pruning; NaN before */
    dnal_cost compact_authors;   /* the same counted the authors' way */
    const dnal_arch_record *gates; /* the gated layers and their masks */
    const char *moved_aside;     /* NULL, or where an unreadable old log was moved (a root
                                    attribute of the new one says so) */
} dnal_runlog_info;

/* One row of /steps: the means over the last log interval. */
typedef struct dnal_log_step {
    int64_t step;              /* steps done in the whole run */
    double epoch;              /* of the stage, fractional */
    int stage;                 /* 0 pretrain, 1 search, 2 finetune */
    double loss, reg, lambda, lr, beta;
    double flops, params;      /* expected under the current gates (absolute) */
    double images_per_s;
} dnal_log_step;

/* One row of /eval. */
typedef struct dnal_log_eval {
    int stage;                 /* as above; 3: right after pruning */
    double epoch, top1, top5, loss;
} dnal_log_eval;

/* Creates the log at path with every dataset and closes it again: rows are
 * appended by reopening it. */
dnal_runlog *dnal_runlog_create(const char *path, const dnal_runlog_info *info);
/* Reopens the log of a resumed run, cut back to `rows` (a checkpoint's);
 * NULL if there is no file at path, or if the file cannot be opened as a
 * run log holding those rows: then it is renamed PATH.unreadable-TIME
 * (that name into moved, else moved[0] = 0), so a resume is never blocked
 * by its log. */
dnal_runlog *dnal_runlog_reopen(const char *path, const dnal_runlog_info *info,
                                dnal_log_rows rows, char *moved, size_t moved_len);
/* Appends one row to /steps and flushes. */
void dnal_runlog_step(dnal_runlog *log, const dnal_log_step *row);
/* Appends a snapshot of alpha (every gated channel, in the order of the
 * gated layers); written at the next flush. */
void dnal_runlog_gates(dnal_runlog *log, int64_t step, double beta, const float *alpha);
/* Appends one row to /eval and flushes. */
void dnal_runlog_eval(dnal_runlog *log, const dnal_log_eval *e);
/* The final masks and costs of a pruned run (both counts). */
void dnal_runlog_arch(dnal_runlog *log, const dnal_arch_record *rec, dnal_cost compact,
                      dnal_cost compact_authors);
void dnal_runlog_flush(dnal_runlog *log);
/* The /arch attributes of the compact network's time (written at once). */
void dnal_runlog_latency(dnal_runlog *log, const dnal_latency_times *t);
dnal_log_rows dnal_runlog_rows(const dnal_runlog *log);
/* Marks the run complete: root attribute `finished` (ISO 8601, UTC). */
void dnal_runlog_finish(dnal_runlog *log);
void dnal_runlog_close(dnal_runlog *log);

#endif
