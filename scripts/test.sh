#!/usr/bin/env bash
# The one command that runs every protolab test. On Debian, as root, it first
# installs what the tests need (once: installs are skipped when present), then
# runs gofmt, go vet and the whole suite with the race detector. Under this
# script a test whose component is missing fails instead of skipping
# (PROTOLAB_TEST_STRICT=1).
#
#   scripts/test.sh            # everything
#   scripts/test.sh ./lab/...  # only some packages (still installs)
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '==> %s\n' "$*"; }

# Debian packages the tests use: tcpdump (the pcap-stream capture source),
# tshark (cross-checks protolab's decoding), util-linux (setpriv, to run as an
# unprivileged user), openssl (a non-Go TLS client for the decryption tests),
# tmux (drives the explorer end to end in a real terminal), docker.io and
# docker-compose (the docker provider's tests run a real engine; no image is
# ever pulled: the lab builds its own FROM scratch), openssh-server and
# openssh-client (the SSH runner's tests run a real sshd and ssh-agent),
# procps (pkill), shellcheck (the provision scripts), vagrant (validates the
# Vagrantfile and runs the vagrant provider's end-to-end test on its docker
# provider), debootstrap (builds that test's box once; kept as a cache) and
# chromium (browser/ drives it through playwright-core against the chat page;
# Node 20+ with npm is expected on the machine) and prometheus (its promtool
# checks a scrape of the apps' /metrics), busybox-static (the shell a web
# terminal's container image carries), protobuf-compiler (checks the gRPC code
# generated from protocol/labrpc/protolab.proto is current), zsh and fish
# (check the completion scripts protolab-tui prints for them).
apt_packages=(tcpdump tshark util-linux openssl tmux docker.io docker-compose openssh-server openssh-client procps shellcheck vagrant debootstrap chromium prometheus busybox-static protobuf-compiler zsh fish)

install_missing() {
  local missing=()
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null; then
    say "missing packages: ${missing[*]} (run as root on Debian to install them)"
    return 1
  fi
  say "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  # tshark asks whether non-root users may capture; answer for it.
  echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections 2>/dev/null || true
  if ! apt-get install -y -q --no-install-recommends "${missing[@]}" >/tmp/protolab-apt.log 2>&1; then
    apt-get update -q >/tmp/protolab-apt-update.log 2>&1
    apt-get install -y -q --no-install-recommends "${missing[@]}" >/tmp/protolab-apt.log 2>&1 ||
      { cat /tmp/protolab-apt.log; return 1; }
  fi
}

command -v go >/dev/null || { echo "go is not on PATH: install Go 1.24 or newer" >&2; exit 1; }
if [ ${#apt_packages[@]} -gt 0 ]; then
  install_missing "${apt_packages[@]}"
fi

# A Docker engine for the docker provider's tests: started in the background
# when none answers, and waited for.
if ! docker info >/dev/null 2>&1; then
  if [ "$(id -u)" -eq 0 ] && command -v dockerd >/dev/null; then
    say "starting dockerd"
    nohup dockerd >/tmp/protolab-dockerd.log 2>&1 &
    for _ in $(seq 1 60); do
      docker info >/dev/null 2>&1 && break
      sleep 0.5
    done
    docker info >/dev/null 2>&1 || { tail -20 /tmp/protolab-dockerd.log; echo "dockerd did not start" >&2; exit 1; }
  else
    say "no Docker engine answers (run as root to have one started)"
  fi
fi

# The browser test's npm packages (playwright-core, pinned by
# browser/package-lock.json): `npm ci` when node_modules is older than the lock.
if command -v npm >/dev/null; then
  if [ ! -f browser/node_modules/.package-lock.json ] || [ browser/package-lock.json -nt browser/node_modules/.package-lock.json ]; then
    say "npm ci (browser/)"
    (cd browser && npm ci --no-audit --no-fund --loglevel=error)
  fi
  # The web terminal's xterm.js, embedded by the build (the term app's test
  # and its browser test need it).
  if [ ! -f apps/webapp/term/xterm.js ] || [ browser/package-lock.json -nt apps/webapp/term/xterm.js ]; then
    say "web terminal assets (scripts/term-assets.sh)"
    scripts/term-assets.sh
  fi
else
  say "npm is missing: install Node 20 or newer with npm for the browser test"
fi

say "gofmt"
unformatted=$( (git ls-files -z '*.go' 2>/dev/null || find . -name '*.go' -print0) | xargs -0 gofmt -l)
if [ -n "$unformatted" ]; then
  echo "gofmt would change: $unformatted" >&2
  exit 1
fi
say "go vet"
go vet ./...

pkgs=("$@")
[ ${#pkgs[@]} -gt 0 ] || pkgs=(./...)
say "go test -race ${pkgs[*]}"
export PROTOLAB_TEST_STRICT=1
# Where tests keep what a person looks at afterwards (the browser tests'
# screenshots).
export PROTOLAB_ARTEFACTS="${PROTOLAB_ARTEFACTS:-/tmp/protolab-artefacts}"
mkdir -p "$PROTOLAB_ARTEFACTS"
go test -race -count=1 -timeout 15m "${pkgs[@]}"
say "artefacts (screenshots) in $PROTOLAB_ARTEFACTS"
