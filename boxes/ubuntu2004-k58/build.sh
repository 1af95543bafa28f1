#!/bin/bash
# Builds the `electrode-lab/ubuntu2004-k58` box: needs the internet (the
# generic/ubuntu2004 base box, Ubuntu's archive, the kernel mirror).
#
#   build.sh OUT_DIR     OUT_DIR/kernel.sh must exist (written by `electrode-lab box build`)
#
# Note: Ubuntu 20.04's libbpf-dev (0.1) is older than what bpf/ needs
# (libbpf >= 1.0); build bpf/ against a vendored libbpf if it fails.
set -euo pipefail
out=${1:?usage: build.sh OUT_DIR}
here=$(cd "$(dirname "$0")" && pwd)
want=5.8.0-050800-generic
[ -f "$out/kernel.sh" ] || { echo "error: $out/kernel.sh missing: run \`electrode-lab box build ubuntu2004-k58\`" >&2; exit 2; }
command -v vagrant >/dev/null || { echo "error: vagrant not found: apt-get install vagrant vagrant-libvirt" >&2; exit 2; }

work=$(mktemp -d "$out/.build.XXXXXX")
export VAGRANT_CWD=$work VAGRANT_DEFAULT_PROVIDER=libvirt VAGRANT_CHECKPOINT_DISABLE=1
cleanup() { vagrant destroy -f >/dev/null 2>&1 || true; rm -rf "$work"; }
trap cleanup EXIT
cp "$here/Vagrantfile" "$out/kernel.sh" "$work/"

echo "step: base box + toolchain + kernel $want"
vagrant up --provider libvirt
echo "step: reboot into $want"
vagrant reload
vagrant ssh -c "bash /tmp/electrode-lab-kernel.sh assert"
vagrant ssh -c "sudo apt-get clean; sudo rm -f /etc/machine-id; sudo touch /etc/machine-id"
echo "step: package"
rm -f "$out/ubuntu2004-k58.box"
vagrant package --output "$out/ubuntu2004-k58.box"
printf '{"name":"electrode-lab/ubuntu2004-k58","kernel":"%s","built":"%s"}\n' "$want" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" > "$out/box.json"
echo "done: $out/ubuntu2004-k58.box kernel $want"
