#!/usr/bin/env bash
# Prepares a Red Hat Enterprise Linux host (8 or 9) as a protolab lab host.
# RHEL needs two things the seed lab tripped over:
#   - the system must be registered (subscription-manager) so its AppStream
#     repository — which carries container-selinux — is enabled; Docker's
#     docker-ce refuses to install without container-selinux;
#   - on RHEL 8, docker-ce's dependency libcgroup is not in the default
#     repositories either: enabling codeready-builder (or installing
#     libcgroup from the matching CentOS Stream BaseOS) fixes it.
# Then Docker Engine from Docker's RHEL repository, tcpdump, the service
# enabled and the SSH user in the docker group. Idempotent. Run as root.
set -euo pipefail

if [ "$(id -u)" -ne 0 ]; then
  echo "run as root (sudo $0)" >&2
  exit 1
fi

if command -v subscription-manager >/dev/null 2>&1; then
  if ! subscription-manager status >/dev/null 2>&1; then
    if [ -n "${RHSM_ORG:-}" ] && [ -n "${RHSM_ACTIVATION_KEY:-}" ]; then
      subscription-manager register --org "$RHSM_ORG" --activationkey "$RHSM_ACTIVATION_KEY"
    elif [ -n "${RHSM_USERNAME:-}" ] && [ -n "${RHSM_PASSWORD:-}" ]; then
      subscription-manager register --username "$RHSM_USERNAME" --password "$RHSM_PASSWORD" --auto-attach
    else
      echo "this RHEL host is not registered: set RHSM_ORG and RHSM_ACTIVATION_KEY (or RHSM_USERNAME and RHSM_PASSWORD) and run again" >&2
      exit 1
    fi
  fi
  major=$(rpm -E %rhel)
  arch=$(uname -m)
  subscription-manager repos --enable "rhel-${major}-for-${arch}-appstream-rpms" --enable "rhel-${major}-for-${arch}-baseos-rpms"
  if [ "$major" = 8 ]; then
    # libcgroup for docker-ce on RHEL 8.
    subscription-manager repos --enable "codeready-builder-for-rhel-8-${arch}-rpms" || true
  fi
fi

rpm -q container-selinux >/dev/null 2>&1 || dnf install -y container-selinux
if ! rpm -q docker-ce >/dev/null 2>&1; then
  dnf install -y dnf-plugins-core
  if [ ! -f /etc/yum.repos.d/docker-ce.repo ]; then
    dnf config-manager --add-repo https://download.docker.com/linux/rhel/docker-ce.repo
  fi
  dnf install -y docker-ce docker-ce-cli containerd.io
fi
rpm -q tcpdump >/dev/null 2>&1 || dnf install -y tcpdump

systemctl enable --now docker
docker info >/dev/null

user=${SUDO_USER:-vagrant}
if id "$user" >/dev/null 2>&1 && [ "$user" != root ] && ! id -nG "$user" | grep -qw docker; then
  usermod -aG docker "$user"
fi
echo "lab host ready: docker $(docker version --format '{{.Server.Version}}') and $(tcpdump --version 2>&1 | head -1)"
