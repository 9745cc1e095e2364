/* What the libFuzzer harnesses share (tests/fuzz/run.sh builds them with
 * clang, ASan and UBSan; tests/fuzz/replay.c replays their seed corpora in
 * make check with any compiler). A reader's fatal error (exit 2 with a
 * message) is the right answer to a bad input: the harness takes it back
 * through dnal_set_fatal_hook and a longjmp, so only a crash, a sanitizer
 * report, a hang or an allocation beyond libFuzzer's limits is a finding.
 * Memory a fatal error leaves behind is not freed (run with
 * detect_leaks=0). */
#ifndef DNAL_TESTS_FUZZ_H
#define DNAL_TESTS_FUZZ_H

#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dnal/core.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static jmp_buf fuzz_jump;
static char fuzz_dir[512];

static void fuzz_on_fatal(int code)
{
    (void)code;
    longjmp(fuzz_jump, 1);
}

/* once per process: the hook and a scratch folder (run.sh passes
 * -close_fd_mask=2: the readers' messages are not printed while fuzzing) */
static void fuzz_init(void)
{
    if (fuzz_dir[0])
        return;
    dnal_set_fatal_hook(fuzz_on_fatal);
    const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    snprintf(fuzz_dir, sizeof fuzz_dir, "%s/dnal-fuzz-XXXXXX", base);
    if (!mkdtemp(fuzz_dir))
        abort();
}

/* The lowest free descriptor: what a reader opened from here on and a
 * fatal error left open is closed by fuzz_close_from (the process would
 * have ended; the fuzzer goes on, and must not run out of descriptors). */
__attribute__((unused)) static int fuzz_fd_base(void)
{
    int fd = dup(0);
    if (fd >= 0)
        close(fd);
    return fd;
}

__attribute__((unused)) static void fuzz_close_from(int base)
{
    for (int fd = base; base >= 0 && fd < base + 64; fd++)
        close(fd);
}

/* fuzz_dir/name holds exactly the n bytes d (returns the path) */
__attribute__((unused)) static const char *fuzz_write(const char *name, const uint8_t *d, size_t n)
{
    static char path[1024];
    snprintf(path, sizeof path, "%s/%s", fuzz_dir, name);
    FILE *f = fopen(path, "wb");
    if (!f || (n && fwrite(d, 1, n, f) != n) || fclose(f))
        abort();
    return path;
}

#endif
