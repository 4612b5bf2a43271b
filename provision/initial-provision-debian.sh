#!/usr/bin/env bash
# Prepares a Debian or Ubuntu host as a protolab lab host: Docker Engine
# (Debian's docker.io: no registry, no third-party repository), tcpdump for
# remote capture, the service enabled, and the SSH user in the docker group.
# Idempotent: running it again changes nothing. Run as root (or via sudo).
set -euo pipefail

if [ "$(id -u)" -ne 0 ]; then
  echo "run as root (sudo $0)" >&2
  exit 1
fi

export DEBIAN_FRONTEND=noninteractive
missing=()
for pkg in docker.io tcpdump; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing ${missing[*]}"
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
  systemctl enable --now docker
elif ! docker info >/dev/null 2>&1; then
  # No systemd (a container standing in for a VM): start the daemon ourselves.
  nohup dockerd >/var/log/protolab-dockerd.log 2>&1 &
  for _ in $(seq 1 60); do
    docker info >/dev/null 2>&1 && break
    sleep 0.5
  done
fi
docker info >/dev/null

user=${SUDO_USER:-}
if [ -n "$user" ] && [ "$user" != root ] && ! id -nG "$user" | grep -qw docker; then
  usermod -aG docker "$user"
  echo "added $user to the docker group (takes effect at the next login)"
fi
echo "lab host ready: $(docker version --format '{{.Server.Version}}' 2>/dev/null || echo docker) and $(tcpdump --version 2>&1 | head -1)"
