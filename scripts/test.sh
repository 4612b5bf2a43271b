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
# tmux (drives the explorer end to end in a real terminal).
apt_packages=(tcpdump tshark util-linux openssl tmux)

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

say "gofmt"
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
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
go test -race -count=1 -timeout 15m "${pkgs[@]}"
