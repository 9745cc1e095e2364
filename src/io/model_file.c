/* The compact model file (dnal export, dnal eval, dnal bench): the dense
 * model it came from, the masks of every gated layer, and the compact
 * network's per-layer channel counts and weights, readable with h5py:
 *
 *   /                      attrs format="dnal-model", version, dnal_version, model,
 *                          in_channels, image_size, classes, width,
 *                          flops_dense, flops, params_dense, params
 *   /arch/<gate>/mask      uint8 [dense channels]: 1 = kept
 *   /layers/<layer>        attrs kind, in_channels, out_channels
 *   /layers/<layer>/{weight,bias,scale,shift}   float32, PyTorch shapes
 *   /layers/<layer>/{running_mean,running_var}  BN statistics
 *
 * Loading rebuilds the dense model, applies the masks, makes the compact
 * network (net/compact.c) and reads its weights by layer name, everything
 * checked on a network without activations before one that runs is built. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "dnal/io.h"
#include "h5util.h"

enum { MODEL_FORMAT_VERSION = 1 };

static void layer_path(char *out, size_t len, const char *layer, const char *what)
{
    snprintf(out, len, "/layers/%s/%s", layer, what);
}

void io_model_attrs_write(hid_t f, const dnal_model_cfg *m)
{
    h5_attr_str(f, "model", m->name);
    h5_attr_f64(f, "in_channels", (double)m->in_channels);
    h5_attr_f64(f, "image_size", (double)m->image_size);
    h5_attr_f64(f, "classes", (double)m->classes);
    h5_attr_f64(f, "width", m->width);
}

void io_model_attrs_read(hid_t f, const char *path, int64_t batch, dnal_model_info *info)
{
    char *model = h5_get_str(f, "model");
    snprintf(info->name, sizeof info->name, "%s", model);
    int known = dnal_model_find(model) != NULL && strlen(model) < sizeof info->name;
    free(model);
    if (!known)
        dnal_fatal(DNAL_EXIT_DATA, "%s: unknown model '%s'", path, info->name);
    info->cfg = (dnal_model_cfg){.name = info->name, .batch = batch,
                                 .in_channels = h5_get_count(f, path, "in_channels", 1, 4096),
                                 /* the largest side a dataset gives (imagenet's data.image_size,
                                  * synthetic's): a network is built for it before any buffer
                                  * is read, and its activations grow with its square */
                                 .image_size = h5_get_count(f, path, "image_size", 1, 4096),
                                 .classes = h5_get_count(f, path, "classes", 2, 1e7),
                                 .width = h5_get_real(f, path, "width", 0, 64)};
    if (!(info->cfg.width > 0))
        dnal_fatal(DNAL_EXIT_DATA, "%s: attribute width = %g is not in (0, 64]", path,
                   info->cfg.width);
}

void dnal_model_save(const char *path, const dnal_model_cfg *m, const dnal_arch_record *rec,
                     const dnal_net *net, dnal_cost dense, dnal_cost compact)
{
    char tmp[DNAL_PATH_MAX + 8], name[256];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    hid_t f = h5_create(tmp);
    h5_attr_str(f, "format", "dnal-model");
    h5_attr_f64(f, "version", MODEL_FORMAT_VERSION);
    h5_attr_str(f, "dnal_version", PACKAGE_VERSION);
    io_model_attrs_write(f, m);
    h5_attr_f64(f, "flops_dense", dense.flops);
    h5_attr_f64(f, "flops", compact.flops);
    h5_attr_f64(f, "params_dense", dense.params);
    h5_attr_f64(f, "params", compact.params);
    for (int i = 0; i < rec->n; i++) {
        uint8_t *mask = dnal_alloc((size_t)rec->channels[i] + 1);
        for (int64_t c = 0; c < rec->channels[i]; c++)
            mask[c] = rec->mask[i][c] != 0.0f;
        snprintf(name, sizeof name, "/arch/%s/mask", rec->name[i]);
        h5_write_u8(f, name, mask, (hsize_t)rec->channels[i]);
        free(mask);
    }
    hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
    H5Pset_create_intermediate_group(lcpl, 1);
    for (int i = 0; i < net->n_layers; i++) {
        const dnal_layer *l = net->layers[i];
        if (l->n_params == 0)
            continue;
        snprintf(name, sizeof name, "/layers/%s", l->name);
        hid_t g = H5_CHECK(H5Gcreate2(f, name, lcpl, H5P_DEFAULT, H5P_DEFAULT));
        h5_attr_str(g, "kind", dnal_layer_kind_name(l->kind));
        h5_attr_f64(g, "in_channels", (double)l->in[0]->c);
        h5_attr_f64(g, "out_channels", (double)l->out->c);
        H5Gclose(g);
        for (int k = 0; k < l->n_params; k++) {
            hsize_t dims[5];
            for (int d = 0; d < l->param[k].ndims; d++)
                dims[d] = (hsize_t)l->param[k].dims[d];
            layer_path(name, sizeof name, l->name, l->param[k].name);
            h5_write_f32(f, name, dnal_net_param(net, l, k), l->param[k].ndims, dims);
        }
        if (l->kind == DNAL_BN) {
            hsize_t c = l->n_stats / 2;
            layer_path(name, sizeof name, l->name, "running_mean");
            h5_write_f32(f, name, net->stats + l->stats_off, 1, &c);
            layer_path(name, sizeof name, l->name, "running_var");
            h5_write_f32(f, name, net->stats + l->stats_off + c, 1, &c);
        }
    }
    H5Pclose(lcpl);
    h5_close_atomic(f, tmp, path);
}

