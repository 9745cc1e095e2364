#!/bin/sh
# The never-broken rules of docs/design.md ("Modules"): each module includes
# only the public headers the block between "<!-- modules: begin -->" and
# "<!-- modules: end -->" allows it; io includes no header of the method;
# struct dnal_run is defined in src/search only; every oneDNN descriptor call
# and every read of a memory descriptor's fields is in src/core/onednn_desc.c;
# the installed library exports dnal_* symbols only. Speaks TAP.
# $TOP is the source tree, $DNAL the built binary (its library in .libs).
TOP=${TOP:-.}
DNAL=${DNAL:-./dnal}
. "$TOP/tests/tap.sh"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
doc="$TOP/docs/design.md"

sed -n '/<!-- modules: begin -->/,/<!-- modules: end -->/p' "$doc" |
    sed -n 's/^ *\([a-z]*\): *\(.*\)$/\1 \2/p' >"$tmp/allowed"
check "docs/design.md lists the allowed headers of 10 modules" "[ \$(wc -l <'$tmp/allowed') -eq 10 ]"

# the headers each module owns
owned() {
    case "$1" in
    io) echo "io config" ;;
    *) echo "$1" ;;
    esac
}

# every #include "dnal/X.h" of src/MODULE and of the module's own headers
: >"$tmp/bad"
while read -r module allowed; do
    files=$(ls "$TOP/src/$module"/*.[ch] 2>/dev/null)
    for h in $(owned "$module"); do files="$files $TOP/include/dnal/$h.h"; done
    # shellcheck disable=SC2086
    grep -Hn '^#include "dnal/[a-z]*\.h"' $files | while IFS= read -r line; do
        header=$(echo "$line" | sed 's/.*"dnal\/\([a-z]*\)\.h".*/\1/')
        case " $allowed " in
        *" $header "*) ;;
        *) echo "${line#"$TOP"/} ($module may not use $header)" >>"$tmp/bad" ;;
        esac
    done
done <"$tmp/allowed"
check "every module includes only the headers docs/design.md allows it" "[ ! -s '$tmp/bad' ]"
sed 's/^/# /' "$tmp/bad"

grep -ln '"dnal/search.h"' "$TOP"/src/io/*.[ch] "$TOP/include/dnal/io.h" "$TOP/include/dnal/config.h" >"$tmp/io" 2>/dev/null
check "no file of src/io includes the method's header (dnal/search.h)" "[ ! -s '$tmp/io' ]"

grep -rln 'struct dnal_run *{' "$TOP/src" "$TOP/include" | grep -v '/src/search/' >"$tmp/run"
check "struct dnal_run is defined in src/search only" "[ ! -s '$tmp/run' ]"

# descriptor calls and the fields of dnnl_memory_desc_t (ndims, dims,
# padded_dims, data_type, format_kind, format_desc) outside onednn_desc.c
grep -rn '_desc_init\|dnnl_primitive_desc_create\|format_kind\|format_desc\|padded_dims\|[a-z_]md\(\[[0-9]\]\)\?\(\.\|->\)\(ndims\|dims\|data_type\)\b\|\bmd\(\.\|->\)\(ndims\|dims\|data_type\)\b' \
    "$TOP/src" "$TOP/include" | grep -v 'src/core/onednn_desc.c' >"$tmp/desc"
check "oneDNN descriptors are created and read in src/core/onednn_desc.c only" "[ ! -s '$tmp/desc' ]"
sed 's/^/# /' "$tmp/desc"

lib="$(dirname "$DNAL")/.libs/libdnal.so"
nm -D --defined-only "$lib" | awk '{print $3}' | grep -v '^dnal_' >"$tmp/exports"
check "libdnal.so exports dnal_* symbols only" "[ -s '$lib' ] && [ ! -s '$tmp/exports' ]"
sed 's/^/# /' "$tmp/exports" | head -n 10
check "libdnal.so exports the API (dnal_run_open, dnal_net_forward)" \
    "nm -D --defined-only '$lib' | grep -q ' dnal_run_open\$' && nm -D --defined-only '$lib' | grep -q ' dnal_net_forward\$'"

echo "1..$n"
[ $fail -eq 0 ]
