/* The latency table file (dnal profile writes it, search.latency_table
 * reads it; docs/design.md, "Latency"), readable with h5py:
 *
 *   /                 attrs format="dnal-latency", version, dnal_version, onednn_version,
 *                     created, model, in_channels, image_size, classes, width,
 *                     batch, threads, block, isa, layout, dtype,
 *                     train_step_ms, infer_step_ms (the dense network's step, measured),
 *                     train_layers_ms, infer_layers_ms (its layers timed alone, summed)
 *   /layers/<layer>   attrs kind, in_channels, out_channels (dense), train_context,
 *                     infer_context (inside the network over alone, at dense: the
 *                     times below include it)
 *   /layers/<layer>/{channels, train_ms, infer_ms}
 *                     int64, float64 [points]: the layer's time against its output
 *                     channels (input dense; linear: against its input channels)
 *   /layers/<layer>/in/{channels, train_ms, infer_ms}
 *                     a dense conv whose input can shrink: against its input channels
 *   /layers/<layer>/scatter/{channels, train_ms, infer_ms}
 *                     an add whose inputs can keep different channels: its compact
 *                     form (a scatter-add, the ReLU apart)
 *   /layers/<layer>/widen/{...}  the same with one input widened first (neither
 *                     holds every channel of the sum)
 *   /gates/<gate>/{channels, train_ms, infer_ms}
 *                     the network's predicted step against the gate's channels, every
 *                     other gate open (derived from /layers; not read back)
 *
 * Loading reads the entries of a network's layers and checks all of it
 * (exit 2 naming the file and what is wrong) before the table is used. */
#include <dnnl.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "config.h"
#include "dnal/io.h"
#include "h5util.h"

enum { LATENCY_FORMAT_VERSION = 1 };

dnal_latency_times dnal_latency_times_none(void)
{
    return (dnal_latency_times){"", NAN, NAN, NAN, NAN, NAN, NAN};
}

static const char *const time_attrs[6] = {"time_dense_ms", "time_compact_ms", "time_ratio",
                                          "predicted_dense_ms", "predicted_compact_ms",
                                          "predicted_ratio"};

static double *time_field(dnal_latency_times *t, int k)
{
    double *f[6] = {&t->dense_ms, &t->compact_ms, &t->ratio, &t->predicted_dense_ms,
                    &t->predicted_compact_ms, &t->predicted_ratio};
    return f[k];
}

void io_latency_attrs_write(hid_t obj, const dnal_latency_times *t)
{
    if (!t->of[0])
        return;
    dnal_latency_times copy = *t;
    h5_attr_str(obj, "time_of", t->of);
    for (int k = 0; k < 6; k++) {
        if (H5Aexists(obj, time_attrs[k]) > 0)
            H5Adelete(obj, time_attrs[k]);
        h5_attr_f64(obj, time_attrs[k], *time_field(&copy, k));
    }
}

dnal_latency_times io_latency_attrs_read(hid_t obj, const char *path)
{
    dnal_latency_times t = dnal_latency_times_none();
    if (H5Aexists(obj, "time_of") <= 0)
        return t;
    char *of = h5_get_str(obj, "time_of");
    if (strcmp(of, "train") && strcmp(of, "infer"))
        dnal_fatal(DNAL_EXIT_DATA, "%s: attribute time_of is '%.20s', not train or infer", path, of);
    snprintf(t.of, sizeof t.of, "%s", of);
    free(of);
    for (int k = 0; k < 6; k++) {
        double v = h5_get_f64(obj, time_attrs[k]);
        if (!isnan(v) && !(v > 0 && v < 1e12))
            dnal_fatal(DNAL_EXIT_DATA, "%s: attribute %s = %g is not a time", path, time_attrs[k], v);
        *time_field(&t, k) = v;
    }
    return t;
}

static void write_curve(hid_t f, const char *group, const dnal_latency_curve *c)
{
    char name[256];
    snprintf(name, sizeof name, "%s/channels", group);
    h5_write_i64(f, name, c->channels, (hsize_t)c->n);
    snprintf(name, sizeof name, "%s/train_ms", group);
    h5_write_f64(f, name, c->ms[DNAL_LATENCY_TRAIN], (hsize_t)c->n);
    snprintf(name, sizeof name, "%s/infer_ms", group);
    h5_write_f64(f, name, c->ms[DNAL_LATENCY_INFER], (hsize_t)c->n);
}

