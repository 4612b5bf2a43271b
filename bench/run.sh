#!/usr/bin/env bash
# Runs protolab's benchmarks and prints each figure beside its reference
# from the same run, as a ratio. Usage:
#   bench/run.sh [foundation|honesty|syncwait|decode|memory|flood|ui|idle|terminal|docker|all] [runs]
# foundation: start → four protocols verified, and the ws probe vs plain gorilla
# honesty:    the report's probe figures (probe worker) and an in-process probe vs an independent external client
# syncwait:   a headless run with live capture vs without (root): wall time, the capture sync's share
# decode:     1 M generated packets through protolab --read vs tshark
# memory:     10 M packets replayed with the default ring sizes: peak RSS
# flood:      a ws message flood on lo with live capture: drops and decode lag (root)
# ui:         the explorer's frame with 1 k vs 1 M records buffered; p99 frame under a flood
# idle:       CPU of the explorer idling on an up lab (tmux 200×50, 10 s; capture off and on) vs the same lab kept headless
# terminal:   --help and a headless run under a pty that never answers vs TERM=dumb
# docker:     start → four protocols verified on Docker (images cached) vs docker-compose up + the same checks
set -euo pipefail
cd "$(dirname "$0")/.."
what=${1:-all}
runs=${2:-5}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# median of the ns/op column of a sub-benchmark in $1
median() {
  grep -E "^Benchmark$2-[0-9]+ " "$1" | awk '{print $3}' | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
ms() { awk -v n="$1" 'BEGIN { printf "%.1f", n / 1e6 }'; }

foundation() {
  local out=$tmp/foundation
  go test -run '^$' -bench 'BenchmarkStartToVerified' -benchtime 20x -count "$runs" ./lab/headless/ >>"$out"
  go test -run '^$' -bench 'BenchmarkWSRoundTrip' -benchtime 20000x -count "$runs" ./lab/probe/ >>"$out"
  local start bare probe gor
  start=$(median "$out" 'StartToVerified/protolab'); bare=$(median "$out" 'StartToVerified/bare')
  printf 'start → four protocols verified (embedded): %s ms (bare servers + probes %s ms, ratio %s; target ≤ 1000 ms)\n' \
    "$(ms "$start")" "$(ms "$bare")" "$(ratio "$start" "$bare")"
  probe=$(median "$out" 'WSRoundTrip/probe'); gor=$(median "$out" 'WSRoundTrip/gorilla')
  printf 'ws echo round trip: probe %s µs vs minimal gorilla loop %s µs: ratio %s (target ≤ 1.10)\n' \
    "$(awk -v n="$probe" 'BEGIN{printf "%.1f", n/1e3}')" "$(awk -v n="$gor" 'BEGIN{printf "%.1f", n/1e3}')" "$(ratio "$probe" "$gor")"
}

honesty() {
  go build -o "$tmp/extclient" ./bench/extclient
  go build -o "$tmp/honesty" ./bench/honesty
  "$tmp/honesty" -extclient "$tmp/extclient" -rounds "$runs" -n 2000 -warmup 200
}

# syncwait: a headless run on the embedded lab with live capture vs without
# (root): median wall time over $runs interleaved runs each, and the ratio.
syncwait() {
  build
  [ "$(id -u)" = 0 ] || { echo "syncwait: needs root for live capture"; return; }
  local on=() off=() t0 t1 i
  for i in $(seq "$runs"); do
    for m in off on; do
      t0=$(date +%s%N)
      "$tmp/protolab-tui" --headless --capture "$m" --state-dir "$tmp/state" >"$tmp/sync-$m.txt" 2>&1
      t1=$(date +%s%N)
      if [ "$m" = on ]; then on+=($((t1 - t0))); else off+=($((t1 - t0))); fi
    done
  done
  local mon moff
  mon=$(printf '%s\n' "${on[@]}" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
  moff=$(printf '%s\n' "${off[@]}" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
  grep -o 'synced [a-z]* ([^)]*)' "$tmp/sync-on.txt" || true
  printf 'headless run, embedded lab: capture on %s ms vs off %s ms: ratio %s (target ≤ 2)\n' \
    "$(ms "$mon")" "$(ms "$moff")" "$(ratio "$mon" "$moff")"
}

build() {
  [ -x "$tmp/protolab-tui" ] || go build -o "$tmp/protolab-tui" ./cmd/protolab-tui
}

decode() {
  build
  command -v tshark >/dev/null || { echo "decode: tshark is not installed (apt-get install tshark)"; return; }
  go run ./bench/pcapgen -packets 1000000 -o "$tmp/1m.pcapng"
  local t0 t1 t2 ours theirs
  t0=$(date +%s.%N)
  "$tmp/protolab-tui" --read "$tmp/1m.pcapng" >"$tmp/decode.txt"
  t1=$(date +%s.%N)
  tshark -r "$tmp/1m.pcapng" -T fields -e frame.number >/dev/null 2>&1
  t2=$(date +%s.%N)
  ours=$(awk -v a="$t0" -v b="$t1" 'BEGIN{print b-a}'); theirs=$(awk -v a="$t1" -v b="$t2" 'BEGIN{print b-a}')
  head -1 "$tmp/decode.txt"
  printf 'decode 1 M packets: protolab %.2f s (%.0f packets/s), tshark -T fields -e frame.number %.2f s (%.0f packets/s): protolab is %s× faster (target ≥ 20×)\n' \
    "$ours" "$(awk -v t="$ours" 'BEGIN{print 1e6/t}')" "$theirs" "$(awk -v t="$theirs" 'BEGIN{print 1e6/t}')" "$(ratio "$theirs" "$ours")"
}

memory() {
  build
  command -v /usr/bin/time >/dev/null || { echo "memory: GNU time is not installed (apt-get install time)"; return; }
  go run ./bench/pcapgen -packets 10000000 -o "$tmp/10m.pcapng"
  /usr/bin/time -v "$tmp/protolab-tui" --read "$tmp/10m.pcapng" >"$tmp/mem.txt" 2>"$tmp/mem.err"
  rm -f "$tmp/10m.pcapng"
  head -1 "$tmp/mem.txt"
  printf 'replay 10 M packets, default rings: peak RSS %s MB (target ≤ 200 MB)\n' \
    "$(awk '/Maximum resident/ {printf "%.0f", $6/1024}' "$tmp/mem.err")"
}

flood() {
  if [ "$(id -u)" -ne 0 ]; then echo "flood: live capture needs root"; return; fi
  go test -run '^$' -bench 'BenchmarkLiveFlood' -benchtime 3x -count "$runs" ./lab/capture/ | grep Benchmark | tee "$tmp/flood"
  awk '/captured/ {d+=$5; l+=$9; n++} END {printf "ws flood with live capture: %.0f drops per 20000-message flood, decode lag %.1f ms after the last echo\n", d/n, l/n}' "$tmp/flood"
}

# metric FILE BENCH UNIT: the median of a benchmark's reported metric.
metric() {
  grep -E "^Benchmark$2-[0-9]+ " "$1" | awk -v u="$3" '{for (i = 3; i <= NF; i++) if ($i == u) print $(i-1)}' |
    sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'
}

ui() {
  local out=$tmp/ui
  go test -run '^$' -bench 'BenchmarkView|BenchmarkFloodFrames' -benchtime 1000x -count "$runs" ./ui/ >"$out"
  # BenchmarkView measures a 1 k frame and a 1 M frame side by side in
  # each iteration (both stores alive): the ratio is of the same moments.
  local v
  for v in plain filter; do
    printf 'explorer frame (fetch + update + view)%s: %s ms with 1 k records, %s ms with 1 M, side by side: ratio %s (target ≤ 1.2)\n' \
      "$([ $v = filter ] && echo ' with a filter')" "$(metric "$out" "View/$v" 1k-ms/frame)" "$(metric "$out" "View/$v" 1M-ms/frame)" \
      "$(metric "$out" "View/$v" 1M/1k)"
  done
  grep -E '^BenchmarkFloodFrames' "$out" | awk '{p+=$5; r+=$7; n++} END {printf "explorer under a flood of %.0f records/s: p99 frame %.1f ms (target ≤ 16 ms)\n", r/n, p/n}'
}

# cpu_ticks PID: user+system clock ticks of a process so far.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

# idle_cpu COLS ROWS CMD…: starts CMD in a detached tmux session of that
# size, waits for the lab to be up, then prints the CPU (% of one core) it
# uses over 10 s idle.
idle_cpu() {
  local session=protolab-idle-$$ pid t0 t1 cols=$1 rows=$2
  shift 2
  tmux new-session -d -s "$session" -x "$cols" -y "$rows" "$@"
  sleep 20 # up, deployed, capturing and measured (the first start probes every app)
  pid=$(pgrep -n -f -- "$tmp/protolab-tui --state-dir $tmp/idle")
  t0=$(cpu_ticks "$pid"); sleep 10; t1=$(cpu_ticks "$pid")
  tmux kill-session -t "$session" 2>/dev/null || true
  sleep 1
  awk -v a="$t0" -v b="$t1" -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.2f", (b - a) / hz / 10 * 100 }'
}

# idle: the explorer idling on an up lab at 200×50, capture off and on
# (live capture needs root), each beside the same lab kept headless.
idle() {
  build
  command -v tmux >/dev/null || { echo "idle: tmux is not installed"; return; }
  local ports=(--http-port 0 --https-port 0 --ws-port 0 --wss-port 0)
  local capture tui headless
  for capture in off on; do
    if [ "$capture" = on ] && [ "$(id -u)" != 0 ]; then
      echo "idle with capture on: needs root for live capture"
      continue
    fi
    tui=$(idle_cpu 200 50 "$tmp/protolab-tui" --state-dir "$tmp/idle" "${ports[@]}" --capture "$capture")
    headless=$(idle_cpu 200 50 "$tmp/protolab-tui" --state-dir "$tmp/idle" "${ports[@]}" --capture "$capture" --headless --keep)
    printf 'idle CPU over 10 s at 200×50, lab up, capture %s, nothing happening: explorer %s%% of a core, the same lab headless (--keep) %s%% (the explorer'"'"'s own cost is the difference; target: near 0)\n' \
      "$capture" "$tui" "$headless"
  done
}

terminal() {
  local out=$tmp/terminal
  go test -run '^$' -bench 'BenchmarkSilentTerminal' -benchtime 10x -count "$runs" ./cmd/protolab-tui/ >"$out"
  local cmd
  for cmd in help headless; do
    # the median run by its ratio, with its two times
    grep -E "^BenchmarkSilentTerminal/$cmd-[0-9]+ " "$out" | awk '{for (i = 3; i < NF; i++) v[$(i+1)] = $i; print v["silent/dumb"], v["silent-ms/op"], v["dumb-ms/op"]}' |
      sort -n | awk -v cmd="$cmd" '{a[NR]=$0} END {split(a[int((NR+1)/2)], m, " ");
        printf "terminal: %s under a pty that never answers %.1f ms, with TERM=dumb %.1f ms: ratio %.2f (target ≤ 1.2; before: +5000 ms)\n", cmd, m[2], m[3], m[1]}'
  done
}

docker() {
  local out=$tmp/docker
  go test -run '^$' -bench 'BenchmarkStartToVerified' -benchtime 3x -count "$runs" ./lab/providers/docker/ >"$out"
  local ours theirs
  ours=$(median "$out" 'StartToVerified/protolab'); theirs=$(median "$out" 'StartToVerified/compose')
  printf 'docker: start → four protocols verified → down, images cached: protolab %s s, docker-compose up + checks + down %s s: ratio %s (target ≤ 1.2 and ≤ 10 s)\n' \
    "$(awk -v n="$ours" 'BEGIN{printf "%.2f", n/1e9}')" "$(awk -v n="$theirs" 'BEGIN{printf "%.2f", n/1e9}')" "$(ratio "$ours" "$theirs")"
}

case $what in
  foundation) foundation ;;
  honesty) honesty ;;
  syncwait) syncwait ;;
  decode) decode ;;
  memory) memory ;;
  flood) flood ;;
  ui) ui ;;
  idle) idle ;;
  terminal) terminal ;;
  docker) docker ;;
  all) foundation; honesty; syncwait; decode; memory; flood; ui; idle; terminal; docker ;;
  *) echo "usage: bench/run.sh [foundation|honesty|syncwait|decode|memory|flood|ui|idle|terminal|docker|all] [runs]" >&2; exit 2 ;;
esac
