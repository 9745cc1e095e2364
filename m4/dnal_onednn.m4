# DNAL_CHECK_ONEDNN: oneDNN has no pkg-config file; check the header and a symbol.
# --with-onednn=DIR points at a non-system install (DIR/include, DIR/lib or DIR/lib64).
AC_DEFUN([DNAL_CHECK_ONEDNN], [
  AC_ARG_WITH([onednn],
    [AS_HELP_STRING([--with-onednn=DIR], [oneDNN install prefix (default: system)])],
    [], [with_onednn=yes])
  ONEDNN_CPPFLAGS=
  ONEDNN_LDFLAGS=
  AS_IF([test "x$with_onednn" = xno],
        [AC_MSG_ERROR([oneDNN is required; --without-onednn is not supported])])
  AS_IF([test "x$with_onednn" != xyes], [
    ONEDNN_CPPFLAGS="-I$with_onednn/include"
    for d in "$with_onednn/lib64" "$with_onednn/lib"; do
      AS_IF([test -d "$d"], [ONEDNN_LDFLAGS="$ONEDNN_LDFLAGS -L$d -Wl,-rpath,$d"])
    done
  ])
  save_CPPFLAGS=$CPPFLAGS; save_LDFLAGS=$LDFLAGS
  CPPFLAGS="$CPPFLAGS $ONEDNN_CPPFLAGS"; LDFLAGS="$LDFLAGS $ONEDNN_LDFLAGS"
  AC_CHECK_HEADER([oneapi/dnnl/dnnl.h], [],
    [AC_MSG_ERROR([oneDNN header oneapi/dnnl/dnnl.h not found (Debian: libdnnl-dev, or --with-onednn=DIR)])])
  AC_CHECK_LIB([dnnl], [dnnl_engine_create], [ONEDNN_LIBS=-ldnnl],
    [AC_MSG_ERROR([libdnnl with dnnl_engine_create not found (Debian: libdnnl-dev, or --with-onednn=DIR)])])
  AC_MSG_CHECKING([for oneDNN 2.x C API (dnnl_convolution_forward_desc_init)])
  AC_COMPILE_IFELSE([AC_LANG_PROGRAM([[#include <oneapi/dnnl/dnnl.h>]],
                    [[dnnl_convolution_desc_t d; (void)dnnl_convolution_forward_desc_init(&d,
                      dnnl_forward_training, dnnl_convolution_direct, 0, 0, 0, 0, 0, 0, 0);]])],
    [AC_MSG_RESULT([yes])],
    [AC_MSG_RESULT([no])
     AC_MSG_ERROR([oneDNN 2.x is required (src/core/onednn_desc.c holds the 2.x descriptor calls)])])
  CPPFLAGS=$save_CPPFLAGS; LDFLAGS=$save_LDFLAGS
  AC_SUBST([ONEDNN_CPPFLAGS])
  AC_SUBST([ONEDNN_LDFLAGS])
  AC_SUBST([ONEDNN_LIBS])
])