/* /gates/<gate>: the network's time against each gate's channels */
static void write_gates(hid_t f, const dnal_latency *tab, const dnal_net *net)
{
    float *scratch = dnal_alloc(sizeof(float) * (net->n_gates + 1));
    char group[192];
    for (int i = 0; i < net->n_layers; i++) {
        const dnal_layer *l = net->layers[i];
        if (l->kind != DNAL_GATE)
            continue;
        int n = (int)(((int64_t)l->n_gates + tab->block - 1) / tab->block);
        dnal_latency_curve c;
        dnal_latency_curve_alloc(&c, n);
        for (int k = 0; k < n; k++) {
            c.channels[k] = k == n - 1 ? (int64_t)l->n_gates : (int64_t)(k + 1) * tab->block;
            for (int w = 0; w < 2; w++)
                c.ms[w][k] = dnal_latency_gate_time(tab, net, i, (double)c.channels[k], w, scratch);
        }
        snprintf(group, sizeof group, "/gates/%s", l->name);
        write_curve(f, group, &c);
        dnal_free(c.channels);
        dnal_free(c.ms[0]);
        dnal_free(c.ms[1]);
    }
    dnal_free(scratch);
}

void dnal_latency_save(const char *path, const dnal_latency *tab, const dnal_net *net,
                       const dnal_model_cfg *m)
{
    char tmp[DNAL_PATH_MAX + 8], name[192], created[32];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    hid_t f = h5_create(tmp);
    const dnnl_version_t *v = dnnl_version();
    char onednn[32];
    snprintf(onednn, sizeof onednn, "%d.%d.%d", v->major, v->minor, v->patch);
    time_t now = time(NULL);
    strftime(created, sizeof created, "%Y-%m-%dT%H:%M:%SZ", gmtime(&now));
    h5_attr_str(f, "format", "dnal-latency");
    h5_attr_f64(f, "version", LATENCY_FORMAT_VERSION);
    h5_attr_str(f, "dnal_version", PACKAGE_VERSION);
    h5_attr_str(f, "onednn_version", onednn);
    h5_attr_str(f, "created", created);
    io_model_attrs_write(f, m);
    h5_attr_f64(f, "batch", (double)tab->batch);
    h5_attr_f64(f, "threads", (double)tab->threads);
    h5_attr_f64(f, "block", (double)tab->block);
    h5_attr_str(f, "isa", tab->isa);
    h5_attr_str(f, "layout", tab->layout);
    h5_attr_str(f, "dtype", tab->dtype);
    h5_attr_f64(f, "train_step_ms", tab->step_ms[DNAL_LATENCY_TRAIN]);
    h5_attr_f64(f, "infer_step_ms", tab->step_ms[DNAL_LATENCY_INFER]);
    h5_attr_f64(f, "train_layers_ms", tab->layers_ms[DNAL_LATENCY_TRAIN]);
    h5_attr_f64(f, "infer_layers_ms", tab->layers_ms[DNAL_LATENCY_INFER]);
    for (int i = 0; i < tab->n_layers; i++) {
        const dnal_latency_layer *e = &tab->layers[i];
        snprintf(name, sizeof name, "/layers/%s", e->name);
        write_curve(f, name, &e->out);
        hid_t g = H5_CHECK(H5Gopen2(f, name, H5P_DEFAULT));
        h5_attr_str(g, "kind", dnal_layer_kind_name((dnal_layer_kind)e->kind));
        h5_attr_f64(g, "in_channels", (double)e->in_channels);
        h5_attr_f64(g, "out_channels", (double)e->out_channels);
        h5_attr_f64(g, "train_context", e->context[DNAL_LATENCY_TRAIN]);
        h5_attr_f64(g, "infer_context", e->context[DNAL_LATENCY_INFER]);
        H5Gclose(g);
        if (e->in.n > 0) {
            snprintf(name, sizeof name, "/layers/%s/in", e->name);
            write_curve(f, name, &e->in);
        }
        if (e->scatter.n > 0) {
            snprintf(name, sizeof name, "/layers/%s/scatter", e->name);
            write_curve(f, name, &e->scatter);
        }
        if (e->widen.n > 0) {
            snprintf(name, sizeof name, "/layers/%s/widen", e->name);
            write_curve(f, name, &e->widen);
        }
    }
    write_gates(f, tab, net);
    h5_close_atomic(f, tmp, path);
}

