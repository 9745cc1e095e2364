/* Learning-rate schedules over a stage: constant, step (multiplied by gamma
 * at each milestone epoch passed) and cosine (from the base down to 0 at the
 * stage's end, or a part of a longer cosine: `before` epochs of it already
 * passed when the stage starts, `after` left when it ends), each with an
 * optional linear warm-up. */
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
        double span = s->cosine_before + s->epochs + s->cosine_after;
        double t = span > 0 ? fmin((s->cosine_before + fmin(epoch, s->epochs)) / span, 1.0) : 1.0;
        lr = 0.5 * s->base * (1.0 + cos(M_PI * t));
        break;
    }
    }
    if (s->warmup_epochs > 0 && epoch < s->warmup_epochs)
        lr *= epoch / s->warmup_epochs;
    return lr;
}
