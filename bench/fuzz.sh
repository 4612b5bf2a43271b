#!/usr/bin/env bash
# Runs every fuzz target of the project for a fixed time each and records
# what each did — executions, executions per second, new inputs found — in
# docs/fuzz.md. Not part of the test command (go test runs each target's
# seed corpus and testdata/fuzz only). Usage:
#   bench/fuzz.sh [time per target, default 60s] [regexp of target names]
# (FUZZ_MINIMIZE bounds the minimisation of each new input, default 2s; the
# logs of failing targets are kept in FUZZ_LOGS, default /tmp/protolab-fuzz-logs.)
# A target that fails leaves the input that broke it in its package's
# testdata/fuzz/<Target>/: commit it with the fix, and `go test` keeps
# checking it from then on. docs/fuzz.md is rewritten only when every
# target ran (no regexp).
set -euo pipefail
cd "$(dirname "$0")/.."
budget=${1:-60s}
only=${2:-}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# Every func FuzzX in a _test.go file, with its package directory.
mapfile -t targets < <(git ls-files '*_test.go' | xargs grep -H -o '^func Fuzz[A-Za-z0-9_]*' |
  sed -E 's#^(.*)/[^/]*_test\.go:func (Fuzz[A-Za-z0-9_]*)$#\1 \2#' | sort -k2)
[ ${#targets[@]} -gt 0 ] || { echo "no fuzz targets found" >&2; exit 1; }

rows=()
failed=0
load=$(cut -d' ' -f1 /proc/loadavg 2>/dev/null || echo '?')
logs=${FUZZ_LOGS:-/tmp/protolab-fuzz-logs}
for t in "${targets[@]}"; do
  dir=${t% *}; name=${t#* }
  if [ -n "$only" ] && ! [[ $name =~ $only ]]; then continue; fi
  log=$tmp/$name.log
  printf '==> %-22s ./%s (%s)\n' "$name" "$dir" "$budget"
  result=ok
  # Minimising each new interesting input may take up to a minute by
  # default, with no executions counted meanwhile: a short bound keeps the
  # figure an exploration rate (a failing input is still written).
  if ! go test -run '^$' -fuzz "^${name}\$" -fuzztime "$budget" -fuzzminimizetime "${FUZZ_MINIMIZE:-2s}" "./$dir" >"$log" 2>&1; then
    result=FAILED
    failed=1
    mkdir -p "$logs" && cp "$log" "$logs/"
    if grep -q 'Failing input written to' "$log"; then
      grep -E 'Failing input written to|--- FAIL|panic:|_test.go' "$log" | head -8 | sed 's/^/    /'
    else
      # No input to blame: the fuzzing engine itself gave up (a worker
      # killed, out of memory…): what it said.
      grep -v '^fuzz: elapsed' "$log" | tail -15 | sed 's/^/    /'
    fi
    echo "    (the whole log: $logs/$name.log)"
  fi
  # The last progress line: "fuzz: elapsed: 61s, execs: 123456 (2023/sec), new interesting: 12 (total: 40)"
  line=$(grep -E '^fuzz: elapsed: [0-9]+s, execs: [0-9]+' "$log" | tail -1 || true)
  elapsed=$(sed -E 's/.*elapsed: ([0-9]+)s.*/\1/' <<<"$line")
  execs=$(sed -E 's/.*execs: ([0-9]+).*/\1/' <<<"$line")
  newi=$(sed -nE 's/.*new interesting: ([0-9]+) \(total: ([0-9]+)\).*/\1 (corpus \2)/p' <<<"$line")
  if [ -z "$line" ]; then elapsed=0; execs=0; newi="?"; fi
  rate=$(awk -v e="$execs" -v s="$elapsed" 'BEGIN { if (s > 0) printf "%.0f", e / s; else print "?" }')
  printf '    %s execs in %ss: %s/s, new interesting %s — %s\n' "$execs" "$elapsed" "$rate" "$newi" "$result"
  rows+=("| \`$name\` | \`./$dir\` | ${elapsed} s | $execs | $rate | $newi | $result |")
done

if [ -z "$only" ]; then
  {
    echo "# Fuzz budgets"
    echo
    echo "<!-- Written by bench/fuzz.sh; rerun it to refresh. -->"
    echo
    echo "\`bench/fuzz.sh $budget\` ran every fuzz target of the project for $budget each on $(date -u +%Y-%m-%d)"
    echo "($(go version | awk '{print $3}'), $(nproc) CPUs, $(uname -m), load average $load at the start; the fuzzer runs one worker per CPU)."
    echo "Executions per second are the whole run's average, with each new input's minimisation bounded to ${FUZZ_MINIMIZE:-2s}"
    echo "(the fuzzer's first seconds go to the seed corpus and the cache; the figures vary from run to run with what is in the cache)."
    echo "A failing target leaves its input in the package's \`testdata/fuzz/<Target>/\`, which \`go test\` then runs every time:"
    echo "each one found so far is committed with its fix."
    echo
    echo "| target | package | time | execs | execs/s | new interesting | result |"
    echo "|---|---|---|---|---|---|---|"
    printf '%s\n' "${rows[@]}"
    echo
    echo "Inputs found by fuzzing and kept as tests (\`testdata/fuzz/\`):"
    echo
    found=0
    while IFS= read -r f; do
      printf -- '- %s%s%s\n' '`' "$f" '`'
      found=1
    done < <(git ls-files '*/testdata/fuzz/*')
    [ "$found" = 1 ] || echo "none yet."
  } >docs/fuzz.md
  echo "==> docs/fuzz.md written"
fi
exit $failed
