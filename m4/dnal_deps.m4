# DNAL_CHECK_DEP: find one library that clusters often provide without a
# pkg-config file (`module load hdf5` sets PATH and LD_LIBRARY_PATH, rarely
# PKG_CONFIG_PATH). In order:
#   1. --with-OPT=DIR: DIR/include, DIR/lib64 and DIR/lib (with an rpath);
#   2. VAR_CFLAGS / VAR_LIBS given on the configure line, or pkg-config MODULE;
#   3. the library's own tool (TOOL_CODE: shell code that sets VAR_CFLAGS and
#      VAR_LIBS and dnal_dep_found=yes: h5cc -show, gsl-config);
#   4. the compiler's default paths with LIBS_DEFAULT (as AC_SEARCH_LIBS would).
# Whatever was found must compile HEADER and link FUNCTION, else configure
# stops naming the option that points at the library.
#
# DNAL_CHECK_DEP(VAR, OPT, MODULE, HEADER, FUNCTION, LIBS_DEFAULT, WHAT, DEBIAN, [TOOL_CODE])
AC_DEFUN([DNAL_CHECK_DEP], [
  AC_ARG_WITH([$2],
    [AS_HELP_STRING([--with-$2=DIR], [$7 install prefix (DIR/include, DIR/lib); default: pkg-config $3, then the default paths])],
    [], [with_[]m4_translit([$2], [-], [_])=yes])
  AC_ARG_VAR([$1_CFLAGS], [C compiler flags for $7, overriding pkg-config])
  AC_ARG_VAR([$1_LIBS], [linker flags for $7, overriding pkg-config])
  dnal_dep_found=no
  dnal_dep_how=
  dnal_dep_tried=
  AS_IF([test "x$with_[]m4_translit([$2], [-], [_])" = xno],
        [AC_MSG_ERROR([$7 is required; --without-$2 is not supported])])
  AS_IF([test "x$with_[]m4_translit([$2], [-], [_])" != xyes], [
    AS_IF([test -f "$with_[]m4_translit([$2], [-], [_])/include/$4"], [],
          [AC_MSG_ERROR([$7 not found: --with-$2=$with_[]m4_translit([$2], [-], [_]) has no include/$4; --with-$2=DIR takes the prefix that holds include/$4 and lib/ (often the module's root, see module show)])])
    $1_CFLAGS="-I$with_[]m4_translit([$2], [-], [_])/include"
    $1_LIBS=
    for dnal_dep_dir in "$with_[]m4_translit([$2], [-], [_])/lib64" "$with_[]m4_translit([$2], [-], [_])/lib"; do
      AS_IF([test -d "$dnal_dep_dir"],
            [$1_LIBS="$$1_LIBS -L$dnal_dep_dir -Wl,-rpath,$dnal_dep_dir"])
    done
    $1_LIBS="$$1_LIBS $6"
    dnal_dep_found=yes
    dnal_dep_how="--with-$2=$with_[]m4_translit([$2], [-], [_])"
  ])
  AS_IF([test $dnal_dep_found = no && test -n "$$1_CFLAGS$$1_LIBS"],
        [dnal_dep_found=yes; dnal_dep_how="$1_CFLAGS/$1_LIBS"])
  AS_IF([test $dnal_dep_found = no && test -n "$PKG_CONFIG"], [
    AC_MSG_CHECKING([for pkg-config module $3])
    AS_IF([$PKG_CONFIG --exists "$3" 2>/dev/null], [
      $1_CFLAGS=`$PKG_CONFIG --cflags "$3"`
      $1_LIBS=`$PKG_CONFIG --libs "$3"`
      dnal_dep_found=yes
      dnal_dep_how="pkg-config $3"
      DNAL_PC_REQUIRES="$DNAL_PC_REQUIRES $3"
      AC_MSG_RESULT([yes])
    ], [AC_MSG_RESULT([no]); dnal_dep_tried="no pkg-config module $3, "])
  ])
  m4_ifval([$9], [AS_IF([test $dnal_dep_found = no], [$9
    AS_IF([test $dnal_dep_found = no], [dnal_dep_tried="${dnal_dep_tried}no usable $dnal_dep_tool, "])])])
  AS_IF([test $dnal_dep_found = no], [
    $1_CFLAGS=
    $1_LIBS="$6"
    dnal_dep_how="the default paths"
  ])
  AS_CASE([$dnal_dep_how], [pkg-config*], [], [DNAL_PC_LIBS="$DNAL_PC_LIBS $$1_LIBS"])
  AC_MSG_CHECKING([whether $7 compiles and links ($dnal_dep_how)])
  dnal_dep_save_CPPFLAGS=$CPPFLAGS; dnal_dep_save_LIBS=$LIBS
  CPPFLAGS="$CPPFLAGS $$1_CFLAGS"; LIBS="$$1_LIBS $LIBS"
  AC_LINK_IFELSE([AC_LANG_PROGRAM([[#include <stdio.h>
#include <$4>]], [[(void)&$5;]])],
    [AC_MSG_RESULT([yes])],
    [AC_MSG_RESULT([no])
     AC_MSG_ERROR([$7 not found or not linkable ($4, $5; ${dnal_dep_tried}then $dnal_dep_how). Point configure at it with --with-$2=DIR (DIR/include/$4 and DIR/lib), or set $1_CFLAGS and $1_LIBS, or add its pkg-config folder to PKG_CONFIG_PATH (Debian: $8)])])
  CPPFLAGS=$dnal_dep_save_CPPFLAGS; LIBS=$dnal_dep_save_LIBS
  AC_SUBST([$1_CFLAGS])
  AC_SUBST([$1_LIBS])
])

# DNAL_H5CC_FLAGS: HDF5's flags from its compiler wrapper (`h5cc -show -shlib`
# prints the compile command: keep -I/-D for the compiler and -L/-l/-Wl and
# library files for the linker, drop the compiler itself). H5CC=... picks
# another wrapper (h5pcc), H5CC=no skips this step.
AC_DEFUN([DNAL_H5CC_FLAGS], [
  AC_ARG_VAR([H5CC], [HDF5 compiler wrapper whose -show gives HDF5's flags (default: h5cc; no: skip)])
  AS_IF([test "x$H5CC" != xno], [AC_PATH_PROGS([H5CC], [h5cc], [no])])
  dnal_dep_tool="h5cc (H5CC)"
  AS_IF([test "x$H5CC" != xno && test -x "$H5CC"], [
    AC_MSG_CHECKING([for HDF5 flags from $H5CC -show -shlib])
    dnal_h5_show=`"$H5CC" -show -shlib 2>/dev/null || "$H5CC" -show 2>/dev/null`
    HDF5_CFLAGS=; HDF5_LIBS=
    for dnal_h5_word in $dnal_h5_show; do
      AS_CASE([$dnal_h5_word],
        [-I*|-D*], [HDF5_CFLAGS="$HDF5_CFLAGS $dnal_h5_word"],
        [-L*|-l*|-Wl,*|-pthread|*.so|*.so.*|*.a], [HDF5_LIBS="$HDF5_LIBS $dnal_h5_word"])
    done
    dnal_h5_rpaths=`for w in $HDF5_LIBS; do echo "$w"; done | sed -n 's/^-L\(.*\)/-Wl,-rpath,\1/p'`
    HDF5_LIBS="$HDF5_LIBS "`echo $dnal_h5_rpaths`
    AS_IF([test -n "$HDF5_LIBS"],
          [dnal_dep_found=yes; dnal_dep_how="$H5CC -show"; AC_MSG_RESULT([$HDF5_CFLAGS $HDF5_LIBS])],
          [AC_MSG_RESULT([none])])
  ])
])

# DNAL_GSL_CONFIG_FLAGS: GSL's flags from gsl-config (GSL_CONFIG=... another one,
# GSL_CONFIG=no skips it).
AC_DEFUN([DNAL_GSL_CONFIG_FLAGS], [
  AC_ARG_VAR([GSL_CONFIG], [GSL's gsl-config (default: on PATH; no: skip)])
  AS_IF([test "x$GSL_CONFIG" != xno], [AC_PATH_PROGS([GSL_CONFIG], [gsl-config], [no])])
  dnal_dep_tool="gsl-config (GSL_CONFIG)"
  AS_IF([test "x$GSL_CONFIG" != xno && test -x "$GSL_CONFIG"], [
    AC_MSG_CHECKING([for GSL flags from $GSL_CONFIG])
    GSL_CFLAGS=`"$GSL_CONFIG" --cflags`
    GSL_LIBS=`"$GSL_CONFIG" --libs`
    dnal_dep_found=yes
    dnal_dep_how="$GSL_CONFIG"
    AC_MSG_RESULT([$GSL_CFLAGS $GSL_LIBS])
  ])
])
