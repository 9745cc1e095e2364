#!/bin/sh
# ./configure --prefix=DIR && make install as a user who is not root (as
# root the test works as nobody), as on a cluster: everything lands under the
# prefix (dnal, the library, headers, dnal.pc, the analysis tools, the job
# scripts and the configs), make installcheck passes, and the default search
# runs from there for a few steps; the shipped configs load by name; the
# analysis tools run with any python3 that has h5py (here Debian's), and
# install with pip from analysis/pyproject.toml. Builds the tree once more
# (in a temporary folder, with the suite's compiler, BUILD_CC). Speaks TAP.
TOP=${TOP:-$(cd "$(dirname "$0")/../.." && pwd)}
. "$(dirname "$0")/../tap.sh"
[ -x "$TOP/configure" ] || { echo "1..0 # SKIP $TOP/configure is not generated"; exit 0; }
T=$(mktemp -d /tmp/dnal-install-test.XXXXXX)
trap 'rm -rf "$T"' EXIT
chmod 755 "$T"
if [ "$(id -u)" -eq 0 ]; then
    command -v setpriv >/dev/null 2>&1 || { echo "1..0 # SKIP no setpriv to drop root"; exit 0; }
    chown 65534:65534 "$T"
    as_user() { setpriv --reuid=65534 --regid=65534 --clear-groups env HOME="$T" "$@"; }
else
    as_user() { env HOME="$T" "$@"; }
fi
P=$T/prefix
as_user sh -c "mkdir '$T/b' && cd '$T/b' && '$TOP/configure' --prefix='$P' CC='${BUILD_CC:-mpicc}' >configure.log 2>&1 &&
    make -j2 >make.log 2>&1 && make install >install.log 2>&1 && make installcheck >installcheck.log 2>&1"
rc=$?
check "as $(as_user id -un): configure --prefix=DIR, make, make install, make installcheck (exit $rc)" "[ $rc -eq 0 ]"
[ $rc -eq 0 ] || tail -n 20 "$T"/b/*.log | sed 's/^/# /'
check "... installcheck ran dnal info and 2 training steps from the installed tree" \
    "grep -q '^installcheck: dnal info and 2 training steps from $P/bin passed' '$T/b/installcheck.log'"
check "... bin/dnal, lib/libdnal.so, include/dnal/, lib/pkgconfig/dnal.pc" \
    "[ -x '$P/bin/dnal' ] && [ -e '$P/lib/libdnal.so' ] && [ -f '$P/include/dnal/core.h' ] && [ -f '$P/lib/pkgconfig/dnal.pc' ]"
check "... bin/dnal-report, dnal-sweep, dnal-watch (links to share/dnal/analysis/, beside dnal_log.py)" \
    "[ -x '$P/bin/dnal-report' ] && [ -x '$P/bin/dnal-sweep' ] && [ -x '$P/bin/dnal-watch' ] && [ -f '$P/share/dnal/analysis/dnal_log.py' ] && head -n 1 '$P/bin/dnal-report' | grep -q '^#!/usr/bin/env python3'"
check "... the job scripts in share/dnal/jobs/, search.sbatch running this prefix's dnal" \
    "[ -x '$P/share/dnal/jobs/sweep.sbatch' ] && grep -q '^installed_dnal=$P/bin/dnal\$' '$P/share/dnal/jobs/search.sbatch'"
check "... every job config in share/dnal/configs/" \
    "[ \$(ls '$P/share/dnal/configs/'*.ini | wc -l) -eq \$(ls '$TOP/jobs/configs/'*.ini | wc -l) ]"

# the default search from the installed tree, a few steps per stage
mkdir "$T/run" && chown --reference="$T" "$T/run"
as_user sh -c "cd '$T/run' && OMP_NUM_THREADS=2 '$P/bin/dnal' search --set data.train_limit=256 --set data.eval_limit=128 \
    --set data.batch=64 --set pretrain.epochs=1 --set search.epochs=1 --set finetune.epochs=1 \
    --set log.path=run.h5 --set checkpoint.dir=ck >search.out 2>&1"
rc=$?
check "the default search runs from the prefix (4 steps a stage, exit $rc)" \
    "[ $rc -eq 0 ] && grep -q '^summary flops_dense=' '$T/run/search.out' && [ -s '$T/run/ck/model.h5' ]"
as_user sh -c "cd / && '$P/bin/dnal' config -c cifar10-resnet56 >'$T/run/named.ini' 2>&1 && '$P/bin/dnal' config -c fashion-mnist-resnet20.ini >/dev/null 2>&1"
rc=$?
check "dnal -c NAME and -c NAME.ini find shipped configs from any folder" \
    "[ $rc -eq 0 ] && grep -q '^name = resnet56\$' '$T/run/named.ini'"
as_user sh -c "cd / && '$P/bin/dnal' config -c paper/imagenet-resnet50 >'$T/run/paper.ini' 2>&1"
rc=$?
check "dnal -c paper/NAME finds the authors' recipes installed beside them" \
    "[ $rc -eq 0 ] && grep -q '^gate_stem = true\$' '$T/run/paper.ini'"
if /usr/bin/python3 -c 'import h5py, numpy, matplotlib' 2>/dev/null; then
    as_user sh -c "cd '$T/run' && /usr/bin/python3 '$P/bin/dnal-report' run.h5 -o rep >report.out 2>&1"; rc=$?
    check "the installed dnal-report (any python3 with h5py, numpy, matplotlib) on that run" \
        "[ $rc -eq 0 ] && [ -s '$T/run/rep/report.md' ] && [ -s '$T/run/rep/gates.png' ]"
    if as_user /usr/bin/python3 -m venv --system-site-packages "$T/venv" >/dev/null 2>&1; then
        as_user sh -c "cp -r '$TOP/analysis' '$T/analysis-src' && chmod -R u+w '$T/analysis-src' &&
            '$T/venv/bin/python3' -m pip install -q --no-build-isolation --no-deps --no-index '$T/analysis-src' >'$T/pip.log' 2>&1 &&
            cd '$T/run' && '$T/venv/bin/dnal-sweep' run.h5 -o sweep >sweep.out 2>&1"; rc=$?
        check "pip install analysis/ (pyproject.toml) into a venv: its dnal-sweep on that run" \
            "[ $rc -eq 0 ] && [ -s '$T/run/sweep/sweep.csv' ]"
    else
        echo "ok $((n += 1)) - pip install analysis/ # SKIP no python3 -m venv"
    fi
else
    echo "ok $((n += 1)) - the installed analysis tools # SKIP /usr/bin/python3 lacks h5py, numpy or matplotlib"
fi

as_user sh -c "cd '$T/b' && make uninstall >uninstall.log 2>&1"; rc=$?
check "make uninstall leaves no file in the prefix" "[ $rc -eq 0 ] && [ -z \"\$(find '$P' -type f -o -type l)\" ]"

echo "1..$n"
[ $fail -eq 0 ]
