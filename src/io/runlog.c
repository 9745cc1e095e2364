/* The HDF5 run log (docs/design.md, "The run log"), written by rank 0.
 *
 * Every dataset is created at start, chunked and compressed. Each row (a
 * log interval's, an alpha snapshot, an evaluation) is appended when it
 * comes by opening the file, writing and closing it again: between those
 * few milliseconds the log is a closed, consistent HDF5 file that h5dump and
 * plain h5py read while the job runs, and a kill -9 leaves every appended
 * row readable. (Not SWMR: HDF5 1.10 lets only SWMR readers open a file in
 * SWMR writing, not h5dump, and a killed SWMR writer leaves the file flagged
 * open until h5clear; docs/design.md.) The writer opens the file without
 * locking it, so a reader holding it open never stops a run.
 *
 *   / attrs   dnal_version, onednn_version, world_size, threads, seed,
 *             config, created, flops_dense, params_dense, flops_compact,
 *             params_compact, flops_compact_authors, params_compact_authors
 *             (NaN until pruned); after a resume resumes, world_size_resumed;
 *             at the end finished (ISO 8601)
 *   /steps/{step (int64), epoch, stage (int8), loss, reg, lambda, lr, beta,
 *           flops, params, images_per_s (float64)}
 *   /gates/step (int64), /gates/beta (float64), /gates/<layer>/alpha
 *             (float32, snapshots x channels)
 *   /eval/{epoch (float64), stage (int8), top1, top5, loss (float64)}
 *   /arch/<layer>/mask (uint8, channels: 1 until pruned), /arch attrs
 *             flops_before, flops_after, params_before, params_after,
 *             flops_after_authors, params_after_authors (after = NaN until
 *             pruned; _authors: counted the authors' way, dnal_net_cost_as) */
#include <math.h>
#include <errno.h>
#include <stdio.h>
#include <sys/stat.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "config.h"
#include "dnal/io.h"
#include "h5util.h"

enum { STEP_COLS = 11, EVAL_COLS = 5, ROW_CHUNK = 512 };
static const char *const step_cols[STEP_COLS] = {"step", "epoch", "stage", "loss", "reg", "lambda",
                                                 "lr", "beta", "flops", "params", "images_per_s"};
static const char *const eval_cols[EVAL_COLS] = {"epoch", "stage", "top1", "top5", "loss"};

typedef struct gated_layer {
    char name[64];
    int64_t channels;
    size_t off;            /* its first channel among all gated channels (net->alpha) */
} gated_layer;

struct dnal_runlog {
    char path[DNAL_PATH_MAX];
    hid_t file;            /* open only while appending */
    int n_gated;
    size_t n_alpha;
    dnal_arena layers;     /* gated and arch_mask */
    gated_layer *gated;
    uint8_t *arch_mask;    /* n_alpha */
    dnal_log_rows rows;    /* in the file */
    int arch_pending;      /* masks and costs not yet in the file */
    dnal_cost dense, compact; /* compact: NaN until pruned */
    dnal_cost compact_authors;
};

static hid_t column_type(const char *name)
{
    if (!strcmp(name, "step"))
        return H5T_NATIVE_INT64;
    if (!strcmp(name, "stage"))
        return H5T_NATIVE_INT8;
    return H5T_NATIVE_DOUBLE;
}

static void fail(const dnal_runlog *log, const char *what)
{
    dnal_fatal(DNAL_EXIT_DATA, "%s: cannot write the run log (%s)", log->path, what);
}

/* an extendible, chunked, compressed dataset of rows x width (0: 1-D) */
static void create_rows(dnal_runlog *log, const char *name, hid_t type, hsize_t width)
{
    hsize_t dims[2] = {0, width}, max[2] = {H5S_UNLIMITED, width};
    hsize_t chunk[2] = {width > 1 ? 16 : ROW_CHUNK, width};
    int rank = width > 0 ? 2 : 1;
    hid_t space = H5Screate_simple(rank, dims, max);
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    H5Pset_chunk(dcpl, rank, chunk);
    H5Pset_shuffle(dcpl);
    H5Pset_deflate(dcpl, 4);
    hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
    H5Pset_create_intermediate_group(lcpl, 1);
    hid_t d = H5Dcreate2(log->file, name, type, space, lcpl, dcpl, H5P_DEFAULT);
    H5Pclose(lcpl);
    H5Pclose(dcpl);
    H5Sclose(space);
    if (d < 0)
        fail(log, name);
    H5Dclose(d);
}