/* a curve of at most `dense` channels: counts increasing within 1..dense,
 * the last one dense, times finite and not negative */
static void read_curve(hid_t f, const char *path, const char *group, int64_t dense,
                       dnal_latency_curve *c)
{
    char name[256];
    snprintf(name, sizeof name, "%s/channels", group);
    size_t n = h5_len(f, name, (size_t)dense);
    dnal_latency_curve_alloc(c, (int)n);
    h5_read_i64(f, name, c->channels, n);
    for (int w = 0; w < 2; w++) {
        snprintf(name, sizeof name, "%s/%s_ms", group, w == DNAL_LATENCY_TRAIN ? "train" : "infer");
        h5_read_f64(f, name, c->ms[w], n);
    }
    for (size_t k = 0; k < n; k++) {
        int64_t ch = c->channels[k];
        if (ch < 1 || ch > dense || (k > 0 && ch <= c->channels[k - 1]) ||
            (k == n - 1 && ch != dense))
            dnal_fatal(DNAL_EXIT_DATA, "%s: %s/channels must rise from 1 to the layer's %lld "
                       "channels (entry %zu is %lld)", path, group, (long long)dense, k,
                       (long long)ch);
        for (int w = 0; w < 2; w++)
            if (!isfinite(c->ms[w][k]) || c->ms[w][k] < 0)
                dnal_fatal(DNAL_EXIT_DATA, "%s: %s/%s_ms holds %g (not a time)", path, group,
                           w == DNAL_LATENCY_TRAIN ? "train" : "infer", c->ms[w][k]);
    }
}

static void read_str(hid_t f, const char *path, const char *attr, char *out, size_t len)
{
    char *s = h5_get_str(f, attr);
    if (strlen(s) >= len)
        dnal_fatal(DNAL_EXIT_DATA, "%s: attribute %s is longer than %zu characters", path, attr,
                   len - 1);
    snprintf(out, len, "%s", s);
    free(s);
}

