# TAP for the shell tests: check NAME EXPRESSION prints "ok N - NAME" or
# "not ok N - NAME" (EXPRESSION is eval'ed); $fail counts the failures.
# Sourced: . "$(dirname "$0")/../tap.sh"
n=0
fail=0
check() {
    n=$((n + 1))
    if eval "$2"; then echo "ok $n - $1"; else fail=$((fail + 1)); echo "not ok $n - $1"; fi
}