/* appends one row of `width` values (width 0: a 1-D dataset) at row `at` */
static void append(dnal_runlog *log, const char *name, hid_t type, hsize_t width, const void *v,
                   int64_t at)
{
    int rank = width > 0 ? 2 : 1;
    hsize_t size[2] = {(hsize_t)at + 1, width}, start[2] = {(hsize_t)at, 0}, count[2] = {1, width};
    hid_t d = H5Dopen2(log->file, name, H5P_DEFAULT);
    if (d < 0 || H5Dset_extent(d, size) < 0)
        fail(log, name);
    hid_t file_space = H5Dget_space(d);
    hid_t mem_space = H5Screate_simple(rank, count, NULL);
    H5Sselect_hyperslab(file_space, H5S_SELECT_SET, start, NULL, count, NULL);
    herr_t rc = H5Dwrite(d, type, mem_space, file_space, H5P_DEFAULT, v);
    H5Sclose(mem_space);
    H5Sclose(file_space);
    H5Dclose(d);
    if (rc < 0)
        fail(log, name);
}

static void attr_int(hid_t obj, const char *name, hid_t type, const void *v)
{
    hid_t space = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(obj, name, type, space, H5P_DEFAULT, H5P_DEFAULT);
    H5_CHECK(H5Awrite(a, type, v));
    H5Aclose(a);
    H5Sclose(space);
}

static void root_attrs(dnal_runlog *log, const dnal_runlog_info *info)
{
    hid_t f = log->file;
    char created[32], onednn[32];
    time_t now = time(NULL);
    strftime(created, sizeof created, "%Y-%m-%dT%H:%M:%SZ", gmtime(&now));
    const dnnl_version_t *v = dnnl_version();
    snprintf(onednn, sizeof onednn, "%d.%d.%d", v->major, v->minor, v->patch);
    int64_t world = info->world_size, threads = info->threads;
    uint64_t seed = info->seed;
    h5_attr_str(f, "dnal_version", PACKAGE_VERSION);
    h5_attr_str(f, "onednn_version", onednn);
    attr_int(f, "world_size", H5T_NATIVE_INT64, &world);
    attr_int(f, "threads", H5T_NATIVE_INT64, &threads);
    attr_int(f, "seed", H5T_NATIVE_UINT64, &seed);
    h5_attr_str(f, "config", info->config);
    h5_attr_str(f, "created", created);
    h5_attr_f64(f, "flops_dense", info->dense.flops);
    h5_attr_f64(f, "params_dense", info->dense.params);
    if (info->moved_aside && info->moved_aside[0])
        h5_attr_str(f, "previous_log_moved_to", info->moved_aside);
}

static void open_file(dnal_runlog *log, int create)
{
    dnal_h5_quiet();
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    H5Pset_file_locking(fapl, 0, 1); /* a reader holding the file must not stop the run */
    log->file = create ? H5Fcreate(log->path, H5F_ACC_TRUNC, H5P_DEFAULT, fapl)
                       : H5Fopen(log->path, H5F_ACC_RDWR, fapl);
    H5Pclose(fapl);
    if (log->file < 0)
        dnal_fatal(DNAL_EXIT_DATA, "%s: cannot %s the run log (log.path)", log->path,
                   create ? "create" : "open");
}

static void close_file(dnal_runlog *log)
{
    if (H5Fclose(log->file) < 0)
        fail(log, "close");
    log->file = -1;
}

static void write_masks(dnal_runlog *log, const uint8_t *mask, int create)
{
    char name[160];
    for (int i = 0; i < log->n_gated; i++) {
        snprintf(name, sizeof name, "/arch/%s/mask", log->gated[i].name);
        if (create) {
            h5_write_u8(log->file, name, mask + log->gated[i].off, (hsize_t)log->gated[i].channels);
            continue;
        }
        hid_t d = H5Dopen2(log->file, name, H5P_DEFAULT);
        if (d < 0 ||
            H5Dwrite(d, H5T_NATIVE_UINT8, H5S_ALL, H5S_ALL, H5P_DEFAULT, mask + log->gated[i].off) < 0)
            fail(log, name);
        H5Dclose(d);
    }
}

static void set_attr(dnal_runlog *log, hid_t obj, const char *name, double v)
{
    if (H5Aexists(obj, name) > 0) {
        hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
        if (a < 0 || H5Awrite(a, H5T_NATIVE_DOUBLE, &v) < 0)
            fail(log, name);
        H5Aclose(a);
    } else {
        h5_attr_f64(obj, name, v);
    }
}

