/* The checkpoint's attribute readers: a real checkpoint of a small
 * network, made once, whose root attributes the input rewrites (kind,
 * shape, value, or deletion) before --resume's readers take it:
 * dnal_checkpoint_find (the folder scan), dnal_checkpoint_config and
 * dnal_checkpoint_load. Each edit is 3 bytes and a value: attribute,
 * kind, length. */
#include <sys/stat.h>

#include <hdf5.h>

#include "fuzz.h"
#include "dnal/io.h"
#include "dnal/models.h"

static const char *const names[] = {
    "format", "version", "model", "in_channels", "image_size", "classes", "width", "compact",
    "beta", "lambda", "step", "done", "config", "n_param", "n_stats", "n_gates", "stage_step",
    "log_since", "log_loss_sum", "held", "top1_search", "top1_pruned", "world_size",
    "log_steps", "log_gates", "log_eval", "eval_pending", "run_id"};
enum { N_NAMES = sizeof names / sizeof names[0] };

static uint8_t *base;
static size_t base_len;
static dnal_ctx *ctx;

static void make_base(void)
{
    ctx = dnal_ctx_create();
    /* the readers are the target, not the primitives: networks without
     * activations or primitives (what dnal export builds) */
    ctx->params_only = 1;
    dnal_model_cfg m = {.name = "convnet", .batch = 2, .in_channels = 1, .image_size = 28,
                        .classes = 10, .width = 0.25};
    dnal_net *net = dnal_model_build(ctx, &m);
    dnal_model_init(net, 1);
    float *momentum = calloc(net->n_gates + 1, sizeof(float));
    dnal_checkpoint_info info = {.model = {.cfg = m}, .beta = 1, .step = 3, .done = "pretrain",
                                 .config = "[data]\npath = x\n", .alpha_momentum = momentum,
                                 .world_size = 1, .run_id = "fuzz"};
    char path[1024];
    snprintf(path, sizeof path, "%s/base.h5", fuzz_dir);
    dnal_checkpoint_save(path, &info, net, NULL);
    FILE *f = fopen(path, "rb");
    fseek(f, 0, SEEK_END);
    base_len = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    base = malloc(base_len);
    if (fread(base, 1, base_len, f) != base_len)
        abort();
    fclose(f);
    free(momentum);
    dnal_net_destroy(net);
}

static void edit(hid_t f, const uint8_t *p, size_t n)
{
    const char *name = names[p[0] % N_NAMES];
    int kind = p[1] % 7;
    size_t len = p[2];
    p += 3, n -= 3;
    if (H5Aexists(f, name) > 0)
        H5Adelete(f, name);
    if (kind == 6) /* deleted */
        return;
    hsize_t dims = kind == 1 || kind == 4 ? (len % 5) + 1 : 1;
    hid_t space = kind == 1 || kind == 4 ? H5Screate_simple(1, &dims, NULL) : H5Screate(H5S_SCALAR);
    hid_t type;
    static uint8_t value[4096];
    memset(value, 0, sizeof value);
    memcpy(value, p, n < sizeof value ? n : sizeof value);
    if (kind == 0 || kind == 1) {
        type = H5Tcopy(H5T_NATIVE_DOUBLE);
    } else if (kind == 3) {
        type = H5Tcopy(H5T_NATIVE_INT32);
    } else if (kind == 5) {
        type = H5Tcopy(H5T_C_S1);
        H5Tset_size(type, H5T_VARIABLE);
        static const char *one;
        one = (const char *)value;
        value[sizeof value - 1] = 0;
        hid_t a = H5Acreate2(f, name, type, space, H5P_DEFAULT, H5P_DEFAULT);
        H5Awrite(a, type, &one);
        H5Aclose(a);
        H5Tclose(type);
        H5Sclose(space);
        return;
    } else {
        type = H5Tcopy(H5T_C_S1);
        H5Tset_size(type, len + 1);
    }
    hid_t a = H5Acreate2(f, name, type, space, H5P_DEFAULT, H5P_DEFAULT);
    if (a >= 0) {
        H5Awrite(a, type, value);
        H5Aclose(a);
    }
    H5Tclose(type);
    H5Sclose(space);
}

/* every HDF5 object a fatal error left open (the process would have ended) */
static void close_all_h5(void)
{
    hid_t ids[256];
    ssize_t n;
    while ((n = H5Fget_obj_ids(H5F_OBJ_ALL, H5F_OBJ_ALL, 256, ids)) > 0) {
        for (ssize_t i = 0; i < n; i++)
            switch (H5Iget_type(ids[i])) {
            case H5I_FILE: H5Fclose(ids[i]); break;
            case H5I_GROUP: H5Gclose(ids[i]); break;
            case H5I_DATASET: H5Dclose(ids[i]); break;
            case H5I_ATTR: H5Aclose(ids[i]); break;
            case H5I_DATATYPE: H5Tclose(ids[i]); break;
            default: break;
            }
        if (n < 256)
            break;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_init();
    dnal_h5_quiet();
    if (!base) {
        /* HDF5 keeps what it frees (each file open callocs its metadata
         * cache, over 512 KiB): under ASan every open was fresh pages, and
         * an input opens the checkpoint four times */
        H5set_free_list_limits(-1, -1, -1, -1, -1, -1);
        make_base();
    }
    char dir[600];
    snprintf(dir, sizeof dir, "%s/ck", fuzz_dir);

    if (access(dir, F_OK) != 0 && mkdir(dir, 0700) != 0)
        abort();
    const char *path = fuzz_write("ck/step-00000003.h5", base, base_len);
    hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    /* edits: 3 header bytes and up to 8 value bytes each */
    for (size_t at = 0; f >= 0 && at + 3 <= size; at += 11)
        edit(f, data + at, size - at < 11 ? size - at : 11);
    if (f >= 0)
        H5Fclose(f);
    if (setjmp(fuzz_jump) == 0) {
        char found[2048];
        if (dnal_checkpoint_find(dir, found, sizeof found) == 0)
            free(dnal_checkpoint_config(found));
    }
    if (setjmp(fuzz_jump) == 0) {
        dnal_checkpoint_info info;
        dnal_net *net = dnal_checkpoint_load(ctx, path, 2, &info, NULL);
        dnal_net_destroy(net);
        dnal_checkpoint_info_free(&info);
    }
    close_all_h5();
    return 0;
}
