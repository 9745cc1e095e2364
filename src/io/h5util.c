/* Small HDF5 helpers for dnal's files: every failure names the file and the
 * object and ends the process with exit code 2 (bad input or output). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "h5util.h"

hid_t h5_create(const char *path)
{
    dnal_h5_quiet();
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    if (f < 0)
        dnal_fatal(DNAL_EXIT_DATA, "%s: cannot create the file", path);
    return f;
}

hid_t h5_open(const char *path, const char *what)
{
    dnal_h5_quiet();
    FILE *probe = fopen(path, "rb");
    if (!probe)
        dnal_fatal(DNAL_EXIT_DATA, "%s: cannot open %s: No such file or readable file", path, what);
    fclose(probe);
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0)
        dnal_fatal(DNAL_EXIT_DATA, "%s: not a readable HDF5 file (truncated or corrupt %s?)", path, what);
    return f;
}

static hid_t lcpl(void)
{
    hid_t p = H5Pcreate(H5P_LINK_CREATE);
    H5Pset_create_intermediate_group(p, 1);
    return p;
}

static void write_ds(hid_t f, const char *name, hid_t type, const void *v, int ndims,
                     const hsize_t *dims)
{
    hid_t space = ndims ? H5Screate_simple(ndims, dims, NULL) : H5Screate(H5S_SCALAR);
    hid_t lp = lcpl();
    hid_t d = H5Dcreate2(f, name, type, space, lp, H5P_DEFAULT, H5P_DEFAULT);
    if (d < 0 || H5Dwrite(d, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, v) < 0) {
        char file[1024] = "?";
        H5Fget_name(f, file, sizeof file);
        dnal_fatal(DNAL_EXIT_DATA, "%s: cannot write %s", file, name);
    }
    H5Dclose(d);
    H5Pclose(lp);
    H5Sclose(space);
}

void h5_write_f32(hid_t f, const char *name, const float *v, int ndims, const hsize_t *dims)
{
    write_ds(f, name, H5T_NATIVE_FLOAT, v, ndims, dims);
}

void h5_write_u8(hid_t f, const char *name, const uint8_t *v, hsize_t n)
{
    write_ds(f, name, H5T_NATIVE_UINT8, v, 1, &n);
}

void h5_write_f64(hid_t f, const char *name, const double *v, hsize_t n)
{
    write_ds(f, name, H5T_NATIVE_DOUBLE, v, 1, &n);
}

void h5_write_i64(hid_t f, const char *name, const int64_t *v, hsize_t n)
{
    write_ds(f, name, H5T_NATIVE_INT64, v, 1, &n);
}

static void file_name(hid_t f, char *out, size_t len)
{
    snprintf(out, len, "?");
    H5Fget_name(f, out, len);
}

static int h5_exists(hid_t f, const char *name)
{
    char buf[512];
    snprintf(buf, sizeof buf, "%s", name);
    for (char *p = buf + (buf[0] == '/');; p++) { /* every prefix must exist first */
        char c = *p;
        if (c == '/' || c == '\0') {
            *p = '\0';
            if (H5Lexists(f, buf, H5P_DEFAULT) <= 0)
                return 0;
            *p = c;
        }
        if (c == '\0')
            return 1;
    }
}

/* the dataset `name` of f, opened (negative if HDF5 fails); missing is exit 2 */
static hid_t open_dataset(hid_t f, const char *name)
{
    if (!h5_exists(f, name)) {
        char file[1024];
        file_name(f, file, sizeof file);
        dnal_fatal(DNAL_EXIT_DATA, "%s: missing dataset %s", file, name);
    }
    return H5Dopen2(f, name, H5P_DEFAULT);
}

static void read_ds(hid_t f, const char *name, hid_t type, void *v, size_t count)
{
    char file[1024];
    hid_t d = open_dataset(f, name);
    hid_t space = d >= 0 ? H5Dget_space(d) : -1;
    hssize_t n = space >= 0 ? H5Sget_simple_extent_npoints(space) : -1;
    int ok = d >= 0 && n == (hssize_t)count &&
             H5Dread(d, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, v) >= 0;
    if (space >= 0)
        H5Sclose(space);
    if (d >= 0)
        H5Dclose(d);
    if (!ok) {
        file_name(f, file, sizeof file);
        if (n >= 0 && n != (hssize_t)count)
            dnal_fatal(DNAL_EXIT_DATA, "%s: %s holds %lld values, expected %zu (another model?)", file,
                       name, (long long)n, count);
        dnal_fatal(DNAL_EXIT_DATA, "%s: cannot read %s (truncated or corrupt file?)", file, name);
    }
}

