#!/bin/sh
# Builds dnal; installs what is missing only where it can.
#   jobs/setup.sh [--check] [BUILDDIR [CONFIGURE_ARGS...]]     (default: build)
# As root on Debian or Ubuntu it apt-gets the missing packages (the build's,
# the tests', SLURM and the Fashion-MNIST dataset). Anywhere else (a cluster's
# login node, no root) it installs nothing: it checks only what the build
# needs (an MPI compiler wrapper with OpenMP, autotools when configure is not
# generated, oneDNN, HDF5, GSL, libjpeg, zlib, libinih, protobuf-c), with the
# CONFIGURE_ARGS given (CC=..., --with-NAME=DIR, NAME_CFLAGS/NAME_LIBS), and
# names for each missing piece the option or variable that points at it.
# --check stops after the checks. The build's output goes to BUILDDIR/build.log;
# exit 0 when built (or, with --check, when nothing is missing), 1 otherwise.
set -u
cd "$(dirname "$0")/.." || exit 1
top=$(pwd)
check_only=0
[ "${1:-}" = --check ] && { check_only=1; shift; }
builddir=${1:-build}
[ $# -gt 0 ] && shift

debian_root() {
    [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1 &&
        command -v dpkg-query >/dev/null 2>&1 && [ -r /etc/os-release ] &&
        grep -qE '^(ID|ID_LIKE)=.*(debian|ubuntu)' /etc/os-release
}

install_debian() {
    packages="build-essential autoconf automake libtool pkg-config openmpi-bin libopenmpi-dev
      libdnnl-dev libhdf5-dev hdf5-tools libgsl-dev libjpeg62-turbo-dev libinih-dev
      dataset-fashion-mnist python3-h5py python3-numpy python3-matplotlib python3-pytest
      slurm-wlm munge libprotobuf-c-dev protobuf-c-compiler python3-onnx"
    # ONNX Runtime for the ONNX tests: npm's onnxruntime-node (Debian's npm
    # only where no other node.js brought its own npm)
    command -v npm >/dev/null 2>&1 || packages="$packages npm"
    missing=""
    for p in $packages; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
    done
    if [ -n "$missing" ]; then
        echo "jobs/setup.sh: installing$missing"
        apt-get update -qq >/dev/null &&
            DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null ||
            { echo "jobs/setup.sh: apt-get install failed" >&2; return 1; }
    fi
    ort=${DNAL_ORT_DIR:-${HOME:-/tmp}/.cache/dnal-ort} # where tests/cli/test_onnx.sh looks
    if [ ! -d "$ort/node_modules/onnxruntime-node" ] && command -v npm >/dev/null 2>&1; then
        echo "jobs/setup.sh: npm install --ignore-scripts onnxruntime-node into $ort"
        mkdir -p "$ort" && (cd "$ort" && npm install --ignore-scripts --no-audit --no-fund \
            onnxruntime-node >npm.log 2>&1) ||
            echo "jobs/setup.sh: npm install onnxruntime-node failed ($ort/npm.log): the ONNX Runtime tests will be skipped" >&2
    fi
    return 0
}

# ---- the checks without a package manager: the same sources configure uses
# (m4/dnal_deps.m4), so what passes here passes there
arg_value() { # NAME: the value of NAME=... or --with-NAME=... among the configure args, else empty
    v=""
    for a in $configure_args; do
        case "$a" in "$1="*) v=${a#"$1="} ;; esac
    done
    echo "$v"
}
missing=0
need() { # WHAT FIX...
    what=$1; shift
    echo "jobs/setup.sh: missing $what: $*" >&2
    missing=$((missing + 1))
}
links() { # HEADER FUNCTION CFLAGS LIBS: the MPI compiler compiles and links a use of FUNCTION
    printf '#include <stdio.h>\n#include <%s>\nint main(void) { return (int)(long)&%s; }\n' "$1" "$2" >"$tmp/t.c"
    # shellcheck disable=SC2086
    "$cc" ${CPPFLAGS:-} $3 "$tmp/t.c" -o "$tmp/t" ${LDFLAGS:-} $4 >/dev/null 2>&1
}
check_lib() { # NAME PKG HEADER FUNCTION DEFAULT_LIBS WHAT TOOL TOOL_VARIABLE DEBIAN_PACKAGE
    name=$1 var=$(echo "$1" | tr a-z- A-Z_)
    dir=$(arg_value "--with-$1")
    cflags=$(arg_value "${var}_CFLAGS") libs=$(arg_value "${var}_LIBS")
    [ -n "$cflags$libs" ] || { eval "cflags=\${${var}_CFLAGS:-}; libs=\${${var}_LIBS:-}"; }
    if [ -n "$dir" ]; then
        [ -f "$dir/include/$3" ] && return 0
        need "$6" "--with-$name=$dir has no include/$3; give the prefix that holds include/$3 and lib/"
        return
    fi
    [ -n "$cflags$libs" ] && return 0
    if [ -n "$pkgconfig" ] && "$pkgconfig" --exists "$2" 2>/dev/null; then return 0; fi
    if [ -n "$7" ] && [ "$(eval "echo \${$8:-}")" != no ] && command -v "$7" >/dev/null 2>&1; then return 0; fi
    links "$3" "$4" "" "$5" && return 0
    need "$6" "configure --with-$name=DIR (the prefix with include/$3 and lib/), or" \
        "${var}_CFLAGS=... ${var}_LIBS=..., or its pkg-config folder on PKG_CONFIG_PATH" \
        "(module load $name, or Debian's $9)"
}

check_build_needs() {
    tmp=$(mktemp -d "${TMPDIR:-/tmp}/dnal-setup.XXXXXX") || return 1
    cc=$(arg_value MPICC)
    [ -n "$cc" ] || cc=$(arg_value CC)
    [ -n "$cc" ] || cc=${MPICC:-${CC:-mpicc}}
    pkgconfig=$(command -v "${PKG_CONFIG:-pkg-config}" 2>/dev/null)
    if ! command -v "$cc" >/dev/null 2>&1; then
        need "the MPI C compiler $cc" "module load an MPI (openmpi, mpich, intel-mpi), or pass CC=/path/to/mpicc"
    else
        links mpi.h MPI_Init "" "" ||
            need "an MPI C compiler ($cc cannot link an MPI program)" "pass CC=/path/to/mpicc"
        links omp.h omp_get_max_threads -fopenmp "" ||
            need "OpenMP ($cc -fopenmp fails)" "use a compiler with OpenMP (GCC, Clang with libomp, Intel) behind mpicc"
    fi
    if [ ! -x configure ]; then
        for tool in autoreconf automake libtoolize; do
            command -v $tool >/dev/null 2>&1 ||
                need "$tool (configure is not generated in this checkout)" \
                    "module load autotools, or build from a release tarball (make dist), which has configure"
        done
    fi
    if command -v "$cc" >/dev/null 2>&1; then
        dir=$(arg_value --with-onednn)
        if [ -n "$dir" ]; then
            [ -f "$dir/include/oneapi/dnnl/dnnl.h" ] ||
                need oneDNN "--with-onednn=$dir has no include/oneapi/dnnl/dnnl.h"
        else
            links oneapi/dnnl/dnnl.h dnnl_engine_create -fopenmp -ldnnl ||
                need "oneDNN 2.x" "configure --with-onednn=DIR (the prefix with include/oneapi/dnnl/dnnl.h and lib/)," \
                    "or CPPFLAGS=-IDIR/include LDFLAGS=-LDIR/lib (module load onednn, or Debian's libdnnl-dev)"
        fi
        check_lib hdf5 hdf5 hdf5.h H5Fopen -lhdf5 HDF5 h5cc H5CC libhdf5-dev
        check_lib gsl gsl gsl/gsl_rng.h gsl_rng_alloc "-lgsl -lgslcblas -lm" GSL gsl-config GSL_CONFIG libgsl-dev
        check_lib jpeg libjpeg jpeglib.h jpeg_start_decompress -ljpeg libjpeg-turbo "" "" libjpeg62-turbo-dev
        check_lib zlib zlib zlib.h deflate -lz zlib "" "" zlib1g-dev
        check_lib inih inih ini.h ini_parse_stream -linih libinih "" "" libinih-dev
        check_lib protobuf-c libprotobuf-c protobuf-c/protobuf-c.h protobuf_c_message_unpack \
            -lprotobuf-c protobuf-c "" "" libprotobuf-c-dev
    fi
    rm -rf "$tmp"
    [ $missing -eq 0 ] && return 0
    echo "jobs/setup.sh: $missing missing for the build (nothing installed: not root on Debian or Ubuntu)" >&2
    return 1
}

configure_args="$*"
if debian_root; then
    install_debian || exit 1
else
    check_build_needs || exit 1
fi
if [ $check_only -eq 1 ]; then
    echo "jobs/setup.sh: the build has what it needs"
    exit 0
fi

mkdir -p "$builddir"
log="$top/$builddir/build.log"
{
    { [ -x configure ] || ./autogen.sh; } &&
        cd "$builddir" &&
        { [ -f Makefile ] || "$top/configure" "$@"; } &&
        make -j"$(nproc 2>/dev/null || echo 2)"
} >"$log" 2>&1 || {
    tail -n 30 "$log" >&2
    echo "jobs/setup.sh: the build failed (full log: $log)" >&2
    exit 1
}
