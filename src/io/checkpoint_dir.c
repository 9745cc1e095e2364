/* A folder of checkpoints: the step checkpoints' names, keeping the newest
 * of them, and finding the newest checkpoint to resume from. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "dnal/io.h"
#include "h5util.h"

/* 1 and the checkpoint's step and count of stages done if path is a
 * readable dnal checkpoint, else 0 (quietly: other files may share the
 * folder) */
static int peek(const char *path, double *step, int *stages_done)
{
    dnal_h5_quiet();
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0)
        return 0;
    int ok = H5Aexists(f, "format") > 0 && H5Aexists(f, "step") > 0 && H5Aexists(f, "done") > 0;
    if (ok) {
        char *format = h5_get_str(f, "format");
        ok = !strcmp(format, "dnal-checkpoint");
        free(format);
    }
    if (ok) {
        *step = h5_get_f64(f, "step");
        char *done = h5_get_str(f, "done");
        *stages_done = done[0] != '\0';
        for (const char *p = done; *p; p++)
            *stages_done += *p == ',';
        free(done);
    }
    H5Fclose(f);
    return ok;
}

int dnal_checkpoint_find(const char *arg, char *out, size_t len)
{
    struct stat st;
    if (stat(arg, &st) != 0) {
        fprintf(stderr, "dnal: error: --resume %s: %s\n", arg, strerror(errno));
        return DNAL_EXIT_DATA;
    }
    if (!S_ISDIR(st.st_mode)) {
        snprintf(out, len, "%s", arg);
        return 0;
    }
    DIR *d = opendir(arg);
    double best_step = -1;
    int best_done = -1;
    out[0] = '\0';
    for (struct dirent *e; d && (e = readdir(d));) {
        size_t n = strlen(e->d_name);
        if (n < 4 || strcmp(e->d_name + n - 3, ".h5") || !strcmp(e->d_name, "model.h5"))
            continue;
        char path[DNAL_PATH_MAX + 300];
        snprintf(path, sizeof path, "%s/%s", arg, e->d_name);
        double step;
        int done;
        if (peek(path, &step, &done) &&
            (step > best_step || (step == best_step && done > best_done))) {
            best_step = step;
            best_done = done;
            snprintf(out, len, "%s", path);
        }
    }
    if (d)
        closedir(d);
    if (!out[0]) {
        fprintf(stderr, "dnal: error: --resume %s: no dnal checkpoint in the folder\n", arg);
        return DNAL_EXIT_DATA;
    }
    return 0;
}

void dnal_checkpoint_step_path(char *out, size_t len, const char *dir, int64_t step)
{
    snprintf(out, len, "%s/step-%08lld.h5", dir, (long long)step);
}

static int is_step_checkpoint(const char *name, long long *step)
{
    int end = 0;
    return sscanf(name, "step-%lld.h5%n", step, &end) == 1 && name[end] == '\0';
}

void dnal_checkpoint_keep_newest(const char *dir, int64_t keep)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    long long steps[4096];
    int n = 0;
    for (struct dirent *e; (e = readdir(d)) && n < 4096;)
        if (is_step_checkpoint(e->d_name, &steps[n]))
            n++;
    closedir(d);
    for (int i = 0; i < n; i++) {
        int newer = 0;
        for (int j = 0; j < n; j++)
            newer += steps[j] > steps[i];
        if (newer >= keep) {
            char path[DNAL_PATH_MAX + 64];
            dnal_checkpoint_step_path(path, sizeof path, dir, steps[i]);
            remove(path);
        }
    }
}
