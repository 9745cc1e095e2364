#!/bin/sh
# Runs the src/dist unit test (TAP) on 2 ranks. $DIST_TEST is the program.
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=1
exec mpirun -np 2 --oversubscribe "${DIST_TEST:-./tests/mpi/test_dist}"
