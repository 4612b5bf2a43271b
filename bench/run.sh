#!/usr/bin/env bash
# Runs protolab's benchmarks and prints each figure beside its reference
# from the same run, as a ratio. Usage:
#   bench/run.sh [foundation|honesty|syncwait|decode|memory|flood|flood8|uiflood|ui|idle|terminal|docker|all] [runs]
# foundation: start → four protocols verified, and the ws probe vs plain gorilla
# honesty:    the report's probe figures (probe worker), the worker in a small binary and an in-process probe
#             vs an independent external client (runs: rounds, a multiple of 24)
# syncwait:   a headless run with live capture vs without (root): wall time, how the sync ended;
#             "syncwait RUNS docker" on the Docker provider
# decode:     1 M generated packets through protolab --read vs tshark
# memory:     10 M packets replayed with the default ring sizes: peak RSS
# flood:      a ws message flood on lo with live capture vs without: rates, drops and decode lag (root)
# flood8:     8 ws connections flooding at once, with live capture vs without (root)
# uiflood:    the explorer's p99 frame under a decoder's flood vs the same frames without
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

# honesty: use a multiple of 24 rounds (each round runs the four ways in
# another of their 24 orders).
honesty() {
  go build -o "$tmp/extclient" ./bench/extclient
  go build -o "$tmp/smallworker" ./bench/smallworker
  go build -o "$tmp/honesty" ./bench/honesty
  echo "load average before: $(load)"
  "$tmp/honesty" -extclient "$tmp/extclient" -smallworker "$tmp/smallworker" -rounds "$runs" -n 2000 -warmup 200
  echo "load average after: $(load)"
}

