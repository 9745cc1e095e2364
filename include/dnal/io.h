/* dnal io: the compact model file, checkpoints and the HDF5 run log. The
 * run configuration and its INI form are in dnal/config.h. */
#ifndef DNAL_IO_H
#define DNAL_IO_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "dnal/config.h"
#include "dnal/search.h"

/* ---- the compact model file (dnal export / eval / bench) ---- */

typedef struct dnal_model_info {
    char name[32];
    dnal_model_cfg cfg;     /* the dense model (cfg.name points to name) */
    dnal_cost dense, compact;
} dnal_model_info;

/* Writes the compact network `net` with the masks that made it. Written to
 * PATH.tmp and renamed when complete. */
void dnal_model_save(const char *path, const dnal_model_cfg *m, const dnal_arch_record *rec,
                     const dnal_net *net, dnal_cost dense, dnal_cost compact);
/* Rebuilds the compact network of a model file for `batch` (exit 2 on a
 * missing, truncated or foreign file). */
dnal_net *dnal_model_load(const dnal_ctx *ctx, const char *path, int64_t batch,
                          dnal_model_info *info);

/* ---- checkpoints (stage ends, every checkpoint.every steps, signals) ---- */

typedef struct dnal_log_rows {
    int64_t steps, gates, eval;
} dnal_log_rows;

typedef struct dnal_checkpoint_info {
    dnal_model_info model;
    int compact;
    double beta, lambda;
    int64_t step;
    char *done;            /* stages done, comma-separated */
    char *config;          /* the run's resolved configuration (INI text) */
    float *alpha_momentum; /* dense gated channels (zeros for a compact checkpoint) */
    /* mid-stage state (version 2; zeros and NULL in a stage-end checkpoint) */
    int64_t stage_step, log_since;
    double log_loss_sum;
    int held;
    float *weight_momentum; /* n_param of the network, or NULL */
    double top1_search, top1_pruned;
    int world_size;
    dnal_log_rows log_rows; /* rows of the run log when it was written */
} dnal_checkpoint_info;

/* Writes a run's state: after the stages `done`, and inside the stage
 * running if r->stage_step > 0; rows: the run log's (NULL: none). Written
 * to PATH.tmp and renamed when complete. */
void dnal_checkpoint_save(const char *path, const dnal_run *r, const char *done,
                          const dnal_log_rows *rows);
/* The network of a checkpoint (dense with alpha and masks, or compact) for
 * `batch`; rec (may be NULL) receives the masks of a compact one. Exit 2 on
 * a missing, truncated or foreign file. */
dnal_net *dnal_checkpoint_load(const dnal_ctx *ctx, const char *path, int64_t batch,
                               dnal_checkpoint_info *info, dnal_arch_record *rec);
void dnal_checkpoint_info_free(dnal_checkpoint_info *info);
/* A checkpoint's stored configuration (INI text; free() it); exit 2 if the
 * file is not a readable checkpoint. */
char *dnal_checkpoint_config(const char *path);
/* 1 and its step and count of stages done if path is a readable dnal
 * checkpoint, else 0 (quietly: for picking the newest of a folder). */
int dnal_checkpoint_peek(const char *path, double *step, int *stages_done);
/* Starts an opened run from a checkpoint (run.init): its network, masks,
 * beta, lambda and step; exit 2 if the checkpoint is of another model. */
void dnal_run_init_from(dnal_run *r, const char *path);
/* Continues an opened run where a checkpoint left it (dnal search
 * --resume): run.init's state plus the stages done, the position inside
 * the stage, both momenta and the summary's accuracies. Returns the log
 * rows to keep. */
dnal_log_rows dnal_run_resume_from(dnal_run *r, const char *path);

/* ---- the HDF5 run log (DESIGN.md section 6; rank 0 writes it) ---- */

typedef struct dnal_runlog dnal_runlog;

/* Creates the log of run r at path with every dataset (the layout is in
 * src/io/runlog.c) and closes it again: rows are appended by reopening it.
 * Exit 2 if it cannot be written. */
dnal_runlog *dnal_runlog_create(const char *path, const dnal_run *r);
/* Reopens the log of a resumed run, cut back to `rows` (a checkpoint's). */
dnal_runlog *dnal_runlog_reopen(const char *path, const dnal_run *r, dnal_log_rows rows);
/* Appends one row to /steps and flushes. */
void dnal_runlog_step(dnal_runlog *log, const dnal_step_row *row);
/* Appends a snapshot of alpha (every gated channel, as net->alpha). */
void dnal_runlog_gates(dnal_runlog *log, int64_t step, double beta, const float *alpha);
/* Appends one row to /eval and flushes. */
void dnal_runlog_eval(dnal_runlog *log, int stage, double epoch, const dnal_eval *e);
/* The final masks and costs of a pruned run (r->record, r->compact_cost). */
void dnal_runlog_arch(dnal_runlog *log, const dnal_run *r);
void dnal_runlog_flush(dnal_runlog *log);
dnal_log_rows dnal_runlog_rows(const dnal_runlog *log);
/* Marks the run complete: root attribute `finished` (ISO 8601, UTC). */
void dnal_runlog_finish(dnal_runlog *log);
void dnal_runlog_close(dnal_runlog *log);

#endif