size_t h5_dataset_count(hid_t f, const char *name, size_t elem_bytes)
{
    char file[1024];
    file_name(f, file, sizeof file);
    hid_t d = open_dataset(f, name);
    hid_t space = d >= 0 ? H5Dget_space(d) : -1;
    hssize_t n = space >= 0 ? H5Sget_simple_extent_npoints(space) : -1;
    hsize_t bytes = 0;
    int ok = n >= 0 && H5Fget_filesize(f, &bytes) >= 0;
    if (space >= 0)
        H5Sclose(space);
    if (d >= 0)
        H5Dclose(d);
    if (!ok)
        dnal_fatal(DNAL_EXIT_DATA, "%s: cannot read %s (truncated or corrupt file?)", file, name);
    if ((hsize_t)n > bytes / elem_bytes)
        dnal_fatal(DNAL_EXIT_DATA, "%s: %s claims %lld values, more than the file's %llu bytes hold",
                   file, name, (long long)n, (unsigned long long)bytes);
    return (size_t)n;
}

void h5_read_f32(hid_t f, const char *name, float *v, size_t count)
{
    read_ds(f, name, H5T_NATIVE_FLOAT, v, count);
}

void h5_read_u8(hid_t f, const char *name, uint8_t *v, size_t count)
{
    read_ds(f, name, H5T_NATIVE_UINT8, v, count);
}

void h5_read_f64(hid_t f, const char *name, double *v, size_t count)
{
    read_ds(f, name, H5T_NATIVE_DOUBLE, v, count);
}

void h5_read_i64(hid_t f, const char *name, int64_t *v, size_t count)
{
    read_ds(f, name, H5T_NATIVE_INT64, v, count);
}

int h5_has(hid_t f, const char *name)
{
    return h5_exists(f, name);
}

size_t h5_len(hid_t f, const char *name, size_t max)
{
    char file[1024];
    hid_t d = open_dataset(f, name);
    hid_t space = d >= 0 ? H5Dget_space(d) : -1;
    int ndims = space >= 0 ? H5Sget_simple_extent_ndims(space) : -1;
    hssize_t n = space >= 0 ? H5Sget_simple_extent_npoints(space) : -1;
    if (space >= 0)
        H5Sclose(space);
    if (d >= 0)
        H5Dclose(d);
    if (ndims != 1 || n < 1 || (size_t)n > max) {
        file_name(f, file, sizeof file);
        dnal_fatal(DNAL_EXIT_DATA, "%s: %s is not a list of 1 to %zu values", file, name, max);
    }
    return (size_t)n;
}

void h5_attr_str(hid_t obj, const char *name, const char *value)
{
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, strlen(value) + 1);
    hid_t space = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(obj, name, t, space, H5P_DEFAULT, H5P_DEFAULT);
    H5_CHECK(H5Awrite(a, t, value));
    H5Aclose(a);
    H5Sclose(space);
    H5Tclose(t);
}

void h5_attr_f64(hid_t obj, const char *name, double value)
{
    hid_t space = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(obj, name, H5T_NATIVE_DOUBLE, space, H5P_DEFAULT, H5P_DEFAULT);
    H5_CHECK(H5Awrite(a, H5T_NATIVE_DOUBLE, &value));
    H5Aclose(a);
    H5Sclose(space);
}

static hid_t open_attr(hid_t obj, const char *name)
{
    if (H5Aexists(obj, name) <= 0) {
        char file[1024];
        file_name(obj, file, sizeof file);
        dnal_fatal(DNAL_EXIT_DATA, "%s: missing attribute %s (not a dnal file?)", file, name);
    }
    return H5_CHECK(H5Aopen(obj, name, H5P_DEFAULT));
}

/* Every attribute dnal reads is one value: a scalar dataspace of the class
 * it wrote (a number, or a fixed-length string of at most max_bytes).
 * Anything else, e.g. an array where a scalar belongs, is exit 2 naming
 * the file and attribute before a byte of it is read into memory sized
 * for one value. */
