#!/bin/bash
# Builds the `electrode-lab/debian12` libvirt box offline from Debian's mirror
# (REFERENCE.md 4): no bootloader, the VM boots the box's own kernel directly
# (lv.kernel/lv.initrd set by the box's Vagrantfile).
#
#   build.sh OUT_DIR            writes OUT_DIR/<name>.box and OUT_DIR/box.json
#   DEBIAN_MIRROR=...           mirror (default http://deb.debian.org/debian)
#   BOX_NAME=debian12-k58 BOX_KERNEL=/path/bzImage BOX_KERNEL_RELEASE=5.8.1
#                               the same userland booting THAT kernel instead of
#                               Debian's (all drivers built in: no initrd, no
#                               modules; e.g. ../shared/kernels/vmlinuz-5.8.1-vm)
#
# Needs root, debootstrap, e2fsprogs (mkfs.ext4 -d), qemu-utils.
set -euo pipefail

out=${1:?usage: build.sh OUT_DIR}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
name=${BOX_NAME:-debian12}
own_kernel=${BOX_KERNEL:-}
if [ -n "$own_kernel" ]; then
  [ -r "$own_kernel" ] || { echo "error: BOX_KERNEL=$own_kernel is not readable" >&2; exit 2; }
  [ -n "${BOX_KERNEL_RELEASE:-}" ] || { echo "error: BOX_KERNEL_RELEASE (the image's uname -r) is required with BOX_KERNEL" >&2; exit 2; }
fi
here=$(cd "$(dirname "$0")" && pwd)
pubkey=${VAGRANT_PUBKEY:-/usr/share/rubygems-integration/all/gems/vagrant-2.3.4/keys/vagrant.pub}
size_gb=3

for tool in debootstrap:debootstrap mkfs.ext4:e2fsprogs qemu-img:qemu-utils tar:tar; do
  command -v "${tool%%:*}" >/dev/null || { echo "error: ${tool%%:*} not found: apt-get install ${tool##*:}" >&2; exit 2; }
done
[ "$(id -u)" = 0 ] || { echo "error: debootstrap needs root: run as root" >&2; exit 2; }
[ -r "$pubkey" ] || { echo "error: Vagrant's insecure public key not found at $pubkey: apt-get install vagrant or set VAGRANT_PUBKEY" >&2; exit 2; }

mkdir -p "$out"
work=$(mktemp -d "$out/.build.XXXXXX")
# the work folder holds a root file system: remove it on every exit path
trap 'rm -rf "$work"' EXIT
root=$work/rootfs

echo "step: debootstrap bookworm from $mirror"
# debootstrap only resolves a small base well (gdb's libraries fail to configure
# inside it); everything else is installed with apt in the chroot afterwards.
# with a kernel of our own, Debian's (and its initramfs tooling) stays out; udev
# must then be asked for by name (Debian's kernel package brought it): without
# it no device is initialised, and systemd-networkd never configures a NIC
distro_kernel=linux-image-cloud-amd64,
[ -n "$own_kernel" ] && distro_kernel=
debootstrap --variant=minbase \
  --include=systemd-sysv,udev,dbus,openssh-server,sudo,${distro_kernel}iproute2,python3-minimal \
  bookworm "$root" "$mirror"

echo "step: runtime packages"
# runtime for host-built binaries (--build host): libbpf1, libelf1; attach/inspect: ethtool,
# bpftool; crash capture: gdb.
mount -t proc proc "$root/proc"
trap 'umount "$root/proc" 2>/dev/null || true; rm -rf "$work"' EXIT
DEBIAN_FRONTEND=noninteractive chroot "$root" apt-get -q -y --no-install-recommends install \
  ethtool libbpf1 libelf1 zlib1g bpftool gdb procps ca-certificates
umount "$root/proc"

echo "step: configure the guest"
chroot "$root" useradd -m -s /bin/bash vagrant
install -d -m 700 -o 1000 -g 1000 "$root/home/vagrant/.ssh"
install -m 600 -o 1000 -g 1000 "$pubkey" "$root/home/vagrant/.ssh/authorized_keys"
echo 'vagrant ALL=(ALL) NOPASSWD:ALL' > "$root/etc/sudoers.d/vagrant"
chmod 440 "$root/etc/sudoers.d/vagrant"
echo 'UseDNS no' > "$root/etc/ssh/sshd_config.d/vagrant.conf"
# management NIC only; vagrant configures the lab NIC itself (static, from the plan)
cat > "$root/etc/systemd/network/10-eth0.network" <<'NET'
[Match]
Name=eth0

[Network]
DHCP=ipv4
NET
chroot "$root" systemctl enable systemd-networkd >/dev/null 2>&1
# an EMPTY machine-id: every VM generates its own, else all share one DHCP identity
: > "$root/etc/machine-id"
rm -f "$root/var/lib/dbus/machine-id"
echo "$name" > "$root/etc/hostname"
echo '/dev/vda / ext4 defaults 0 1' > "$root/etc/fstab"
# the management NIC waits for DHCP; nothing else should delay boot under emulation
chroot "$root" systemctl mask systemd-networkd-wait-online.service >/dev/null 2>&1 || true
chroot "$root" apt-get clean

files="metadata.json Vagrantfile electrode-lab.json vmlinuz box.img"
if [ -n "$own_kernel" ]; then
  kver=$BOX_KERNEL_RELEASE
  echo "step: disk image (kernel $kver from $own_kernel, no initrd)"
  cp "$own_kernel" "$work/vmlinuz"
else
  kver=$(basename "$(ls "$root"/boot/vmlinuz-* | sort -V | tail -n1)")
  kver=${kver#vmlinuz-}
  [ -f "$root/boot/initrd.img-$kver" ] || { echo "error: no initrd for $kver in the root file system" >&2; exit 1; }
  echo "step: disk image (kernel $kver)"
  cp "$root/boot/vmlinuz-$kver" "$work/vmlinuz"
  cp "$root/boot/initrd.img-$kver" "$work/initrd.img"
  files="$files initrd.img"
fi
truncate -s "${size_gb}G" "$work/disk.raw"
mkfs.ext4 -q -F -L root -d "$root" "$work/disk.raw"
qemu-img convert -O qcow2 "$work/disk.raw" "$work/box.img"
rm -f "$work/disk.raw"
rm -rf "$root"

printf '{"provider":"libvirt","format":"qcow2","virtual_size":%d}\n' "$size_gb" > "$work/metadata.json"
cp "$here/Vagrantfile.box" "$work/Vagrantfile"
printf '{"name":"electrode-lab/%s","kernel":"%s","built":"%s","mirror":"%s"}\n' \
  "$name" "$kver" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$mirror" > "$work/electrode-lab.json"

echo "step: pack"
# shellcheck disable=SC2086 # the file list is ours, no spaces
tar -C "$work" -cf "$work/$name.box" $files
mv "$work/$name.box" "$out/$name.box"
cp "$work/electrode-lab.json" "$out/box.json"
echo "done: $out/$name.box kernel $kver"
