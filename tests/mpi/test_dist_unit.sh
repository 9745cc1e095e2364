#!/bin/sh
# Runs the src/dist unit test (TAP) on 2 ranks. $DIST_TEST is the program.
. "$(dirname "$0")/../mpi.sh"
export OMP_NUM_THREADS=1
mpi_run 2 "${DIST_TEST:-./tests/mpi/test_dist}"
