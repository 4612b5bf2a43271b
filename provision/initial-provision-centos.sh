#!/usr/bin/env bash
# Prepares a CentOS Stream, Rocky or AlmaLinux host (8 or 9) as a protolab
# lab host: Docker Engine from Docker's CentOS repository (its docker-ce
# needs container-selinux, which these distributions carry in AppStream),
# tcpdump for remote capture, the service enabled, and the SSH user in the
# docker group. Idempotent. Run as root (or via sudo).
set -euo pipefail

if [ "$(id -u)" -ne 0 ]; then
  echo "run as root (sudo $0)" >&2
  exit 1
fi

pm=dnf
command -v dnf >/dev/null 2>&1 || pm=yum

# container-selinux comes first: docker-ce's install fails without it (the
# seed lab's RHEL 8 pitfall), and on these distributions AppStream has it.
if ! rpm -q container-selinux >/dev/null 2>&1; then
  "$pm" install -y container-selinux
fi

if ! rpm -q docker-ce >/dev/null 2>&1; then
  "$pm" install -y dnf-plugins-core || "$pm" install -y yum-utils
  if [ ! -f /etc/yum.repos.d/docker-ce.repo ]; then
    "$pm" config-manager --add-repo https://download.docker.com/linux/centos/docker-ce.repo
  fi
  "$pm" install -y docker-ce docker-ce-cli containerd.io
fi

rpm -q tcpdump >/dev/null 2>&1 || "$pm" install -y tcpdump

systemctl enable --now docker
docker info >/dev/null

user=${SUDO_USER:-vagrant}
if id "$user" >/dev/null 2>&1 && [ "$user" != root ] && ! id -nG "$user" | grep -qw docker; then
  usermod -aG docker "$user"
  echo "added $user to the docker group (takes effect at the next login)"
fi
echo "lab host ready: docker $(docker version --format '{{.Server.Version}}') and $(tcpdump --version 2>&1 | head -1)"
