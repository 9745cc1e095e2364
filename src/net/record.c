/* The architecture record: the masks of a network's gated layers, kept by
 * name so that they survive the dense network (compact runs, checkpoints,
 * model files, the run log). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dnal/net.h"

void dnal_arch_record_free(dnal_arch_record *rec)
{
    for (int i = 0; i < rec->n; i++)
        free(rec->mask[i]);
    free(rec->name);
    free(rec->channels);
    free(rec->mask);
    memset(rec, 0, sizeof *rec);
}

void dnal_arch_record_of(dnal_arch_record *rec, const dnal_net *net)
{
    dnal_arch_record_free(rec);
    for (int i = 0; i < net->n_layers; i++)
        rec->n += net->layers[i]->kind == DNAL_GATE;
    rec->name = dnal_calloc(sizeof *rec->name * ((size_t)rec->n + 1));
    rec->channels = dnal_calloc(sizeof *rec->channels * ((size_t)rec->n + 1));
    rec->mask = dnal_calloc(sizeof *rec->mask * ((size_t)rec->n + 1));
    for (int i = 0, k = 0; i < net->n_layers; i++) {
        const dnal_layer *l = net->layers[i];
        if (l->kind != DNAL_GATE)
            continue;
        snprintf(rec->name[k], sizeof rec->name[k], "%s", l->name);
        rec->channels[k] = (int64_t)l->n_gates;
        rec->mask[k] = dnal_alloc(sizeof(float) * l->n_gates + 1);
        memcpy(rec->mask[k], net->mask + l->gate_off, sizeof(float) * l->n_gates);
        k++;
    }
}