dnal_latency *dnal_latency_load(const char *path, const dnal_net *net, const dnal_model_cfg *m)
{
    hid_t f = h5_open(path, "latency table");
    char *format = h5_get_str(f, "format");
    int ours = !strcmp(format, "dnal-latency");
    free(format);
    if (!ours)
        dnal_fatal(DNAL_EXIT_DATA, "%s: not a dnal latency table (format is not dnal-latency; "
                   "dnal profile writes one)", path);
    int64_t version = h5_get_count(f, path, "version", 1, 1e9);
    if (version != LATENCY_FORMAT_VERSION)
        dnal_fatal(DNAL_EXIT_DATA, "%s: latency table version %lld, this dnal reads %d", path,
                   (long long)version, LATENCY_FORMAT_VERSION);
    dnal_model_info info;
    io_model_attrs_read(f, path, 1, &info);
    if (strcmp(info.name, m->name) || info.cfg.in_channels != m->in_channels ||
        info.cfg.image_size != m->image_size || info.cfg.classes != m->classes ||
        info.cfg.width != m->width)
        dnal_fatal(DNAL_EXIT_DATA, "%s: a table of %s (width %g, %lldx%lld input of %lld "
                   "channels, %lld classes), this network is %s (width %g, %lldx%lld of %lld, "
                   "%lld classes): profile it with dnal profile", path, info.name,
                   info.cfg.width, (long long)info.cfg.image_size, (long long)info.cfg.image_size,
                   (long long)info.cfg.in_channels, (long long)info.cfg.classes, m->name,
                   m->width, (long long)m->image_size, (long long)m->image_size,
                   (long long)m->in_channels, (long long)m->classes);
    if (info.cfg.gate_stem != m->gate_stem || info.cfg.classifier_bn != m->classifier_bn ||
        strcmp(info.cfg.sha256, m->sha256) || strcmp(info.cfg.no_gate, m->no_gate))
        dnal_fatal(DNAL_EXIT_DATA, "%s: a table of %s with gate_stem=%d classifier_bn=%d%s%s%s%s; "
                   "this network has gate_stem=%d classifier_bn=%d%s%s%s%s: profile it with "
                   "dnal profile", path, info.name, info.cfg.gate_stem, info.cfg.classifier_bn,
                   info.cfg.sha256[0] ? " onnx sha256=" : "", info.cfg.sha256,
                   info.cfg.sha256[0] ? " no_gate=" : "", info.cfg.no_gate, m->gate_stem,
                   m->classifier_bn, m->sha256[0] ? " onnx sha256=" : "", m->sha256,
                   m->sha256[0] ? " no_gate=" : "", m->no_gate);
    int n = 0;
    for (int i = 0; i < net->n_layers; i++)
        n += dnal_net_profiled_layer(net, i);
    dnal_latency *tab = dnal_latency_new(n);
    snprintf(tab->model, sizeof tab->model, "%s", info.name);
    tab->in_channels = info.cfg.in_channels;
    tab->image_size = info.cfg.image_size;
    tab->classes = info.cfg.classes;
    tab->width = info.cfg.width;
    tab->batch = h5_get_count(f, path, "batch", 1, 1e9);
    tab->threads = h5_get_count(f, path, "threads", 1, 1e6);
    tab->block = h5_get_count(f, path, "block", 1, 4096);
    read_str(f, path, "isa", tab->isa, sizeof tab->isa);
    read_str(f, path, "layout", tab->layout, sizeof tab->layout);
    read_str(f, path, "dtype", tab->dtype, sizeof tab->dtype);
    static const char *const attrs[2][2] = {{"train_step_ms", "train_layers_ms"},
                                            {"infer_step_ms", "infer_layers_ms"}};
    for (int w = 0; w < 2; w++) {
        tab->step_ms[w] = h5_get_real(f, path, attrs[w][0], 1e-9, 1e12);
        tab->layers_ms[w] = h5_get_real(f, path, attrs[w][1], 1e-9, 1e12);
    }
    char group[192];
    for (int i = 0, e = 0; i < net->n_layers; i++) {
        if (!dnal_net_profiled_layer(net, i))
            continue;
        const dnal_layer *l = net->layers[i];
        dnal_latency_layer *entry = &tab->layers[e++];
        snprintf(entry->name, sizeof entry->name, "%s", l->name);
        snprintf(group, sizeof group, "/layers/%s", l->name);
        if (!h5_has(f, group))
            dnal_fatal(DNAL_EXIT_DATA, "%s: no entry for layer %s of the network", path, l->name);
        hid_t g = H5_CHECK(H5Gopen2(f, group, H5P_DEFAULT));
        char kind[32];
        read_str(g, path, "kind", kind, sizeof kind);
        entry->kind = -1;
        for (int k = 0; k < DNAL_LAYER_KINDS; k++)
            if (!strcmp(kind, dnal_layer_kind_name((dnal_layer_kind)k)))
                entry->kind = k;
        if (entry->kind < 0)
            dnal_fatal(DNAL_EXIT_DATA, "%s: layer %s has an unknown kind '%s'", path, l->name,
                       kind);
        entry->in_channels = h5_get_count(g, path, "in_channels", 1, 1e7);
        entry->out_channels = h5_get_count(g, path, "out_channels", 1, 1e7);
        entry->context[DNAL_LATENCY_TRAIN] = h5_get_real(g, path, "train_context", 0, 1e6);
        entry->context[DNAL_LATENCY_INFER] = h5_get_real(g, path, "infer_context", 0, 1e6);
        H5Gclose(g);
        int64_t dense = l->kind == DNAL_LINEAR ? entry->in_channels : entry->out_channels;
        read_curve(f, path, group, dense, &entry->out);
        snprintf(group, sizeof group, "/layers/%s/in", l->name);
        if (h5_has(f, group))
            read_curve(f, path, group, entry->in_channels, &entry->in);
        snprintf(group, sizeof group, "/layers/%s/scatter", l->name);
        if (h5_has(f, group))
            read_curve(f, path, group, entry->out_channels, &entry->scatter);
        snprintf(group, sizeof group, "/layers/%s/widen", l->name);
        if (h5_has(f, group))
            read_curve(f, path, group, entry->out_channels, &entry->widen);
    }
    H5Fclose(f);
    dnal_latency_bind(tab, net, path);
    if (tab->threads != omp_get_max_threads() || strcmp(tab->isa, dnal_isa_name()))
        fprintf(stderr, "dnal: note: %s was measured with %lld threads on %s, this process "
                "runs %d on %s: its times may not hold here\n", path, (long long)tab->threads,
                tab->isa, omp_get_max_threads(), dnal_isa_name());
    return tab;
}