static hid_t open_scalar_attr(hid_t obj, const char *name, int want_string, size_t max_bytes,
                              size_t *bytes)
{
    hid_t a = open_attr(obj, name);
    hid_t space = H5Aget_space(a), type = H5Aget_type(a);
    const char *bad = NULL;
    if (space < 0 || type < 0)
        bad = "unreadable";
    else if (H5Sget_simple_extent_type(space) != H5S_SCALAR)
        bad = "not a single value (an array or empty)";
    else if (want_string && (H5Tget_class(type) != H5T_STRING || H5Tis_variable_str(type) != 0))
        bad = "not a fixed-length string";
    else if (!want_string && H5Tget_class(type) != H5T_FLOAT && H5Tget_class(type) != H5T_INTEGER)
        bad = "not a number";
    else if (H5Tget_size(type) == 0 || H5Tget_size(type) > max_bytes)
        bad = "of an implausible size";
    if (bytes && !bad)
        *bytes = H5Tget_size(type);
    if (space >= 0)
        H5Sclose(space);
    if (type >= 0)
        H5Tclose(type);
    if (bad) {
        char file[1024];
        file_name(obj, file, sizeof file);
        H5Aclose(a);
        dnal_fatal(DNAL_EXIT_DATA, "%s: attribute %s is %s (damaged or foreign file?)", file,
                   name, bad);
    }
    return a;
}

double h5_get_f64(hid_t obj, const char *name)
{
    double v = 0;
    hid_t a = open_scalar_attr(obj, name, 0, 16, NULL);
    H5_CHECK(H5Aread(a, H5T_NATIVE_DOUBLE, &v));
    H5Aclose(a);
    return v;
}

char *h5_get_str(hid_t obj, const char *name)
{
    size_t n = 0;
    hid_t a = open_scalar_attr(obj, name, 1, H5_ATTR_STR_MAX, &n);
    char *s = dnal_calloc(n + 1);
    hid_t mt = H5Tcopy(H5T_C_S1);
    H5Tset_size(mt, n + 1);
    H5_CHECK(H5Aread(a, mt, s));
    H5Tclose(mt);
    H5Aclose(a);
    return s;
}

int64_t h5_get_count(hid_t f, const char *path, const char *name, double lo, double hi)
{
    double v = h5_get_f64(f, name);
    if (!(v >= lo && v <= hi) || v != (double)(int64_t)v)
        dnal_fatal(DNAL_EXIT_DATA, "%s: attribute %s = %g is not a whole number in [%g, %g]", path,
                   name, v, lo, hi);
    return (int64_t)v;
}

double h5_get_real(hid_t f, const char *path, const char *name, double lo, double hi)
{
    double v = h5_get_f64(f, name);
    if (!(v >= lo && v <= hi))
        dnal_fatal(DNAL_EXIT_DATA, "%s: attribute %s = %g is not in [%g, %g]", path, name, v, lo,
                   hi);
    return v;
}

/* fsync of path (a file, or a folder: its entries) */
static int sync_path(const char *path, int folder)
{
    int fd = open(path, (folder ? O_RDONLY | O_DIRECTORY : O_RDWR) | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int rc = fsync(fd);
    if (rc != 0 && folder && (errno == EINVAL || errno == EROFS))
        rc = 0; /* some file systems cannot sync a folder: nothing more to do */
    close(fd);
    return rc;
}

int io_sync_folder_of(const char *path)
{
    char dir[DNAL_PATH_MAX + 64];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (!slash)
        snprintf(dir, sizeof dir, ".");
    else
        *(slash == dir ? slash + 1 : slash) = '\0';
    return sync_path(dir, 1);
}

void h5_close_atomic(hid_t f, const char *tmp, const char *path)
{
    /* durable before it takes the name, and the name durable before the
     * caller removes what it replaces (a crash leaves the old or the new
     * file whole, never a name on missing blocks) */
    if (H5Fclose(f) < 0 || sync_path(tmp, 0) != 0 || rename(tmp, path) != 0 ||
        io_sync_folder_of(path) != 0)
        dnal_fatal(DNAL_EXIT_DATA, "%s: cannot finish writing (from %s): %s", path, tmp,
                   strerror(errno));
}
