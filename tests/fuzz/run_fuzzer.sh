#!/bin/sh
# Bounded libFuzzer run for the suite: new inputs and crash artifacts go to the
# build tree, never into the committed seed corpus.
# usage: run_fuzzer.sh FUZZER SECONDS SEED_CORPUS WORK_DIR
set -eu
fuzzer=$1 seconds=$2 seeds=$3 work=$4
mkdir -p "$work/corpus" "$work/artifacts"
exec "$fuzzer" -max_total_time="$seconds" -seed=1 -rss_limit_mb=2048 -timeout=10 \
  -print_final_stats=1 -artifact_prefix="$work/artifacts/" "$work/corpus" "$seeds"
