/* Learning-rate schedules over a stage: constant, step (multiplied by gamma
 * at each milestone epoch passed) and cosine (from the base down to 0 at the
 * stage's end), each with an optional linear warm-up. */
#include <math.h>
#include <string.h>

#include "dnal/optim.h"

int dnal_lr_kind_parse(const char *name)
{
    if (!strcmp(name, "constant"))
        return DNAL_LR_CONSTANT;
    if (!strcmp(name, "step"))
        return DNAL_LR_STEP;
    if (!strcmp(name, "cosine"))
        return DNAL_LR_COSINE;
    return -1;
}

double dnal_lr_at(const dnal_lr_schedule *s, double epoch)
{
    double lr = s->base;
    switch (s->kind) {
    case DNAL_LR_CONSTANT:
        break;
    case DNAL_LR_STEP:
        for (int i = 0; i < s->n_milestones; i++)
            if (epoch >= s->milestones[i])
                lr *= s->gamma;
        break;
    case DNAL_LR_COSINE: {
        double t = s->epochs > 0 ? fmin(epoch / s->epochs, 1.0) : 1.0;
        lr = 0.5 * s->base * (1.0 + cos(M_PI * t));
        break;
    }
    }
    if (s->warmup_epochs > 0 && epoch < s->warmup_epochs)
        lr *= epoch / s->warmup_epochs;
    return lr;
}
