#!/usr/bin/env bash
# Runs protolab's benchmarks and prints each one beside its reference from the
# same run, as a ratio. Usage: bench/run.sh [count]   (default 5 runs each)
set -euo pipefail
cd "$(dirname "$0")/.."
count=${1:-5}
out=$(mktemp)
trap 'rm -f "$out"' EXIT

go test -run '^$' -bench 'BenchmarkStartToVerified' -benchtime 20x -count "$count" ./lab/headless/ | tee -a "$out"
go test -run '^$' -bench 'BenchmarkWSRoundTrip' -benchtime 20000x -count "$count" ./lab/probe/ | tee -a "$out"

# median ns/op of a sub-benchmark
median() {
  grep -E "^Benchmark$1-[0-9]+ " "$out" | awk '{print $3}' | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }

echo
start=$(median 'StartToVerified/protolab'); bare=$(median 'StartToVerified/bare')
printf 'start → four protocols verified (embedded): %.1f ms  (bare servers + probes %.1f ms, ratio %s; target ≤ 1000 ms)\n' \
  "$(awk -v n="$start" 'BEGIN{print n/1e6}')" "$(awk -v n="$bare" 'BEGIN{print n/1e6}')" "$(ratio "$start" "$bare")"
probe=$(median 'WSRoundTrip/probe'); gor=$(median 'WSRoundTrip/gorilla')
printf 'ws echo round trip: probe %.1f µs vs minimal gorilla loop %.1f µs: ratio %s (target ≤ 1.10)\n' \
  "$(awk -v n="$probe" 'BEGIN{print n/1e3}')" "$(awk -v n="$gor" 'BEGIN{print n/1e3}')" "$(ratio "$probe" "$gor")"
