#!/bin/sh
# jobs/setup.sh as a cluster user would run it: not root (as root the test
# runs it as nobody), so it installs nothing and checks only what the build
# needs. No pkg-config files and no h5cc (as after a bare `module load hdf5`):
# it names --with-hdf5=DIR, and with --with-hdf5=DIR (a module-style prefix)
# it passes; packages the build does not need (SLURM, munge, the dataset) are
# never asked for; a missing MPI compiler names CC=. Speaks TAP.
TOP=${TOP:-$(cd "$(dirname "$0")/../.." && pwd)}
. "$(dirname "$0")/../tap.sh"
T=$(mktemp -d /tmp/dnal-setup-test.XXXXXX)
trap 'rm -rf "$T"' EXIT
chmod 755 "$T"
if [ "$(id -u)" -eq 0 ]; then
    command -v setpriv >/dev/null 2>&1 || { echo "1..0 # SKIP no setpriv to drop root"; exit 0; }
    as_user() { setpriv --reuid=65534 --regid=65534 --clear-groups env HOME="$T" "$@"; }
else
    as_user() { env HOME="$T" "$@"; }
fi
# a package manager that records every call: setup.sh must not use it here
mkdir "$T/fake" "$T/empty"
for tool in apt-get apt dpkg-query sudo; do
    printf '#!/bin/sh\necho "%s $*" >>%s/calls\nexit 1\n' $tool "$T" >"$T/fake/$tool"
    chmod 755 "$T/fake/$tool"
done
setup() { as_user PATH="$T/fake:$PATH" sh "$TOP/jobs/setup.sh" --check build "$@"; }

setup >"$T/plain.out" 2>&1; rc=$?
check "not root: the build's needs are all there, nothing installed (exit $rc)" \
    "[ $rc -eq 0 ] && grep -q 'the build has what it needs' '$T/plain.out' && [ ! -e '$T/calls' ]"

PKG_CONFIG_LIBDIR="$T/empty" PKG_CONFIG_PATH="$T/empty" H5CC=no setup >"$T/nohdf5.out" 2>&1; rc=$?
check "no pkg-config files, no h5cc: exit 1 naming --with-hdf5=DIR and HDF5_CFLAGS/HDF5_LIBS" \
    "[ $rc -eq 1 ] && grep -q 'missing HDF5: configure --with-hdf5=DIR .*HDF5_CFLAGS=... HDF5_LIBS=' '$T/nohdf5.out'"
check "... HDF5 is the only missing piece (GSL by gsl-config, the rest in the default paths)" \
    "[ \$(grep -c 'missing' '$T/nohdf5.out') -eq 2 ] && grep -q '1 missing for the build' '$T/nohdf5.out'"
check "... and nothing the build does not need (slurm, munge, the dataset, python)" \
    "! grep -qiE 'slurm|munge|fashion|python' '$T/nohdf5.out' && [ ! -e '$T/calls' ]"

h5inc=$(h5cc -show 2>/dev/null | tr ' ' '\n' | sed -n 's/^-I//p' | head -n 1)
mkdir -p "$T/hdf5"
ln -s "${h5inc:-/usr/include}" "$T/hdf5/include"
PKG_CONFIG_LIBDIR="$T/empty" PKG_CONFIG_PATH="$T/empty" H5CC=no \
    setup --prefix="$T/p" --with-hdf5="$T/hdf5" >"$T/with.out" 2>&1; rc=$?
check "... with --with-hdf5=DIR among the configure arguments it passes (exit $rc)" "[ $rc -eq 0 ]"
setup --with-hdf5="$T/nowhere" >"$T/bad.out" 2>&1; rc=$?
check "--with-hdf5=DIR without include/hdf5.h there: exit 1 saying so" \
    "[ $rc -eq 1 ] && grep -q -- '--with-hdf5=$T/nowhere has no include/hdf5.h' '$T/bad.out'"
setup CC="$T/nowhere/mpicc" >"$T/cc.out" 2>&1; rc=$?
check "CC=a missing MPI compiler: exit 1 naming module load and CC=" \
    "[ $rc -eq 1 ] && grep -q 'missing the MPI C compiler $T/nowhere/mpicc: module load an MPI .*CC=/path/to/mpicc' '$T/cc.out'"
setup CC=gcc >"$T/gcc.out" 2>&1; rc=$?
check "CC=gcc (no MPI): exit 1, it cannot link an MPI program" \
    "[ $rc -eq 1 ] && grep -q 'gcc cannot link an MPI program' '$T/gcc.out'"

echo "1..$n"
[ $fail -eq 0 ]
