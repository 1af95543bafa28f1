/**
 * `electrode-lab kernel build`: a Linux 5.8 image a libvirt guest boots with
 * no initrd and no modules (what box debian12-k58 needs), from a source
 * tarball the user brings. The options, the BTF choice, the version check
 * and the config check are pure; src/commands/kernel.ts runs the steps.
 */
import { parseKernelConfig } from './kernelcheck.js';

export interface KernelOption {
  option: string;
  why: string;
}

/** Built in (=y): what the guest boots with and what the lab uses. `make olddefconfig` must keep every one. */
export const GUEST_KERNEL_OPTIONS: KernelOption[] = [
  { option: 'BPF', why: 'eBPF' },
  { option: 'BPF_SYSCALL', why: 'the bpf() system call' },
  { option: 'BPF_JIT', why: 'JIT-compiled fast paths' },
  { option: 'BPF_JIT_ALWAYS_ON', why: 'no interpreter fallback (as the paper ran)' },
  { option: 'CGROUP_BPF', why: "systemd's per-unit BPF" },
  { option: 'XDP_SOCKETS', why: 'AF_XDP' },
  { option: 'NET_SCHED', why: 'qdiscs' },
  { option: 'NET_SCH_INGRESS', why: 'clsact (the TC egress fast path)' },
  { option: 'NET_SCH_NETEM', why: "netem (the bench nemesis' loss, duplication, reordering)" },
  { option: 'NET_CLS_BPF', why: 'the TC BPF classifier' },
  { option: 'NET_CLS_ACT', why: 'TC actions (direct-action mode)' },
  { option: 'NET_ACT_BPF', why: 'the TC bpf action' },
  { option: 'VETH', why: 'veth pairs' },
  { option: 'PACKET', why: "packet sockets (the guest's DHCP client)" },
  { option: 'VIRTIO_PCI', why: 'virtio devices' },
  { option: 'VIRTIO_NET', why: 'virtio-net, native XDP' },
  { option: 'VIRTIO_BLK', why: 'the root disk /dev/vda' },
  { option: 'VIRTIO_CONSOLE', why: 'the virtio console' },
  { option: 'HW_RANDOM_VIRTIO', why: 'entropy for sshd at boot' },
  { option: 'EXT4_FS', why: 'the root file system' },
  { option: 'DEVTMPFS', why: '/dev' },
  { option: 'DEVTMPFS_MOUNT', why: '/dev mounted before init (no initrd)' },
  { option: 'TMPFS', why: '/run, /tmp' },
  { option: 'TMPFS_POSIX_ACL', why: 'systemd' },
  { option: 'TMPFS_XATTR', why: 'systemd' },
  { option: 'FHANDLE', why: 'systemd' },
  { option: 'AUTOFS4_FS', why: 'systemd' },
  { option: 'SERIAL_8250', why: 'ttyS0' },
  { option: 'SERIAL_8250_CONSOLE', why: 'the console log (console=ttyS0)' },
  { option: 'UNWINDER_FRAME_POINTER', why: 'an unwinder without objtool (gcc 12 and 5.8 objtool disagree)' },
];

/** Off: what gcc 12 cannot build on 5.8, or what a guest does not need and only makes the build longer. */
export const GUEST_KERNEL_OFF = ['UNWINDER_ORC', 'STACK_VALIDATION', 'RETPOLINE', 'DRM', 'SOUND', 'WLAN', 'USB_SUPPORT', 'HID', 'MEDIA_SUPPORT', 'FB'];

/** With BTF: DWARF for pahole to turn into BTF (the image itself stays small). */
const BTF_OPTIONS = ['DEBUG_INFO', 'DEBUG_INFO_BTF'];

/** pahole versions that write BTF a 5.8 kernel reads: 1.16 introduced it for vmlinux; newer ones add kinds (float, decl tags, enum64) 5.8 rejects. */
export const PAHOLE_BTF_RANGE = { min: [1, 16], max: [1, 21] } as const;

/** `pahole --version` ("v1.24") -> whether this build gets kernel BTF, and why. */
export function btfChoice(paholeVersion: string | undefined): { btf: boolean; why: string } {
  if (paholeVersion === undefined) return { btf: false, why: 'pahole (apt-get install dwarves) is not installed: no kernel BTF (fine: the fast paths use no CO-RE)' };
  const m = /v?(\d+)\.(\d+)/.exec(paholeVersion);
  if (!m) return { btf: false, why: `cannot read pahole's version '${paholeVersion.trim()}': no kernel BTF` };
  const v = [Number(m[1]), Number(m[2])];
  const cmp = (a: readonly number[], b: readonly number[]) => a[0]! - b[0]! || a[1]! - b[1]!;
  if (cmp(v, PAHOLE_BTF_RANGE.min) < 0) return { btf: false, why: `pahole ${m[1]}.${m[2]} is older than 1.16, which 5.8's BTF needs: no kernel BTF` };
  if (cmp(v, PAHOLE_BTF_RANGE.max) > 0) return { btf: false, why: `pahole ${m[1]}.${m[2]} writes BTF kinds newer than 5.8 reads (1.16-1.21 do not): no kernel BTF (fine: the fast paths use no CO-RE)` };
  return { btf: true, why: `pahole ${m[1]}.${m[2]}: kernel BTF on (DEBUG_INFO + DEBUG_INFO_BTF; the build takes longer)` };
}

/** The options for scripts/config: what to enable and disable. */
export function guestKernelConfig(btf: boolean): { enable: string[]; disable: string[] } {
  const enable = [...GUEST_KERNEL_OPTIONS.map((o) => o.option), ...(btf ? BTF_OPTIONS : [])];
  const disable = [...GUEST_KERNEL_OFF, ...(btf ? [] : BTF_OPTIONS)];
  return { enable, disable };
}

/** The options of `want` that a .config does not have =y (after olddefconfig dropped what a dependency lacks). */
export function configMissing(configText: string, want: string[]): string[] {
  const c = parseKernelConfig(configText);
  return want.filter((o) => c.get(`CONFIG_${o}`) !== 'y');
}

/** The top of a kernel Makefile -> its version ("5.8.1"), or undefined when it is no kernel Makefile. */
export function makefileVersion(text: string): string | undefined {
  const get = (k: string) => new RegExp(`^${k}\\s*=\\s*(\\S*)\\s*$`, 'm').exec(text)?.[1];
  const v = get('VERSION');
  const p = get('PATCHLEVEL');
  if (!v || !p) return undefined;
  const s = get('SUBLEVEL');
  return `${v}.${p}${s && s !== '0' ? `.${s}` : ''}`;
}

/** A source the user names: a tarball (linux-5.8.x.tar.xz/.gz/.bz2) or an unpacked tree. */
export function sourceKind(name: string, isDir: boolean): 'tree' | 'tarball' | undefined {
  if (isDir) return 'tree';
  return /\.tar(\.(xz|gz|bz2|zst))?$|\.tgz$/.test(name) ? 'tarball' : undefined;
}

/** Only 5.8.x: the box and the eBPF code target 5.8 (REFERENCE.md 4). */
export function is58(version: string): boolean {
  return /^5\.8(\.\d+)?$/.test(version);
}