/* the masks of the file onto the dense net's gated layers: 0 or 1 each */
static void read_masks(hid_t f, const char *path, dnal_net *dense)
{
    char name[256];
    for (int i = 0; i < dense->n_layers; i++) {
        const dnal_layer *l = dense->layers[i];
        if (l->kind != DNAL_GATE)
            continue;
        uint8_t *mask = dnal_alloc(l->n_gates + 1);
        snprintf(name, sizeof name, "/arch/%s/mask", l->name);
        h5_read_u8(f, name, mask, l->n_gates);
        for (size_t c = 0; c < l->n_gates; c++) {
            if (mask[c] > 1)
                dnal_fatal(DNAL_EXIT_DATA, "%s: %s[%zu] = %d is not 0 or 1", path, name, c, mask[c]);
            dense->mask[l->gate_off + c] = mask[c];
        }
        free(mask);
    }
}

/* Each gated layer's mask holds as many values as the layer has channels,
 * checked on a count_only network before one with buffers is built: the
 * masks are in the file, so a damaged width or model cannot make the
 * build allocate more than the file justifies */
static void check_mask_counts(hid_t f, const char *path, const dnal_net *shape)
{
    char name[256];
    for (int i = 0; i < shape->n_layers; i++) {
        const dnal_layer *l = shape->layers[i];
        if (l->kind != DNAL_GATE)
            continue;
        snprintf(name, sizeof name, "/arch/%s/mask", l->name);
        size_t stored = h5_dataset_count(f, name, 1);
        if (stored != l->n_gates)
            dnal_fatal(DNAL_EXIT_DATA, "%s: %s holds %zu values, but the model the attributes "
                       "describe has %zu channels there (damaged attributes?)", path, name,
                       stored, l->n_gates);
    }
}

/* a cost the file states against the one of the network it describes */
static void check_cost(const char *path, const char *what, double stated, double built)
{
    if (!(fabs(stated - built) <= 1e-6 * built))
        dnal_fatal(DNAL_EXIT_DATA, "%s: attribute %s = %.0f, but the network the file describes "
                   "has %.0f (damaged attributes?)", path, what, stated, built);
}

/* the values of a layer's tensor: finite; BN variances not negative */
static void check_layer_values(const char *path, const char *name, const float *v, size_t n,
                               int variance)
{
    for (size_t i = 0; i < n; i++)
        if (!isfinite(v[i]) || (variance && v[i] < 0))
            dnal_fatal(DNAL_EXIT_DATA, "%s: %s[%zu] = %g is not %s", path, name, i, (double)v[i],
                       variance ? "a variance" : "finite");
}

/* the layer group's stated channel counts against the network's */
static void check_layer_group(hid_t f, const char *path, const dnal_layer *l)
{
    char name[256];
    snprintf(name, sizeof name, "/layers/%s", l->name);
    if (H5Lexists(f, "/layers", H5P_DEFAULT) <= 0 || H5Lexists(f, name, H5P_DEFAULT) <= 0)
        dnal_fatal(DNAL_EXIT_DATA, "%s: missing group %s", path, name);
    hid_t g = H5_CHECK(H5Gopen2(f, name, H5P_DEFAULT));
    int64_t in = h5_get_count(g, path, "in_channels", 1, 1e9),
            out = h5_get_count(g, path, "out_channels", 1, 1e9);
    H5Gclose(g);
    if (in != l->in[0]->c || out != l->out->c)
        dnal_fatal(DNAL_EXIT_DATA, "%s: %s has %lld -> %lld channels, its masks make %lld -> %lld",
                   path, name, (long long)in, (long long)out, (long long)l->in[0]->c,
                   (long long)l->out->c);
}