# syncwait: a headless run with live capture vs without (root), on the
# embedded lab, or on Docker with "syncwait docker" (bench/run.sh syncwait
# 9 docker): median wall time over $runs interleaved runs each, the ratio,
# and how the capture's sync ended. The apps take free ports; the Docker
# lab has a name of its own.
syncwait() {
  build
  [ "$(id -u)" = 0 ] || { echo "syncwait: needs root for live capture"; return; }
  local provider=${3:-local}
  local args=(--headless --state-dir "$tmp/state" --http-port 0 --https-port 0 --ws-port 0 --wss-port 0)
  [ "$provider" = docker ] && args+=(--provider docker --name "syncwait-$$")
  local on=() off=() t0 t1 i
  for i in $(seq "$runs"); do
    for m in off on; do
      t0=$(date +%s%N)
      "$tmp/protolab-tui" "${args[@]}" --capture "$m" >"$tmp/sync-$m.txt" 2>&1 || { cat "$tmp/sync-$m.txt"; return 1; }
      t1=$(date +%s%N)
      if [ "$m" = on ]; then on+=($((t1 - t0))); else off+=($((t1 - t0))); fi
    done
  done
  local mon moff
  mon=$(printf '%s\n' "${on[@]}" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
  moff=$(printf '%s\n' "${off[@]}" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
  grep -o 'synced [a-z]* ([^)]*)' "$tmp/sync-on.txt" || true
  printf 'headless run, %s provider: capture on %s ms vs off %s ms: ratio %s (target ≤ 2; load average %s)\n' \
    "$provider" "$(ms "$mon")" "$(ms "$moff")" "$(ratio "$mon" "$moff")" "$(cut -d' ' -f1 /proc/loadavg)"
}

build() {
  # static, as a release: the docker provider makes its app image from it
  [ -x "$tmp/protolab-tui" ] || CGO_ENABLED=0 go build -o "$tmp/protolab-tui" ./cmd/protolab-tui
}

# decode: 1 M generated packets through protolab --read and through tshark
# without and with decode-as (the lab's ports as http, tls, http, tls:
# without it tshark takes the wss port for GSM IPA), interleaved $runs
# times; medians. tshark decrypts https and wss with the file's embedded
# secrets, as protolab does.
decode() {
  build
  command -v tshark >/dev/null || { echo "decode: tshark is not installed (apt-get install tshark)"; return; }
  go run ./bench/pcapgen -packets 1000000 -o "$tmp/1m.pcapng"
  local as=(-d tcp.port==3000,http -d tcp.port==3001,tls -d tcp.port==3002,http -d tcp.port==3003,tls)
  local ours=() plain=() with=() t0 t1 i
  echo "load average before: $(load)"
  for i in $(seq "$runs"); do
    t0=$(date +%s%N); "$tmp/protolab-tui" --read "$tmp/1m.pcapng" >"$tmp/decode.txt"; t1=$(date +%s%N); ours+=($((t1 - t0)))
    t0=$(date +%s%N); tshark -r "$tmp/1m.pcapng" -T fields -e frame.number >/dev/null 2>&1; t1=$(date +%s%N); plain+=($((t1 - t0)))
    t0=$(date +%s%N); tshark -r "$tmp/1m.pcapng" "${as[@]}" -T fields -e frame.number >/dev/null 2>&1; t1=$(date +%s%N); with+=($((t1 - t0)))
  done
  med() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
  local o p w
  o=$(med "${ours[@]}"); p=$(med "${plain[@]}"); w=$(med "${with[@]}")
  head -1 "$tmp/decode.txt"
  printf 'decode 1 M packets: protolab %.2f s (%.0f packets/s); tshark -T fields -e frame.number %.2f s: protolab %s× faster; tshark with decode-as %.2f s: %s× faster (target ≥ 20×; medians of %s; load average after: %s)\n' \
    "$(awk -v n="$o" 'BEGIN{print n/1e9}')" "$(awk -v n="$o" 'BEGIN{print 1e6/(n/1e9)}')" "$(awk -v n="$p" 'BEGIN{print n/1e9}')" "$(ratio "$p" "$o")" \
    "$(awk -v n="$w" 'BEGIN{print n/1e9}')" "$(ratio "$w" "$o")" "$runs" "$(load)"
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

# unitmedian FILE BENCH UNIT: the median, over the runs, of a metric a
# benchmark reported in UNIT.
unitmedian() {
  grep -E "^Benchmark$2-[0-9]+ " "$1" | awk -v u="$3" '{for (i = 3; i <= NF; i++) if ($i == u) print $(i-1)}' |
    sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'
}

load() { cut -d' ' -f1-3 /proc/loadavg; }

flood() {
  if [ "$(id -u)" -ne 0 ]; then echo "flood: live capture needs root"; return; fi
  local out=$tmp/flood
  echo "load average before: $(load)"
  go test -run '^$' -bench 'BenchmarkLiveFlood$' -benchtime 3x -count "$runs" ./lab/capture/ | grep Benchmark | tee "$out"
  local c r
  c=$(unitmedian "$out" LiveFlood/captured msgs/s); r=$(unitmedian "$out" LiveFlood/reference msgs/s)
  printf 'ws flood on lo, 20000 messages: with live capture %.0f msgs/s, without %.0f msgs/s: ratio %s; %s drops, %s frames decoded of 40000, decode lag %s ms after the last echo (medians; load average after: %s)\n' \
    "$c" "$r" "$(ratio "$c" "$r")" "$(unitmedian "$out" LiveFlood/captured drops/op)" "$(unitmedian "$out" LiveFlood/captured frames/op)" \
    "$(unitmedian "$out" LiveFlood/captured lag-ms/op)" "$(load)"
}

# flood8: 8 ws connections flooding at once, with live capture and without,
# alternately in each iteration (BenchmarkFlood8).
flood8() {
  if [ "$(id -u)" -ne 0 ]; then echo "flood8: live capture needs root"; return; fi
  local out=$tmp/flood8
  echo "load average before: $(load)"
  go test -run '^$' -bench 'BenchmarkFlood8' -benchtime 2x -count "$runs" ./lab/capture/ | grep Benchmark | tee "$out"
  printf '8-connection ws flood (8 × 20000 messages): with live capture %.0f msgs/s, without %.0f msgs/s; ratio %s; drops: %s kernel, %s queue; frames decoded / sent %s; gaps %s; decode lag %s ms (medians of %s runs; load average after: %s)\n' \
    "$(unitmedian "$out" Flood8 cap-msgs/s)" "$(unitmedian "$out" Flood8 ref-msgs/s)" "$(unitmedian "$out" Flood8 cap/ref)" \
    "$(unitmedian "$out" Flood8 kernel-drops/op)" "$(unitmedian "$out" Flood8 queue-drops/op)" \
    "$(unitmedian "$out" Flood8 frames-decoded/sent)" "$(unitmedian "$out" Flood8 gaps/op)" "$(unitmedian "$out" Flood8 lag-ms/op)" "$runs" "$(load)"
}

# uiflood: the explorer's p99 frame while a decoder floods the store, beside
# the same frames with the flood paused (alternating every 50 frames).
uiflood() {
  local out=$tmp/uiflood
  echo "load average before: $(load)"
  go test -run '^$' -bench 'BenchmarkFloodFrames' -benchtime 1000x -count "$runs" ./ui/ | grep Benchmark | tee "$out"
  local f q
  f=$(unitmedian "$out" FloodFrames p99-frame-ms); q=$(unitmedian "$out" FloodFrames ref-p99-frame-ms)
  printf 'explorer under a flood of %.0f records/s: p99 frame %s ms, the same frames without the flood %s ms: ratio %s (target ≤ 16 ms; medians of %s runs; load average after: %s)\n' \
    "$(unitmedian "$out" FloodFrames records/s)" "$f" "$q" "$(ratio "$f" "$q")" "$runs" "$(load)"
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
  local capture tui fps60 headless
  for capture in off on; do
    if [ "$capture" = on ] && [ "$(id -u)" != 0 ]; then
      echo "idle with capture on: needs root for live capture"
      continue
    fi
    tui=$(idle_cpu 200 50 "$tmp/protolab-tui" --state-dir "$tmp/idle" "${ports[@]}" --capture "$capture")
    fps60=$(PROTOLAB_FPS=60 idle_cpu 200 50 env PROTOLAB_FPS=60 "$tmp/protolab-tui" --state-dir "$tmp/idle" "${ports[@]}" --capture "$capture")
    headless=$(idle_cpu 200 50 "$tmp/protolab-tui" --state-dir "$tmp/idle" "${ports[@]}" --capture "$capture" --headless --keep)
    printf 'idle CPU over 10 s at 200×50, lab up, capture %s, nothing happening: explorer %s%% of a core (at Bubble Tea'"'"'s default 60 fps: %s%%), the same lab headless (--keep) %s%% (the explorer'"'"'s own cost is the difference; target: near 0)\n' \
      "$capture" "$tui" "$fps60" "$headless"
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

# docker: the test binary is built static (CGO_ENABLED=0), as a release
# is, so the app image is made from it (the running executable), not from
# a go build of the checkout.
docker() {
  local out=$tmp/docker
  echo "load average before: $(load)"
  CGO_ENABLED=0 go test -run '^$' -bench 'BenchmarkStartToVerified' -benchtime 3x -count "$runs" ./lab/providers/docker/ >"$out"
  local ours theirs
  ours=$(median "$out" 'StartToVerified/protolab'); theirs=$(median "$out" 'StartToVerified/compose')
  printf 'docker: start → four protocols verified → down, images cached: protolab %s s, docker-compose up + checks + down %s s: ratio %s (target ≤ 1.2 and ≤ 10 s; load average after: %s)\n' \
    "$(awk -v n="$ours" 'BEGIN{printf "%.2f", n/1e9}')" "$(awk -v n="$theirs" 'BEGIN{printf "%.2f", n/1e9}')" "$(ratio "$ours" "$theirs")" "$(load)"
}

case $what in
  foundation) foundation ;;
  honesty) honesty ;;
  syncwait) syncwait "$@" ;;
  decode) decode ;;
  memory) memory ;;
  flood) flood ;;
  flood8) flood8 ;;
  uiflood) uiflood ;;
  ui) ui ;;
  idle) idle ;;
  terminal) terminal ;;
  docker) docker ;;
  all) foundation; honesty; syncwait; decode; memory; flood; flood8; uiflood; ui; idle; terminal; docker ;;
  *) echo "usage: bench/run.sh [foundation|honesty|syncwait|decode|memory|flood|flood8|uiflood|ui|idle|terminal|docker|all] [runs]" >&2; exit 2 ;;
esac
