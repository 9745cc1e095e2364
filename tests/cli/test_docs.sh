#!/bin/sh
# The documentation contract: the key list of docs/design.md (the fenced
# block between its marker lines) is exactly `dnal config --list`, and that
# list holds every key of the resolved configuration `dnal config` prints.
# Speaks TAP. $DNAL is the binary under test, $TOP the source tree.
DNAL=${DNAL:-./dnal}
TOP=${TOP:-$(dirname "$0")/../..}
. "$(dirname "$0")/../tap.sh"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
doc=$TOP/docs/design.md
begin='<!-- dnal config --list: begin -->'
end='<!-- dnal config --list: end -->'

# the lines between the marker lines
awk -v begin="$begin" -v end="$end" '$0 == end { inside = 0 } inside { print } $0 == begin { inside = 1 }' \
    "$doc" >"$tmp/block"
check "docs/design.md has the marker lines, a fenced block between them" \
    "grep -qxF -- '$begin' '$doc' && grep -qxF -- '$end' '$doc' &&
     [ \"\$(head -n 1 '$tmp/block')\" = '\`\`\`' ] && [ \"\$(tail -n 1 '$tmp/block')\" = '\`\`\`' ]"
sed '1d;$d' "$tmp/block" >"$tmp/documented"

"$DNAL" config --list >"$tmp/list" 2>"$tmp/err"; rc=$?
check "dnal config --list exits 0" "[ $rc -eq 0 ] && [ -s '$tmp/list' ]"

# The first line where the block (whose first line is line `first` of the
# document) and the list differ, or nothing.
first_difference() {
    awk -v other="$2" -v first="$3" '
        {
            if ((getline theirs < other) <= 0)
                theirs = "(nothing: the list has ended)"
            if ($0 != theirs) {
                printf "docs/design.md:%d has \"%s\", dnal config --list \"%s\"", first + NR - 1, $0, theirs
                differs = 1
                exit
            }
        }
        END {
            if (!differs && (getline theirs < other) > 0)
                printf "docs/design.md:%d ends the block, dnal config --list has \"%s\"", first + NR, theirs
        }' "$1"
}
first=$(($(grep -nxF -- "$begin" "$doc" | cut -d : -f 1 | head -n 1) + 2))
difference=$(first_difference "$tmp/documented" "$tmp/list" "$first")
check "docs/design.md lists the keys as dnal config --list does${difference:+ (differs at $difference)}" \
    "[ -z \"\$difference\" ]"
[ -z "$difference" ] || echo "# regenerate the block: docs/update-keys.sh path/to/dnal"

# section.key of every key of the resolved configuration
"$DNAL" config >"$tmp/ini" 2>"$tmp/err"; rc=$?
awk '/^\[.*\]$/ { section = substr($0, 2, length($0) - 2); next }
     $2 == "=" { print section "." $1 }' "$tmp/ini" >"$tmp/keys"
cut -d ' ' -f 1 "$tmp/list" >"$tmp/listed"
check "dnal config prints the resolved configuration ($(wc -l <"$tmp/keys") keys)" \
    "[ $rc -eq 0 ] && [ \$(wc -l <'$tmp/keys') -gt 50 ]"
missing=$(grep -vxF -f "$tmp/listed" "$tmp/keys" | head -n 1)
check "every key of dnal config is in --list${missing:+ (missing: $missing)}" "[ -z '$missing' ]"
extra=$(grep -vxF -f "$tmp/keys" "$tmp/listed" | head -n 1)
check "every key of --list is in dnal config${extra:+ (not a key: $extra)}" "[ -z '$extra' ]"

echo "1..$n"
[ $fail -eq 0 ]
