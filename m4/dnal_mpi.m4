# DNAL_PROG_MPICC: use the MPI compiler wrapper as CC; fail loudly without one.
# Must run before AC_PROG_CC. MPICC=... or CC=... on the configure line picks
# the wrapper (CC=mpicc.mpich, CC=mpiicc, CC=cc on a Cray); DNAL_CHECK_MPI then
# checks that it links MPI programs.
AC_DEFUN([DNAL_PROG_MPICC], [
  AC_ARG_VAR([MPICC], [MPI C compiler wrapper (default: CC if given, else mpicc)])
  AS_IF([test -z "$MPICC" && test -n "$CC"], [MPICC=$CC])
  AC_CHECK_PROGS([MPICC], [mpicc mpigcc mpiicc], [none])
  AS_IF([test "x$MPICC" = xnone],
        [AC_MSG_ERROR([no MPI C compiler (mpicc) found: load an MPI (module load openmpi, mpich, ...) or pass CC=/path/to/mpicc (Debian: libopenmpi-dev openmpi-bin)])])
  CC="$MPICC"
])

# DNAL_CHECK_MPI: the wrapper must actually link an MPI program.
AC_DEFUN([DNAL_CHECK_MPI], [
  AC_MSG_CHECKING([whether $CC links MPI programs])
  AC_LINK_IFELSE([AC_LANG_PROGRAM([[#include <mpi.h>]],
                                  [[MPI_Init(0, 0); MPI_Finalize();]])],
                 [AC_MSG_RESULT([yes])],
                 [AC_MSG_RESULT([no])
                  AC_MSG_ERROR([$CC cannot compile and link an MPI program (mpi.h, MPI_Init): pass the MPI compiler wrapper as CC=/path/to/mpicc])])
])

# DNAL_PROG_MPIEXEC: the launcher of the MPI that CC compiles for, for the
# tests (MPIEXEC=... picks another): mpicc.SUFFIX -> mpiexec.SUFFIX (Debian's
# mpicc.mpich beside Open MPI's mpicc), else the mpiexec beside CC, else the
# one on PATH.
AC_DEFUN([DNAL_PROG_MPIEXEC], [
  AC_ARG_VAR([MPIEXEC], [MPI launcher for the tests (default: the one that belongs to CC)])
  AS_IF([test -z "$MPIEXEC"], [
    dnal_cc_path=`command -v $CC 2>/dev/null`
    dnal_cc_dir=`dirname "$dnal_cc_path"`
    dnal_cc_base=`basename "$dnal_cc_path"`
    AS_CASE([$dnal_cc_base], [mpicc.*], [dnal_try="$dnal_cc_dir/mpiexec.${dnal_cc_base@%:@mpicc.}"], [dnal_try=])
    AS_IF([test -n "$dnal_try" && test -x "$dnal_try"], [MPIEXEC=$dnal_try],
          [test -x "$dnal_cc_dir/mpiexec"], [MPIEXEC="$dnal_cc_dir/mpiexec"],
          [MPIEXEC=mpiexec])
  ])
  AC_MSG_CHECKING([for the MPI launcher of $CC])
  AC_MSG_RESULT([$MPIEXEC])
])