/* the compact network's weights and statistics, by layer name, checked */
static void read_layers(hid_t f, const char *path, dnal_net *net)
{
    char name[256];
    for (int i = 0; i < net->n_layers; i++) {
        const dnal_layer *l = net->layers[i];
        if (l->n_params > 0)
            check_layer_group(f, path, l);
        for (int k = 0; k < l->n_params; k++) {
            layer_path(name, sizeof name, l->name, l->param[k].name);
            float *v = dnal_net_param(net, l, k);
            h5_read_f32(f, name, v, l->param[k].count);
            check_layer_values(path, name, v, l->param[k].count, 0);
        }
        if (l->kind == DNAL_BN) {
            size_t c = l->n_stats / 2;
            float *mean = net->stats + l->stats_off, *var = mean + c;
            layer_path(name, sizeof name, l->name, "running_mean");
            h5_read_f32(f, name, mean, c);
            check_layer_values(path, name, mean, c, 0);
            layer_path(name, sizeof name, l->name, "running_var");
            h5_read_f32(f, name, var, c);
            check_layer_values(path, name, var, c, 1);
        }
    }
}

static hid_t open_model_file(const char *path, int64_t batch, dnal_model_info *info)
{
    hid_t f = h5_open(path, "model file");
    char *format = h5_get_str(f, "format");
    if (strcmp(format, "dnal-model"))
        dnal_fatal(DNAL_EXIT_DATA, "%s: a %s file, not a dnal model (dnal export writes those)", path,
                   format);
    free(format);
    h5_get_count(f, path, "version", 1, MODEL_FORMAT_VERSION);
    memset(info, 0, sizeof *info);
    io_model_attrs_read(f, path, batch, info);
    info->dense = (dnal_cost){h5_get_real(f, path, "flops_dense", 0, 1e18),
                              h5_get_real(f, path, "params_dense", 0, 1e15)};
    info->compact = (dnal_cost){h5_get_real(f, path, "flops", 0, 1e18),
                                h5_get_real(f, path, "params", 0, 1e15)};
    return f;
}

void dnal_model_file_info(const char *path, int64_t batch, dnal_model_info *info)
{
    H5Fclose(open_model_file(path, batch, info));
}

/* The compact network a model file describes, validated whole: its masks,
 * its costs against the stated ones (which vouch for the input size), each
 * layer's channel counts and values. The network is built params_only
 * (include/dnal/core.h), so a damaged attribute cannot make it allocate
 * activations. */
static dnal_net *read_checked(const dnal_ctx *ctx, hid_t f, const char *path,
                              const dnal_model_info *info, float **dense_mask)
{
    dnal_ctx plan = *ctx; /* the same engine, for networks that never run */
    plan.count_only = 1; /* first counted: the masks bound what is built */
    dnal_net *shape = dnal_model_build(&plan, &info->cfg);
    check_mask_counts(f, path, shape);
    dnal_net_destroy(shape);
    plan.count_only = 0;
    plan.params_only = 1;
    dnal_net *dense = dnal_model_build(&plan, &info->cfg);
    dnal_cost dense_cost = dnal_net_cost(dense, NULL);
    check_cost(path, "flops_dense", info->dense.flops, dense_cost.flops);
    check_cost(path, "params_dense", info->dense.params, dense_cost.params);
    read_masks(f, path, dense);
    *dense_mask = dnal_alloc(sizeof(float) * (dense->n_gates + 1));
    memcpy(*dense_mask, dense->mask, sizeof(float) * dense->n_gates);
    dnal_net *net = dnal_net_compact(dense, 1);
    dnal_net_destroy(dense);
    dnal_cost cost = dnal_net_cost(net, NULL);
    check_cost(path, "flops", info->compact.flops, cost.flops);
    check_cost(path, "params", info->compact.params, cost.params);
    read_layers(f, path, net);
    return net;
}

dnal_net *dnal_model_load(const dnal_ctx *ctx, const char *path, int64_t batch,
                          dnal_model_info *info)
{
    float *mask;
    hid_t f = open_model_file(path, batch, info);
    dnal_net *checked = read_checked(ctx, f, path, info, &mask);
    H5Fclose(f);
    if (ctx->params_only) {
        free(mask);
        return checked;
    }
    /* the network that runs, for batch: the same masks and values */
    dnal_net *dense = dnal_model_build(ctx, &info->cfg);
    memcpy(dense->mask, mask, sizeof(float) * dense->n_gates);
    free(mask);
    dnal_net *net = dnal_net_compact(dense, batch);
    dnal_net_destroy(dense);
    for (int i = 0; i < net->n_layers; i++) { /* by name: layouts may differ */
        const dnal_layer *l = net->layers[i], *c = dnal_net_find(checked, l->name);
        DNAL_ASSERT(c && c->n_params == l->n_params && c->n_stats == l->n_stats);
        for (int k = 0; k < l->n_params; k++)
            memcpy(dnal_net_param(net, l, k), dnal_net_param(checked, c, k),
                   sizeof(float) * l->param[k].count);
        memcpy(net->stats + l->stats_off, checked->stats + c->stats_off,
               sizeof(float) * l->n_stats);
    }
    dnal_net_destroy(checked);
    return net;
}
