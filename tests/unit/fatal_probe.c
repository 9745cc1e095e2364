/* Fails one checked call on purpose, for tests/cli/test_errors.sh:
 *   fatal_probe dnnl | h5 | mpi | fatal | assert | oom | input | blocked | thread | omp */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <omp.h>
#include <pthread.h>

#include <hdf5.h>
#include <mpi.h>

#include "dnal/core.h"

static void *failing_worker(void *arg)
{
    (void)arg;
    dnal_fatal(DNAL_EXIT_DATA, "worker thread: corrupt record");
}

int main(int argc, char **argv)
{
    const char *what = argc > 1 ? argv[1] : "";
    int provided = 0, size = 1;
    MPI_CHECK(MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided));
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    int rank = 0;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    if (!strcmp(what, "dnnl")) {
        DNNL_CHECK(dnnl_stream_wait(NULL));
    } else if (!strcmp(what, "h5")) {
        dnal_h5_quiet();
        H5_CHECK(H5Fopen("/nonexistent/run.h5", H5F_ACC_RDONLY, H5P_DEFAULT));
    } else if (!strcmp(what, "mpi")) {
        int v = 0;
        MPI_CHECK(MPI_Send(&v, 1, MPI_INT, 99, 0, MPI_COMM_WORLD));
    } else if (!strcmp(what, "fatal") && rank == 1) {
        /* one rank alone fails: the others must not hang in the barrier */
        dnal_fatal(DNAL_EXIT_DATA, "rank %d: corrupt record", rank);
    } else if (!strcmp(what, "assert")) {
        DNAL_ASSERT(rank < 0);
    } else if (!strcmp(what, "oom")) {
        dnal_free(dnal_alloc(SIZE_MAX / 2));
    } else if (!strcmp(what, "input")) { /* a record count read from a corrupt file */
        dnal_free(dnal_alloc_input(SIZE_MAX / 4, 8, 0, "corrupt.idx", "image count"));
    } else if (!strcmp(what, "thread")) {
        /* a worker thread fails while the main thread waits for it (the
         * last rank's; the others wait in the barrier below) */
        pthread_t t;
        if (rank == size - 1 && pthread_create(&t, NULL, failing_worker, NULL) == 0)
            pthread_join(t, NULL);
    } else if (!strcmp(what, "omp")) {
        /* an OpenMP thread fails while the main thread waits at the barrier */
#pragma omp parallel num_threads(2)
        if (rank == size - 1 && omp_get_thread_num() == 1)
            failing_worker(NULL);
    } else if (!strcmp(what, "blocked")) {
        /* a process stuck in I/O that retries on EINTR, as much code does:
         * the stop watchdog (or a second SIGTERM) must still end it */
        int fds[2];
        char c;
        dnal_stop_install();
        if (pipe(fds) != 0)
            return 1;
        printf("blocked\n");
        fflush(stdout);
        while (read(fds[0], &c, 1) != 0) {
        }
    } else if (strcmp(what, "fatal")) {
        fprintf(stderr, "usage: fatal_probe dnnl|h5|mpi|fatal|assert|oom|input|blocked|thread|omp\n");
        return 1;
    }
    MPI_Barrier(MPI_COMM_WORLD);
    MPI_Finalize();
    return 0;
}
