/* Fatal errors and the checked calls of oneDNN, MPI and HDF5.
 *
 * A run is a set of MPI ranks: a rank that stops alone leaves the others
 * waiting forever in the next collective, so inside a multi-rank run every
 * fatal error goes through MPI_Abort, which ends all ranks with the code.
 *
 * MPI is initialised at MPI_THREAD_FUNNELED: only the main thread may call
 * it. A fatal error in another thread (a loader worker, an OpenMP thread)
 * prints its message there and hands the ending to the main thread with
 * SIGUSR2, then waits; the main thread, wherever it is (in a join, a
 * barrier, a collective), ends the process with the worker's code. */
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <hdf5.h>
#include <mpi.h>

#include "dnal/core.h"

_Noreturn void dnal_exit_all(int code)
{
    int inited = 0, finalized = 0;
    fflush(stdout);
    fflush(stderr);
    MPI_Initialized(&inited);
    MPI_Finalized(&finalized);
    if (inited && !finalized)
        MPI_Finalize();
    exit(code);
}

static pthread_t main_thread;
static volatile sig_atomic_t handed_code;

__attribute__((constructor)) static void remember_main_thread(void)
{
    main_thread = pthread_self();
}

static void end_on_main(int code);

/* on the main thread: a worker's fatal error ends the process */
static void on_handoff(int sig)
{
    (void)sig;
    end_on_main(handed_code);
}

static _Noreturn void hand_to_main(int code)
{
    static volatile sig_atomic_t once;
    if (!once++) {
        handed_code = code;
        struct sigaction sa = {.sa_handler = on_handoff};
        sigemptyset(&sa.sa_mask);
        sigaction(SIGUSR2, &sa, NULL);
        pthread_kill(main_thread, SIGUSR2);
    }
    for (;;) /* the main thread ends the process */
        pause();
}

static void end_on_main(int code)
{
    int inited = 0, finalized = 0, size = 1;
    MPI_Initialized(&inited);
    MPI_Finalized(&finalized);
    if (inited && !finalized)
        MPI_Comm_size(MPI_COMM_WORLD, &size);
    if (size > 1) {
        usleep(200000); /* let the launcher forward the message first */
        MPI_Abort(MPI_COMM_WORLD, code);
    }
    _exit(code); /* streams were flushed by the worker's report */
}

static dnal_fatal_hook_fn fatal_hook;

void dnal_set_fatal_hook(dnal_fatal_hook_fn hook)
{
    fatal_hook = hook;
}

static _Noreturn void end_process(int code)
{
    if (fatal_hook)
        fatal_hook(code); /* a fuzzing harness: does not return */
    if (!pthread_equal(pthread_self(), main_thread))
        hand_to_main(code);
    int inited = 0, finalized = 0, size = 1;
    MPI_Initialized(&inited);
    MPI_Finalized(&finalized);
    if (inited && !finalized) {
        MPI_Comm_size(MPI_COMM_WORLD, &size);
        if (size > 1) {
            fflush(stdout);
            fflush(stderr);
            usleep(200000); /* let the launcher forward the message first */
            MPI_Abort(MPI_COMM_WORLD, code);
        }
        MPI_Finalize();
    }
    exit(code);
}

/* One write for the whole line: under mpirun a rank's output travels through
 * a pipe that MPI_Abort may close between two writes. */
static void vreport(const char *file, int line, const char *fmt, va_list ap)
{
    char msg[4096];
    int n = file ? snprintf(msg, sizeof msg, "dnal: error: %s:%d: ", file, line)
                 : snprintf(msg, sizeof msg, "dnal: error: ");
    vsnprintf(msg + n, sizeof msg - (size_t)n - 1, fmt, ap);
    size_t len = strlen(msg);
    msg[len] = '\n';
    fflush(stdout);
    fwrite(msg, 1, len + 1, stderr);
    fflush(stderr);
}

void dnal_fatal(int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vreport(NULL, 0, fmt, ap);
    va_end(ap);
    end_process(code);
}

void dnal_fatal_at(int code, const char *file, int line, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vreport(file, line, fmt, ap);
    va_end(ap);
    end_process(code);
}

const char *dnal_dnnl_status_str(int status)
{
    switch ((dnnl_status_t)status) {
    case dnnl_success: return "success";
    case dnnl_out_of_memory: return "out of memory";
    case dnnl_invalid_arguments: return "invalid arguments";
    case dnnl_unimplemented: return "unimplemented (no implementation for these shapes/layouts)";
    case dnnl_iterator_ends: return "iterator ends";
    case dnnl_runtime_error: return "runtime error";
    case dnnl_not_required: return "not required";
    default: return "unknown status";
    }
}

void dnal_dnnl_failed(int status, const char *call, const char *file, int line)
{
    dnal_fatal_at(DNAL_EXIT_SOFTWARE, file, line, "oneDNN: %s: %s", call,
                  dnal_dnnl_status_str(status));
}

void dnal_mpi_failed(int err, const char *call, const char *file, int line)
{
    char msg[MPI_MAX_ERROR_STRING] = "unknown MPI error";
    int len = 0;
    MPI_Error_string(err, msg, &len);
    dnal_fatal_at(DNAL_EXIT_SOFTWARE, file, line, "MPI: %s: %s", call, msg);
}

/* Collects the innermost HDF5 error description (the most specific one). */
static herr_t h5_last_error(unsigned n, const H5E_error2_t *e, void *data)
{
    char *out = data;
    if (n == 0)
        snprintf(out, 512, "%s (in %s)", e->desc ? e->desc : "?", e->func_name ? e->func_name : "?");
    return 0;
}

void dnal_h5_failed(const char *call, const char *file, int line)
{
    char msg[512] = "no HDF5 error message";
    H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, h5_last_error, msg);
    H5Eclear2(H5E_DEFAULT);
    dnal_fatal_at(DNAL_EXIT_DATA, file, line, "HDF5: %s: %s", call, msg);
}

void dnal_h5_quiet(void)
{
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
}
