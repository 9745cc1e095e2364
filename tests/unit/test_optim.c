/* SGD against hand-computed PyTorch semantics, and the LR schedules. */
#include <math.h>

#include "dnal/optim.h"
#include "tap.h"

int main(void)
{
    /* two steps by hand: w=1, g=0.5, lr 0.1, momentum 0.9, wd 0.01 */
    for (int nesterov = 0; nesterov < 2; nesterov++) {
        dnal_sgd o;
        dnal_sgd_init(&o, 3, 0.9, nesterov);
        float w[3] = {1.0f, 7.0f, 1.0f}, g[3] = {0.5f, 9.0f, 0.5f};
        double ww = 1.0, v = 0.0;
        for (int step = 0; step < 2; step++) {
            dnal_sgd_update(&o, 0.1, 0.01, w, g, 2, 1);
            double d = 0.5 + 0.01 * ww;
            v = 0.9 * v + d;
            ww -= 0.1 * (nesterov ? d + 0.9 * v : v);
        }
        tap_ok(fabs(w[2] - ww) < 1e-6 && w[1] == 7.0f && w[0] == 1.0f,
               "sgd%s: two steps %.7f (by hand %.7f), only the slice moves", nesterov ? " nesterov" : "",
               w[2], ww);
        dnal_sgd_free(&o);
    }
    dnal_sgd o;
    dnal_sgd_init(&o, 1, 0.0, 0);
    float w = 2.0f, g = 1.0f;
    dnal_sgd_update(&o, 0.5, 0.0, &w, &g, 0, 1);
    tap_ok(w == 1.5f, "plain sgd: w - lr*g (%.3f)", w);
    dnal_sgd_free(&o);

    double ms[2] = {10, 40};
    dnal_lr_schedule step = {DNAL_LR_STEP, 0.1, 70, ms, 2, 0.1, 0, 0, 0};
    tap_ok(fabs(dnal_lr_at(&step, 9.99) - 0.1) < 1e-12 && fabs(dnal_lr_at(&step, 10) - 0.01) < 1e-12 &&
               fabs(dnal_lr_at(&step, 45) - 0.001) < 1e-12,
           "step schedule: /10 at epochs 10 and 40");
    dnal_lr_schedule cosine = {DNAL_LR_COSINE, 0.1, 10, NULL, 0, 0.1, 0, 0, 0};
    tap_ok(fabs(dnal_lr_at(&cosine, 0) - 0.1) < 1e-12 && fabs(dnal_lr_at(&cosine, 5) - 0.05) < 1e-12 &&
               fabs(dnal_lr_at(&cosine, 10)) < 1e-12,
           "cosine schedule: base, half at the middle, 0 at the end");
    dnal_lr_schedule warm = {DNAL_LR_CONSTANT, 0.2, 10, NULL, 0, 0.1, 2, 0, 0};
    tap_ok(fabs(dnal_lr_at(&warm, 0.5) - 0.05) < 1e-12 && fabs(dnal_lr_at(&warm, 3) - 0.2) < 1e-12,
           "linear warm-up over 2 epochs");
    /* the authors' MobileNetV2: pretraining 80 epochs of a cosine over 160,
     * finetuning 90 epochs of one over 120 entered after 30 */
    dnal_lr_schedule cut = {DNAL_LR_COSINE, 0.1, 80, NULL, 0, 0.1, 0, 0, 80};
    dnal_lr_schedule late = {DNAL_LR_COSINE, 0.1, 90, NULL, 0, 0.1, 0, 30, 0};
    double pi = acos(-1.0);
    tap_ok(fabs(dnal_lr_at(&cut, 0) - 0.1) < 1e-12 &&
               fabs(dnal_lr_at(&cut, 40) - 0.05 * (1 + cos(pi * 40 / 160))) < 1e-12 &&
               fabs(dnal_lr_at(&cut, 80) - 0.05) < 1e-12,
           "cosine cut short (cosine_after 80): 0.1 to 0.05 over 80 of 160 epochs (%.4f at 80)",
           dnal_lr_at(&cut, 80));
    tap_ok(fabs(dnal_lr_at(&late, 0) - 0.05 * (1 + cos(pi * 30 / 120))) < 1e-12 &&
               fabs(dnal_lr_at(&late, 45) - 0.05 * (1 + cos(pi * 75 / 120))) < 1e-12 &&
               fabs(dnal_lr_at(&late, 90)) < 1e-12,
           "cosine entered late (cosine_before 30): %.4f at the start, 0 at the end",
           dnal_lr_at(&late, 0));
    tap_ok(dnal_lr_kind_parse("cosine") == DNAL_LR_COSINE && dnal_lr_kind_parse("poly") == -1,
           "schedule names parse");
    return tap_done();
}
