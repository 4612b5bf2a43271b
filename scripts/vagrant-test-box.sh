#!/usr/bin/env bash
# Builds the Docker image the Vagrant tests use as their "VM": a Debian
# bookworm rootfs (debootstrap minbase with openssh-server, sudo, tcpdump)
# with a `vagrant` user that has Vagrant's insecure public key and
# password-less sudo, running `sshd -D`. Kept as a cache: nothing is done when
# the image exists; the rootfs is kept under /var/cache/protolab too.
set -euo pipefail

# The docker group inside gets the gid of this host's engine socket, which the
# tests' Vagrantfile mounts into the "VM": the tag says which gid it has.
sockgid=$(stat -c %g /var/run/docker.sock 2>/dev/null || echo 0)
image=${PROTOLAB_VAGRANT_BOX:-protolab-vagrant-box:bookworm-gid$sockgid}
if docker image inspect "$image" >/dev/null 2>&1; then
  exit 0
fi
root=/var/cache/protolab/rootfs-bookworm-2
mirror=${PROTOLAB_DEBIAN_MIRROR:-http://deb.debian.org/debian}
if [ ! -x "$root/usr/sbin/sshd" ]; then
  rm -rf "$root"
  mkdir -p "$root"
  debootstrap --variant=minbase --include=openssh-server,sudo,tcpdump,iproute2,ca-certificates,docker.io bookworm "$root" "$mirror"
fi

pub=$( (find /usr/share/rubygems-integration /usr/lib/ruby /opt/vagrant -name vagrant.pub -path '*keys*' 2>/dev/null || true) | head -1)
[ -n "$pub" ] || { echo "Vagrant's insecure public key (keys/vagrant.pub) not found: install vagrant" >&2; exit 1; }

chroot "$root" /bin/sh -c 'id vagrant >/dev/null 2>&1 || useradd -m -s /bin/bash vagrant'
install -d -m 0700 "$root/home/vagrant/.ssh"
install -m 0600 "$pub" "$root/home/vagrant/.ssh/authorized_keys"
chroot "$root" chown -R vagrant:vagrant /home/vagrant/.ssh
echo 'vagrant ALL=(ALL) NOPASSWD: ALL' > "$root/etc/sudoers.d/vagrant"
chmod 0440 "$root/etc/sudoers.d/vagrant"
chroot "$root" ssh-keygen -A
mkdir -p "$root/run/sshd"
chroot "$root" groupmod -o -g "$sockgid" docker
cp /etc/apt/sources.list.d/debian.sources "$root/etc/apt/sources.list.d/" 2>/dev/null || true

tar -C "$root" -c . | docker import -c 'CMD ["/usr/sbin/sshd", "-D", "-e"]' -c 'EXPOSE 22' - "$image"
echo "built $image"
