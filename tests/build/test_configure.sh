#!/bin/sh
# configure on a machine without pkg-config files, as on a cluster whose
# `module load` sets PATH and LD_LIBRARY_PATH only: PKG_CONFIG_LIBDIR and
# PKG_CONFIG_PATH point at an empty folder, so every library must be found by
# its own tool (h5cc, gsl-config), by --with-NAME=DIR or in the default paths,
# and a library that is nowhere stops configure naming the option that fixes
# it. Each configure runs in its own temporary build folder. Speaks TAP.
TOP=${TOP:-$(cd "$(dirname "$0")/../.." && pwd)}
. "$(dirname "$0")/../tap.sh"
[ -x "$TOP/configure" ] || { echo "1..0 # SKIP $TOP/configure is not generated"; exit 0; }

T=$(mktemp -d /tmp/dnal-configure.XXXXXX)
trap 'rm -rf "$T"' EXIT
mkdir "$T/empty"
# configure NAME ARGS...: runs configure in $T/NAME with no pkg-config files,
# exit status in $T/NAME/rc, output in $T/NAME/out
run_configure() {
    name=$1; shift
    mkdir "$T/$name"
    (cd "$T/$name" && PKG_CONFIG_LIBDIR="$T/empty" PKG_CONFIG_PATH="$T/empty" \
        "$TOP/configure" "$@" >out 2>&1; echo $? >rc)
}
var() { sed -n "s/^$2 = //p" "$T/$1/Makefile"; }

# a module-style prefix for HDF5 and libinih: DIR/include and DIR/lib, made of
# links to this machine's real files (found the way a user would, with h5cc)
h5inc=$(h5cc -show 2>/dev/null | tr ' ' '\n' | sed -n 's/^-I//p' | head -n 1)
h5lib=$(h5cc -show 2>/dev/null | tr ' ' '\n' | sed -n 's/^-L//p' | head -n 1)
[ -n "$h5inc" ] || h5inc=/usr/include
[ -n "$h5lib" ] || h5lib=$(dirname "$(gcc -print-file-name=libhdf5.so)")
mkdir -p "$T/hdf5/lib" "$T/inih/include" "$T/inih/lib"
ln -s "$h5inc" "$T/hdf5/include"
for f in "$h5lib"/libhdf5.so*; do ln -s "$f" "$T/hdf5/lib/"; done
ln -s "$(gcc -print-file-name=libinih.so)" "$T/inih/lib/libinih.so"
for d in /usr/include /usr/local/include; do
    [ -f "$d/ini.h" ] && ln -s "$d/ini.h" "$T/inih/include/ini.h" && break
done

run_configure tools
check "no pkg-config files: configure finds every library (exit $(cat "$T/tools/rc"))" \
    "[ $(cat "$T/tools/rc") -eq 0 ]"
check "... HDF5 through h5cc -show ($(var tools HDF5_LIBS | cut -c1-60)...)" \
    "grep -q 'HDF5 compiles and links (.*h5cc -show)... yes' '$T/tools/out' && var tools HDF5_LIBS | grep -q -- '-lhdf5'"
check "... GSL through gsl-config" \
    "grep -q 'GSL compiles and links (.*gsl-config)... yes' '$T/tools/out' && var tools GSL_LIBS | grep -q -- '-lgsl'"
check "... libinih, libjpeg and zlib in the default paths" \
    "[ \"\$(var tools INIH_LIBS)\" = -linih ] && [ \"\$(var tools JPEG_LIBS)\" = -ljpeg ] && [ \"\$(var tools ZLIB_LIBS)\" = -lz ]"
check "... dnal.pc lists them as libraries, not as pkg-config modules" \
    "grep -q '^Requires.private: *\$' '$T/tools/dnal.pc' && grep -q '^Libs.private:.*-linih' '$T/tools/dnal.pc'"

run_configure nohdf5 H5CC=no
check "no pkg-config file and no h5cc: configure fails (exit $(cat "$T/nohdf5/rc"))" \
    "[ $(cat "$T/nohdf5/rc") -ne 0 ]"
check "... naming --with-hdf5=DIR and what it tried" \
    "grep -q 'error: HDF5 not found.*no pkg-config module hdf5, no usable h5cc.*--with-hdf5=DIR' '$T/nohdf5/out'"

run_configure withdirs H5CC=no GSL_CONFIG=no --with-hdf5="$T/hdf5" --with-inih="$T/inih"
check "--with-hdf5=DIR --with-inih=DIR (module-style prefixes): configure passes (exit $(cat "$T/withdirs/rc"))" \
    "[ $(cat "$T/withdirs/rc") -eq 0 ]"
check "... HDF5 from DIR/include and DIR/lib with an rpath" \
    "var withdirs HDF5_CFLAGS | grep -q -- '-I$T/hdf5/include' && var withdirs HDF5_LIBS | grep -q -- '-L$T/hdf5/lib -Wl,-rpath,$T/hdf5/lib'"
check "... libinih from its DIR, GSL from the default paths without gsl-config" \
    "var withdirs INIH_LIBS | grep -q -- '-L$T/inih/lib .*-linih' && grep -q 'GSL compiles and links (the default paths)... yes' '$T/withdirs/out'"

run_configure badinih --with-inih="$T/nowhere"
check "--with-inih=DIR without libinih there: configure fails naming --with-inih=DIR" \
    "[ $(cat "$T/badinih/rc") -ne 0 ] && grep -q 'error: libinih not found: --with-inih=$T/nowhere has no include/ini.h; --with-inih=DIR takes' '$T/badinih/out'"

echo "1..$n"
[ $fail -eq 0 ]
