# Sourced by the shell tests that start ranks: mpi_run N CMD [ARGS...] runs N
# ranks of CMD under the MPI the suite was built with (MPIEXEC, default
# mpiexec: Open MPI's, or MPICH's mpiexec.mpich for tests/run.sh --mpi=mpich).
# Settings for the ranks go through the command (env VAR=VALUE CMD), which
# both Open MPI and MPICH pass on, never through Open MPI's -x.
MPIEXEC=${MPIEXEC:-mpiexec}
# Open MPI refuses root unless told, and counts only cores as slots; MPICH
# needs neither
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
case "$("$MPIEXEC" --version 2>&1)" in
*"Open MPI"* | *OpenRTE*) mpi_flavour=openmpi mpi_opts="--oversubscribe --bind-to none" ;;
*) mpi_flavour=mpich mpi_opts="" ;;
esac
# shellcheck disable=SC2086
mpi_run() { mpi_n=$1; shift; "$MPIEXEC" -n "$mpi_n" $mpi_opts "$@"; }
