#!/bin/sh
# TAP wrapper around tests/analysis/test_analysis.py (pytest does not speak
# TAP): one "ok N - name" / "not ok N - name" line per pytest test, pytest's
# own output as "#" comments. Needs Debian's /usr/bin/python3 with h5py,
# numpy, matplotlib and pytest; DNAL is the binary under test, TOP the source.
TOP=${TOP:-$(cd "$(dirname "$0")/../.." && pwd)}
export TOP
export PYTHONDONTWRITEBYTECODE=1    # nothing written into the source tree
out=$(mktemp) || exit 1
trap 'rm -f "$out"' EXIT
/usr/bin/python3 -m pytest -q -rA -p no:cacheprovider "$TOP/tests/analysis/test_analysis.py" \
    >"$out" 2>&1
status=$?
sed 's/^/# /' "$out"
# the short summary (-rA): "PASSED file::test[param]" / "FAILED file::test - why"
results=$(sed -n 's/^\(PASSED\|FAILED\|ERROR\) [^:]*::\([^ ]*\).*$/\1 \2/p' "$out")
n=0
echo "$results" | while read -r result name; do
    [ -n "$result" ] || continue
    n=$((n + 1))
    if [ "$result" = PASSED ]; then echo "ok $n - $name"; else echo "not ok $n - $name"; fi
done
count=$(echo "$results" | grep -c .)
if [ "$count" -eq 0 ]; then
    echo "not ok 1 - pytest ran the analysis tests (exit $status)"
    echo "1..1"
else
    echo "1..$count"
fi
