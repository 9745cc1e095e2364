#!/bin/sh
# The latency table's unit test (tests/unit/test_latency) with oneDNN capped
# at AVX2: another layout (nChw8c), another channel block (8), so that
# prune.channel_multiple=auto and the profile are checked on a second ISA.
# $LATENCY_TEST is the program.
ONEDNN_MAX_CPU_ISA=AVX2 exec "${LATENCY_TEST:-./tests/unit/test_latency}"
