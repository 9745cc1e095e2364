/* Replays files through a harness's LLVMFuzzerTestOneInput without
 * libFuzzer, so that make check runs the committed seed corpora with the
 * build's own compiler (gcc):
 *   replay_X FILE_OR_FOLDER...      TAP: one line per folder or file */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int replay_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return 0;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *buf = malloc((size_t)(n > 0 ? n : 1));
    size_t got = n > 0 ? fread(buf, 1, (size_t)n, f) : 0;
    fclose(f);
    LLVMFuzzerTestOneInput(buf, got);
    free(buf);
    return 1;
}

int main(int argc, char **argv)
{
    int tests = 0;
#ifdef CORPUS_DIR
    char *seeds[] = {argv[0], CORPUS_DIR};
    if (argc < 2) { /* make check: the committed seeds */
        argc = 2;
        argv = seeds;
    }
#endif
    for (int i = 1; i < argc; i++) {
        struct stat st;
        int count = 0;
        if (stat(argv[i], &st) == 0 && S_ISDIR(st.st_mode)) {
            DIR *d = opendir(argv[i]);
            for (struct dirent *e; d && (e = readdir(d));) {
                char path[4096];
                if (e->d_name[0] == '.')
                    continue;
                snprintf(path, sizeof path, "%s/%s", argv[i], e->d_name);
                count += replay_file(path);
            }
            if (d)
                closedir(d);
        } else {
            count = replay_file(argv[i]);
        }
        printf("%s %d - %s: %d inputs replayed without a crash\n", count ? "ok" : "not ok",
               ++tests, argv[i], count);
        fflush(stdout);
    }
    printf("1..%d\n", tests);
    return 0;
}