static void write_arch(dnal_runlog *log, int create)
{
    write_masks(log, log->arch_mask, create);
    hid_t arch = H5Lexists(log->file, "/arch", H5P_DEFAULT) > 0 /* no gates: no masks made it */
                     ? H5Gopen2(log->file, "/arch", H5P_DEFAULT)
                     : H5Gcreate2(log->file, "/arch", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    if (arch < 0)
        fail(log, "/arch");
    if (create) {
        set_attr(log, arch, "flops_before", log->dense.flops);
        set_attr(log, arch, "params_before", log->dense.params);
    }
    set_attr(log, arch, "flops_after", log->compact.flops);
    set_attr(log, arch, "params_after", log->compact.params);
    set_attr(log, arch, "flops_after_authors", log->compact_authors.flops);
    set_attr(log, arch, "params_after_authors", log->compact_authors.params);
    H5Gclose(arch);
    set_attr(log, log->file, "flops_compact", log->compact.flops);
    set_attr(log, log->file, "params_compact", log->compact.params);
    set_attr(log, log->file, "flops_compact_authors", log->compact_authors.flops);
    set_attr(log, log->file, "params_compact_authors", log->compact_authors.params);
}

static void record_masks(dnal_runlog *log, const dnal_arch_record *rec)
{
    for (int i = 0; i < rec->n && i < log->n_gated; i++)
        for (int64_t c = 0; c < rec->channels[i]; c++)
            log->arch_mask[log->gated[i].off + (size_t)c] = rec->mask[i][c] != 0.0f;
}

/* the log's memory: the gated layers, their masks and costs */
static dnal_runlog *log_new(const char *path, const dnal_runlog_info *info)
{
    dnal_runlog *log = dnal_calloc(sizeof *log);
    snprintf(log->path, sizeof log->path, "%s", path);
    const dnal_arch_record *rec = info->gates;
    log->n_gated = rec->n;
    for (int i = 0; i < rec->n; i++)
        log->n_alpha += (size_t)rec->channels[i];
    size_t gated = dnal_arena_reserve(&log->layers, sizeof *log->gated * (size_t)rec->n);
    size_t mask = dnal_arena_reserve(&log->layers, log->n_alpha);
    dnal_arena_commit(&log->layers);
    log->gated = dnal_arena_at(&log->layers, gated);
    log->arch_mask = dnal_arena_at(&log->layers, mask);
    size_t off = 0;
    for (int i = 0; i < rec->n; i++) {
        snprintf(log->gated[i].name, sizeof log->gated[i].name, "%s", rec->name[i]);
        log->gated[i].channels = rec->channels[i];
        log->gated[i].off = off;
        off += (size_t)rec->channels[i];
    }
    record_masks(log, rec);
    log->dense = info->dense;
    log->compact = info->compact;
    log->compact_authors = info->compact_authors;
    return log;
}

dnal_runlog *dnal_runlog_create(const char *path, const dnal_runlog_info *info)
{
    dnal_runlog *log = log_new(path, info);
    open_file(log, 1);
    root_attrs(log, info);
    char name[160];
    for (int c = 0; c < STEP_COLS; c++) {
        snprintf(name, sizeof name, "/steps/%s", step_cols[c]);
        create_rows(log, name, column_type(step_cols[c]), 0);
    }
    for (int c = 0; c < EVAL_COLS; c++) {
        snprintf(name, sizeof name, "/eval/%s", eval_cols[c]);
        create_rows(log, name, column_type(eval_cols[c]), 0);
    }
    create_rows(log, "/gates/step", H5T_NATIVE_INT64, 0);
    create_rows(log, "/gates/beta", H5T_NATIVE_DOUBLE, 0);
    for (int i = 0; i < log->n_gated; i++) {
        snprintf(name, sizeof name, "/gates/%s/alpha", log->gated[i].name);
        create_rows(log, name, H5T_NATIVE_FLOAT, (hsize_t)log->gated[i].channels);
    }
    write_arch(log, 1);
    close_file(log);
    return log;
}

/* cuts a dataset back to `rows` rows */
static void truncate_rows(dnal_runlog *log, const char *name, int64_t rows)
{
    hid_t d = H5Dopen2(log->file, name, H5P_DEFAULT);
    hsize_t dims[2];
    if (d < 0)
        dnal_fatal(DNAL_EXIT_DATA, "%s: not this run's log: no %s (log.path)", log->path, name);
    hid_t space = H5Dget_space(d);
    int rank = H5Sget_simple_extent_dims(space, dims, NULL);
    H5Sclose(space);
    if ((int64_t)dims[0] < rows)
        dnal_fatal(DNAL_EXIT_DATA, "%s: %s has %lld rows, the checkpoint counted %lld (another run's log?)",
                   log->path, name, (long long)dims[0], (long long)rows);
    dims[0] = (hsize_t)rows;
    if (rank < 1 || H5Dset_extent(d, dims) < 0)
        fail(log, name);
    H5Dclose(d);
}

/* the rows of dataset name in f, or -1 */
static int64_t rows_of(hid_t f, const char *name)
{
    if (H5Lexists(f, "/steps", H5P_DEFAULT) <= 0 || H5Lexists(f, "/eval", H5P_DEFAULT) <= 0 ||
        H5Lexists(f, "/gates", H5P_DEFAULT) <= 0 || H5Lexists(f, name, H5P_DEFAULT) <= 0)
        return -1;
    hid_t d = H5Dopen2(f, name, H5P_DEFAULT);
    hid_t s = d >= 0 ? H5Dget_space(d) : -1;
    hsize_t dims[2] = {0, 0};
    int nd = s >= 0 ? H5Sget_simple_extent_dims(s, dims, NULL) : -1;
    if (s >= 0)
        H5Sclose(s);
    if (d >= 0)
        H5Dclose(d);
    return nd >= 1 ? (int64_t)dims[0] : -1;
}

/* the file at path opens read-write as a run log holding at least rows */
static int usable_log(const char *path, dnal_log_rows rows)
{
    dnal_h5_quiet();
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    H5Pset_file_locking(fapl, 0, 1);
    hid_t f = H5Fopen(path, H5F_ACC_RDWR, fapl);
    H5Pclose(fapl);
    if (f < 0)
        return 0;
    int ok = rows_of(f, "/steps/step") >= rows.steps && rows_of(f, "/eval/top1") >= rows.eval &&
             rows_of(f, "/gates/step") >= rows.gates;
    H5Fclose(f);
    return ok;
}

dnal_runlog *dnal_runlog_reopen(const char *path, const dnal_runlog_info *info,
                                dnal_log_rows rows, char *moved, size_t moved_len)
{
    moved[0] = '\0';
    struct stat st;
    if (stat(path, &st) != 0)
        return NULL;
    if (!S_ISREG(st.st_mode) || !usable_log(path, rows)) {
        char stamp[32];
        time_t now = time(NULL);
        strftime(stamp, sizeof stamp, "%Y%m%dT%H%M%SZ", gmtime(&now));
        snprintf(moved, moved_len, "%s.unreadable-%s", path, stamp);
        if (rename(path, moved) != 0)
            dnal_fatal(DNAL_EXIT_DATA, "%s: the run log cannot be opened, nor moved aside to %s: %s",
                       path, moved, strerror(errno));
        return NULL;
    }
    dnal_runlog *log = log_new(path, info);
    open_file(log, 0);
    char name[160];
    for (int c = 0; c < STEP_COLS; c++) {
        snprintf(name, sizeof name, "/steps/%s", step_cols[c]);
        truncate_rows(log, name, rows.steps);
    }
    for (int c = 0; c < EVAL_COLS; c++) {
        snprintf(name, sizeof name, "/eval/%s", eval_cols[c]);
        truncate_rows(log, name, rows.eval);
    }
    truncate_rows(log, "/gates/step", rows.gates);
    truncate_rows(log, "/gates/beta", rows.gates);
    for (int i = 0; i < log->n_gated; i++) {
        snprintf(name, sizeof name, "/gates/%s/alpha", log->gated[i].name);
        truncate_rows(log, name, rows.gates);
    }
    log->rows = rows;
    /* the record of resumes (world size may change: the data order does not) */
    int64_t world = info->world_size;
    hid_t root = H5Gopen2(log->file, "/", H5P_DEFAULT);
    if (H5Aexists(root, "resumes") > 0) {
        hid_t a = H5Aopen(root, "resumes", H5P_DEFAULT);
        int64_t n = 0;
        H5Aread(a, H5T_NATIVE_INT64, &n);
        n++;
        H5Awrite(a, H5T_NATIVE_INT64, &n);
        H5Aclose(a);
    } else {
        int64_t one = 1;
        attr_int(root, "resumes", H5T_NATIVE_INT64, &one);
    }
    if (H5Aexists(root, "finished") > 0) /* a resumed run is running again */
        H5Adelete(root, "finished");
    if (H5Aexists(root, "world_size_resumed") > 0)
        H5Adelete(root, "world_size_resumed");
    attr_int(root, "world_size_resumed", H5T_NATIVE_INT64, &world);
    H5Gclose(root);
    log->arch_pending = 1; /* the masks as the checkpoint left them */
    close_file(log);
    return log;
}

/* one row of /steps, written at once */
void dnal_runlog_step(dnal_runlog *log, const dnal_log_step *row)
{
    char name[64];
    int64_t step = row->step;
    int8_t stage = (int8_t)row->stage;
    double v[STEP_COLS] = {0, row->epoch, 0, row->loss, row->reg, row->lambda, row->lr,
                           row->beta, row->flops, row->params, row->images_per_s};
    open_file(log, 0);
    for (int c = 0; c < STEP_COLS; c++) {
        const void *p = c == 0 ? (const void *)&step : c == 2 ? (const void *)&stage : &v[c];
        snprintf(name, sizeof name, "/steps/%s", step_cols[c]);
        append(log, name, column_type(step_cols[c]), 0, p, log->rows.steps);
    }
    log->rows.steps++;
    close_file(log);
}

void dnal_runlog_gates(dnal_runlog *log, int64_t step, double beta, const float *alpha)
{
    char name[160];
    open_file(log, 0);
    append(log, "/gates/step", H5T_NATIVE_INT64, 0, &step, log->rows.gates);
    append(log, "/gates/beta", H5T_NATIVE_DOUBLE, 0, &beta, log->rows.gates);
    for (int i = 0; i < log->n_gated; i++) {
        snprintf(name, sizeof name, "/gates/%s/alpha", log->gated[i].name);
        append(log, name, H5T_NATIVE_FLOAT, (hsize_t)log->gated[i].channels,
               alpha + log->gated[i].off, log->rows.gates);
    }
    log->rows.gates++;
    close_file(log);
}

void dnal_runlog_eval(dnal_runlog *log, const dnal_log_eval *e)
{
    char name[64];
    int8_t stage = (int8_t)e->stage;
    double v[EVAL_COLS] = {e->epoch, 0, e->top1, e->top5, e->loss};
    open_file(log, 0);
    for (int c = 0; c < EVAL_COLS; c++) {
        snprintf(name, sizeof name, "/eval/%s", eval_cols[c]);
        append(log, name, column_type(eval_cols[c]), 0, c == 1 ? (const void *)&stage : &v[c],
               log->rows.eval);
    }
    log->rows.eval++;
    close_file(log);
}

void dnal_runlog_arch(dnal_runlog *log, const dnal_arch_record *rec, dnal_cost compact,
                      dnal_cost compact_authors)
{
    record_masks(log, rec);
    log->compact = compact;
    log->compact_authors = compact_authors;
    log->arch_pending = 1;
    dnal_runlog_flush(log);
}

void dnal_runlog_flush(dnal_runlog *log)
{
    if (!log->arch_pending)
        return;
    open_file(log, 0);
    write_arch(log, 0);
    log->arch_pending = 0;
    close_file(log);
}

void dnal_runlog_latency(dnal_runlog *log, const dnal_latency_times *t)
{
    open_file(log, 0);
    hid_t arch = H5Lexists(log->file, "/arch", H5P_DEFAULT) > 0
                     ? H5Gopen2(log->file, "/arch", H5P_DEFAULT)
                     : H5Gcreate2(log->file, "/arch", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    if (arch < 0)
        fail(log, "/arch");
    io_latency_attrs_write(arch, t);
    H5Gclose(arch);
    close_file(log);
}

dnal_log_rows dnal_runlog_rows(const dnal_runlog *log)
{
    return log->rows;
}

void dnal_runlog_finish(dnal_runlog *log)
{
    if (!log)
        return;
    dnal_runlog_flush(log);
    char finished[32];
    time_t now = time(NULL);
    strftime(finished, sizeof finished, "%Y-%m-%dT%H:%M:%SZ", gmtime(&now));
    open_file(log, 0);
    hid_t root = H5Gopen2(log->file, "/", H5P_DEFAULT);
    if (H5Aexists(root, "finished") > 0)
        H5Adelete(root, "finished");
    h5_attr_str(root, "finished", finished);
    H5Gclose(root);
    close_file(log);
}

void dnal_runlog_close(dnal_runlog *log)
{
    if (!log)
        return;
    dnal_runlog_flush(log);
    dnal_arena_release(&log->layers);
    free(log);
}
