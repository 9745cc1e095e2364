/* A folder of checkpoints: the step checkpoints' names, keeping the newest
 * of this run's (the run id each checkpoint stores), finding the newest
 * checkpoint of one run to resume from, and refusing a folder that holds
 * another run's. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "dnal/io.h"
#include "h5util.h"

typedef struct peeked {
    double step;
    int stages_done;
    char run_id[DNAL_RUN_ID_LEN];   /* "" for checkpoints from before run ids */
    struct timespec mtime;
} peeked;

/* 1 and what the checkpoint says if path is a readable dnal checkpoint,
 * else 0 (quietly: other files may share the folder) */
static int peek(const char *path, peeked *p)
{
    struct stat st;
    if (stat(path, &st) != 0 || !S_ISREG(st.st_mode))
        return 0;
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
        p->step = h5_get_f64(f, "step");
        char *done = h5_get_str(f, "done");
        p->stages_done = done[0] != '\0';
        for (const char *c = done; *c; c++)
            p->stages_done += *c == ',';
        free(done);
        p->run_id[0] = '\0';
        if (H5Aexists(f, "run_id") > 0) {
            char *id = h5_get_str(f, "run_id");
            snprintf(p->run_id, sizeof p->run_id, "%s", id);
            free(id);
        }
        p->mtime = st.st_mtim;
    }
    H5Fclose(f);
    return ok;
}

static int later(struct timespec a, struct timespec b)
{
    return a.tv_sec != b.tv_sec ? a.tv_sec > b.tv_sec : a.tv_nsec > b.tv_nsec;
}

static int is_candidate(const char *name)
{
    size_t n = strlen(name);
    return n >= 4 && !strcmp(name + n - 3, ".h5") && strcmp(name, "model.h5");
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
    /* the run whose checkpoint was written last, then its newest checkpoint */
    char newest_run[DNAL_RUN_ID_LEN] = "";
    struct timespec newest = {0, 0};
    int found = 0, runs = 0;
    char seen[8][DNAL_RUN_ID_LEN];
    for (int pass = 0; pass < 2; pass++) {
        DIR *d = opendir(arg);
        double best_step = -1;
        int best_done = -1;
        for (struct dirent *e; d && (e = readdir(d));) {
            if (!is_candidate(e->d_name))
                continue;
            char path[DNAL_PATH_MAX + 300];
            snprintf(path, sizeof path, "%s/%s", arg, e->d_name);
            peeked p;
            if (!peek(path, &p))
                continue;
            if (pass == 0) {
                int known = 0;
                for (int k = 0; k < runs && k < 8; k++)
                    known |= !strcmp(seen[k], p.run_id);
                if (!known && runs < 8)
                    snprintf(seen[runs++], DNAL_RUN_ID_LEN, "%s", p.run_id);
                if (!found || later(p.mtime, newest)) {
                    newest = p.mtime;
                    snprintf(newest_run, sizeof newest_run, "%s", p.run_id);
                }
                found = 1;
            } else if (!strcmp(p.run_id, newest_run) &&
                       (p.step > best_step || (p.step == best_step && p.stages_done > best_done))) {
                best_step = p.step;
                best_done = p.stages_done;
                snprintf(out, len, "%s", path);
            }
        }
        if (d)
            closedir(d);
        if (!found)
            break;
    }
    if (!found) {
        fprintf(stderr, "dnal: error: --resume %s: no dnal checkpoint in the folder\n", arg);
        return DNAL_EXIT_DATA;
    }
    if (runs > 1)
        fprintf(stderr, "dnal: note: --resume %s: the folder holds checkpoints of %d runs; "
                "continuing run %s (written last) from %s\n", arg, runs,
                newest_run[0] ? newest_run : "(no id)", out);
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

void dnal_checkpoint_keep_newest(const char *dir, int64_t keep, const char *run_id)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    long long steps[4096];
    int n = 0;
    for (struct dirent *e; (e = readdir(d)) && n < 4096;) {
        char path[DNAL_PATH_MAX + 300];
        peeked p;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        /* only this run's: another run's checkpoints are not ours to remove */
        if (is_step_checkpoint(e->d_name, &steps[n]) && peek(path, &p) &&
            !strcmp(p.run_id, run_id))
            n++;
    }
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

int dnal_checkpoint_dir_foreign(const char *dir, const char *run_id, char *example, size_t len)
{
    DIR *d = opendir(dir);
    int foreign = 0;
    for (struct dirent *e; d && !foreign && (e = readdir(d));) {
        if (!is_candidate(e->d_name))
            continue;
        char path[DNAL_PATH_MAX + 300];
        peeked p;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        if (peek(path, &p) && strcmp(p.run_id, run_id)) {
            foreign = 1;
            snprintf(example, len, "%s", path);
        }
    }
    if (d)
        closedir(d);
    return foreign;
}

void dnal_run_id_new(char out[DNAL_RUN_ID_LEN])
{
    unsigned char r[8] = {0};
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    if (getrandom(r, sizeof r, GRND_NONBLOCK) != (ssize_t)sizeof r) { /* rare: mix what is there */
        unsigned long long x = (unsigned long long)t.tv_nsec ^ ((unsigned long long)getpid() << 32);
        memcpy(r, &x, sizeof r);
    }
    struct tm tm;
    gmtime_r(&t.tv_sec, &tm);
    int n = (int)strftime(out, DNAL_RUN_ID_LEN, "%Y%m%dT%H%M%SZ-", &tm);
    for (int i = 0; i < 4; i++)
        n += snprintf(out + n, (size_t)(DNAL_RUN_ID_LEN - n), "%02x", r[i]);
}
