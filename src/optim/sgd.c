/* SGD with momentum and weight decay, as torch.optim.SGD (dampening 0). */
#include "dnal/core.h"
#include "dnal/optim.h"

void dnal_sgd_init(dnal_sgd *o, size_t n, double momentum, int nesterov)
{
    o->momentum = momentum;
    o->nesterov = nesterov;
    o->n = n;
    o->velocity = dnal_calloc(sizeof(float) * (n + 1));
}

void dnal_sgd_free(dnal_sgd *o)
{
    dnal_free(o->velocity);
    o->velocity = NULL;
}

void dnal_sgd_update(dnal_sgd *o, double lr, double weight_decay, float *param, const float *grad,
                     size_t off, size_t count)
{
    DNAL_ASSERT(off + count <= o->n);
    const float m = (float)o->momentum, wd = (float)weight_decay, rate = (float)lr;
    float *w = param + off, *v = o->velocity + off;
    const float *g = grad + off;
    if (o->nesterov) {
#pragma omp parallel for simd schedule(static)
        for (size_t i = 0; i < count; i++) {
            float d = g[i] + wd * w[i];
            v[i] = m * v[i] + d;
            w[i] -= rate * (d + m * v[i]);
        }
    } else {
#pragma omp parallel for simd schedule(static)
        for (size_t i = 0; i < count; i++) {
            float d = g[i] + wd * w[i];
            v[i] = m * v[i] + d;
            w[i] -= rate * v[i];
        }
    }
}
