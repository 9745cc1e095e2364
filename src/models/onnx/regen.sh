#!/bin/sh
# Regenerates onnx.pb-c.c and onnx.pb-c.h (committed, so that a build needs
# only libprotobuf-c) from onnx.proto, a copy of Debian's libonnx-dev
# /usr/include/onnx/onnx.proto (ONNX 1.12, IR version 8, opsets up to 17),
# with protoc-c (Debian's protobuf-c-compiler). tests/cli/test_onnx.sh
# checks that the committed files are what this makes.
#   src/models/onnx/regen.sh [OUTDIR]    (default: this folder)
set -eu
here=$(cd "$(dirname "$0")" && pwd)
out=${1:-$here}
cd "$here"
protoc-c --c_out="$out" onnx.proto
