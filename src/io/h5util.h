/* HDF5 helpers for dnal's files, and what its file formats share (not
 * installed). Failures name the file and the object and exit with code 2. */
#ifndef DNAL_IO_H5UTIL_H
#define DNAL_IO_H5UTIL_H

#include <stdint.h>

#include <hdf5.h>

#include "dnal/io.h"

hid_t h5_create(const char *path);
/* what: "checkpoint", "model file"... for the message */
hid_t h5_open(const char *path, const char *what);
/* Closes, flushes to disk and renames tmp to path, then flushes path's
 * folder: a file exists only once complete and durable. */
void h5_close_atomic(hid_t f, const char *tmp, const char *path);
/* fsync of the folder holding path; 0 or -1 with errno */
int io_sync_folder_of(const char *path);

/* datasets (intermediate groups are created); reads check the size */
void h5_write_f32(hid_t f, const char *name, const float *v, int ndims, const hsize_t *dims);
void h5_write_u8(hid_t f, const char *name, const uint8_t *v, hsize_t n);
void h5_read_f32(hid_t f, const char *name, float *v, size_t count);
void h5_read_u8(hid_t f, const char *name, uint8_t *v, size_t count);
void h5_write_f64(hid_t f, const char *name, const double *v, hsize_t n);
void h5_write_i64(hid_t f, const char *name, const int64_t *v, hsize_t n);
void h5_read_f64(hid_t f, const char *name, double *v, size_t count);
void h5_read_i64(hid_t f, const char *name, int64_t *v, size_t count);
/* the object (a path of groups, then a dataset or group) exists */
int h5_has(hid_t f, const char *name);
/* the values of a 1-D dataset: exit 2 naming it if it is missing, not 1-D,
 * empty or holds more than max */
size_t h5_len(hid_t f, const char *name, size_t max);
/* How many values the dataset name holds, without reading them: exit 2
 * naming the file if it is missing or claims more values of elem_bytes
 * than the file has bytes (dnal writes every dataset uncompressed) */
size_t h5_dataset_count(hid_t f, const char *name, size_t elem_bytes);

/* Scalar attributes of a file, group or dataset. Reading checks class,
 * scalar dataspace and size first (exit 2 naming file and attribute). */
enum { H5_ATTR_STR_MAX = 16 << 20 }; /* the longest string attribute read */
void h5_attr_str(hid_t obj, const char *name, const char *value);
void h5_attr_f64(hid_t obj, const char *name, double value);
double h5_get_f64(hid_t obj, const char *name);
char *h5_get_str(hid_t obj, const char *name); /* free() it */
/* a scalar that must be a whole number (count) or a number (real) in
 * [lo, hi]: exit 2 naming path and the attribute otherwise (NaN too) */
int64_t h5_get_count(hid_t f, const char *path, const char *name, double lo, double hi);
double h5_get_real(hid_t f, const char *path, const char *name, double lo, double hi);

/* The model attributes checkpoints and model files share: model, in_channels,
 * image_size, classes, width. Reading checks them (exit 2 naming the file
 * and attribute) before anything is built from them. */
void io_model_attrs_write(hid_t f, const dnal_model_cfg *m);
void io_model_attrs_read(hid_t f, const char *path, int64_t batch, dnal_model_info *info);

/* The compact network's times (dnal_latency_times) as attributes time_of,
 * time_dense_ms, time_compact_ms, time_ratio, predicted_dense_ms,
 * predicted_compact_ms, predicted_ratio of obj (a checkpoint's root, the
 * run log's /arch); written only when of is set. Reading: none if absent,
 * else each a positive number or NaN (exit 2 naming path otherwise). */
void io_latency_attrs_write(hid_t obj, const dnal_latency_times *t);
dnal_latency_times io_latency_attrs_read(hid_t obj, const char *path);

#endif
