#!/bin/sh
# Regenerates the configuration keys of docs/design.md, the block between
# its marker lines, from `DNAL config --list` (tests/cli/test_docs.sh fails
# while they differ).
#   docs/update-keys.sh DNAL      e.g. docs/update-keys.sh build/dnal
set -eu
if [ $# -ne 1 ]; then
    echo "usage: docs/update-keys.sh DNAL (the dnal binary)" >&2
    exit 1
fi
dnal=$1
doc=$(dirname "$0")/design.md
begin='<!-- dnal config --list: begin -->'
end='<!-- dnal config --list: end -->'
if ! grep -qxF -- "$begin" "$doc" || ! grep -qxF -- "$end" "$doc"; then
    echo "docs/update-keys.sh: $doc has no line '$begin' or '$end'" >&2
    exit 1
fi
list=$(mktemp)
new=$(mktemp)
trap 'rm -f "$list" "$new"' EXIT
"$dnal" config --list >"$list"
awk -v begin="$begin" -v end="$end" -v list="$list" '
    $0 == begin {
        print
        print "```"
        while ((getline line < list) > 0)
            print line
        print "```"
        inside = 1
        next
    }
    $0 == end { inside = 0 }
    !inside { print }
' "$doc" >"$new"
cat "$new" >"$doc" # in place: the file keeps its mode
