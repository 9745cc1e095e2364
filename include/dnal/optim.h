/* dnal optim: SGD with momentum (Nesterov option) and weight decay, and
 * learning-rate schedules. Knows nothing of networks: it updates slices of
 * flat buffers. */
#ifndef DNAL_OPTIM_H
#define DNAL_OPTIM_H

#include <stddef.h>
#include <stdint.h>

enum { DNAL_MAX_MILESTONES = 16 };

/* One optimisation stage's weight optimizer and learning-rate schedule. */
typedef struct dnal_stage_cfg {
    double epochs;                           /* fractions allowed (e.g. 0.5) */
    double lr, momentum;
    int nesterov;
    double weight_decay;
    char schedule[16];                       /* constant | step | cosine */
    int n_milestones;
    double milestones[DNAL_MAX_MILESTONES];  /* epochs, comma-separated in the INI */
    double gamma;
    double warmup_epochs;                    /* linear warm-up (pretrain only in the INI) */
    double cosine_before, cosine_after;      /* cosine: epochs of the curve before and
                                                after the stage (a truncated cosine) */
    char momentum_reset[8];                  /* never | epoch: momentum restarts at 0
                                                at each epoch's start */
} dnal_stage_cfg;


/* PyTorch's SGD (dampening 0): d = g + wd*w; v = momentum*v + d;
 * d = nesterov ? d + momentum*v : v; w -= lr*d. Velocity starts at 0. */
typedef struct dnal_sgd {
    double momentum;
    int nesterov;
    float *velocity; /* one per element of the flat buffer */
    size_t n;
} dnal_sgd;

void dnal_sgd_init(dnal_sgd *o, size_t n, double momentum, int nesterov);
void dnal_sgd_free(dnal_sgd *o);
/* Updates elements [off, off + count) of param with grad. */
void dnal_sgd_update(dnal_sgd *o, double lr, double weight_decay, float *param, const float *grad,
                     size_t off, size_t count);

typedef enum dnal_lr_kind { DNAL_LR_CONSTANT, DNAL_LR_STEP, DNAL_LR_COSINE } dnal_lr_kind;

typedef struct dnal_lr_schedule {
    dnal_lr_kind kind;
    double base;
    double epochs;          /* length of the stage, for cosine */
    const double *milestones;
    int n_milestones;
    double gamma;
    double warmup_epochs;   /* linear warm-up from 0 */
    double cosine_before, cosine_after; /* cosine over before + epochs + after, the
                                           stage being its part after `before` */
} dnal_lr_schedule;

/* "constant", "step" or "cosine"; -1 for another name */
int dnal_lr_kind_parse(const char *name);
/* The learning rate at a (fractional) epoch of the stage. */
double dnal_lr_at(const dnal_lr_schedule *s, double epoch);

#endif
