/**
 * The pinned guest kernel (REFERENCE.md 4): Ubuntu mainline 5.8.0, the four
 * .debs of build 202008022230, verified against checksums stored in the repo
 * (boxes/kernel-pins.lock) or, on first use, taken from the upstream CHECKSUMS
 * file and written to that lock file (trust on first use) so later labs reuse
 * them. The provisioning script is generated here; it runs inside the guest
 * in steps (fetch, verify, install, hold, grub, assert) so tests can run the
 * verification, hold and GRUB steps for real against files they create.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { LabError } from '../core/diagnostics.js';
import { projectRoot } from '../edges/paths.js';

export interface KernelPin {
  /** `uname -r` after boot. */
  release: string;
  /** Debian package version. */
  version: string;
  buildStamp: string;
  /** Mirror folder path below the mirror root. */
  mirrorPath: string;
  files: string[];
  /** GRUB menu entry path for GRUB_DEFAULT. */
  grubEntry: string;
}

export const DEFAULT_KERNEL_MIRROR = 'https://kernel.ubuntu.com/mainline';

const K58 = '5.8.0-050800';
const K58_STAMP = '202008022230';
const K58_VERSION = `${K58}.${K58_STAMP}`;

export const KERNEL_PINS: Record<string, KernelPin> = {
  [`${K58}-generic`]: {
    release: `${K58}-generic`,
    version: K58_VERSION,
    buildStamp: K58_STAMP,
    mirrorPath: 'v5.8/amd64',
    files: [
      `linux-headers-${K58}_${K58_VERSION}_all.deb`,
      `linux-headers-${K58}-generic_${K58_VERSION}_amd64.deb`,
      `linux-image-unsigned-${K58}-generic_${K58_VERSION}_amd64.deb`,
      `linux-modules-${K58}-generic_${K58_VERSION}_amd64.deb`,
    ],
    grubEntry: `Advanced options for Ubuntu>Ubuntu, with Linux ${K58}-generic`,
  },
};

/** Meta-packages that would pull a newer kernel over the pin. */
export const HELD_PACKAGES = ['linux-generic', 'linux-image-generic', 'linux-headers-generic'];

/** The pin for a spec's `vm.kernel`; undefined for 'box' (keep the box's kernel) or a release with no install recipe. */
export function kernelPin(kernel: string): KernelPin | undefined {
  return KERNEL_PINS[kernel];
}

/** $ELECTRODE_LAB_KERNEL_MIRROR, else kernel.ubuntu.com's mainline folder. */
export function kernelMirror(env: NodeJS.ProcessEnv = process.env): string {
  return (env.ELECTRODE_LAB_KERNEL_MIRROR || DEFAULT_KERNEL_MIRROR).replace(/\/+$/, '');
}

export function pinUrl(pin: KernelPin, mirror: string, file: string): string {
  return `${mirror}/${pin.mirrorPath}/${file}`;
}

export function defaultLockFile(): string {
  return join(projectRoot(), 'boxes', 'kernel-pins.lock');
}

/** file name -> sha256 (lower-case hex). */
export type Checksums = Map<string, string>;

const SHA256 = /^[0-9a-f]{64}$/;

/**
 * The lock file is `sha256sum -c` format (`<sha256>  <file>`) with `#`
 * comments, so a person can check downloads with the tool they know.
 */
export function parseLock(text: string, source: string): Checksums {
  const out: Checksums = new Map();
  text.split('\n').forEach((raw, i) => {
    const line = raw.trim();
    if (!line || line.startsWith('#')) return;
    const m = /^([0-9A-Fa-f]+)\s+\*?(\S+)$/.exec(line);
    if (!m || !SHA256.test(m[1]!.toLowerCase())) {
      throw new LabError(`${source}:${i + 1}: expected '<sha256>  <file>', got '${line}'; fix or delete the line (it is re-learned from CHECKSUMS)`, 'KERNEL_LOCK_SYNTAX');
    }
    const prev = out.get(m[2]!);
    if (prev && prev !== m[1]!.toLowerCase()) {
      throw new LabError(`${source}:${i + 1}: two different checksums for ${m[2]}; keep the one you verified`, 'KERNEL_LOCK_CONFLICT');
    }
    out.set(m[2]!, m[1]!.toLowerCase());
  });
  return out;
}

export function formatLock(sums: Checksums, header: string[]): string {
  const lines = header.map((h) => `# ${h}`);
  for (const [file, sum] of [...sums].sort((a, b) => a[0].localeCompare(b[0]))) lines.push(`${sum}  ${file}`);
  return lines.join('\n') + '\n';
}

/**
 * Ubuntu mainline CHECKSUMS: `# Checksums-Sha1:` and `# Checksums-Sha256:`
 * sections of `<hex>  <file>`. Returns the SHA-256 section only.
 */
export function parseUpstreamChecksums(text: string): Checksums {
  const out: Checksums = new Map();
  let section = '';
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    const head = /^#\s*Checksums-(\w+):/i.exec(line);
    if (head) {
      section = head[1]!.toLowerCase();
      continue;
    }
    if (!line || line.startsWith('#')) continue;
    const m = /^([0-9a-fA-F]+)\s+\*?(\S+)$/.exec(line);
    // files listed before any header: tell SHA-256 from SHA-1 by length
    if (m && (section === 'sha256' || (section === '' && m[1]!.length === 64)) && SHA256.test(m[1]!.toLowerCase())) out.set(m[2]!, m[1]!.toLowerCase());
  }
  return out;
}

export interface ResolvedChecksums {
  sums: Checksums;
  source: 'lock' | 'upstream (trust on first use, written to the lock file)';
}

/**
 * The pin's checksums: from the lock file when it lists every file; else
 * fetched from the mirror's CHECKSUMS (the fetcher is injected: tests fake
 * the download), checked to cover every file and to agree with what the lock
 * already has, and written to the lock file.
 */
export async function resolveChecksums(pin: KernelPin, lockFile: string, mirror: string, fetchText: (url: string) => Promise<string>): Promise<ResolvedChecksums> {
  const lock = existsSync(lockFile) ? parseLock(readFileSync(lockFile, 'utf8'), lockFile) : new Map<string, string>();
  if (pin.files.every((f) => lock.has(f))) {
    return { sums: new Map(pin.files.map((f) => [f, lock.get(f)!])), source: 'lock' };
  }
  const url = pinUrl(pin, mirror, 'CHECKSUMS');
  let text: string;
  try {
    text = await fetchText(url);
  } catch (e) {
    throw new LabError(
      `cannot fetch ${url} (${(e as Error).message}) and ${lockFile} has no checksums for kernel ${pin.release}; set ELECTRODE_LAB_KERNEL_MIRROR to a reachable mirror or add the four sha256 lines to the lock file`,
      'KERNEL_CHECKSUMS_UNAVAILABLE',
    );
  }
  const upstream = parseUpstreamChecksums(text);
  const missing = pin.files.filter((f) => !upstream.has(f));
  if (missing.length) {
    throw new LabError(`${url} lists no SHA-256 for ${missing.join(', ')}; is the mirror folder right (${pin.mirrorPath})?`, 'KERNEL_CHECKSUMS_INCOMPLETE');
  }
  for (const f of pin.files) {
    const had = lock.get(f);
    if (had && had !== upstream.get(f)) {
      throw new LabError(`${url} says ${f} has sha256 ${upstream.get(f)}, ${lockFile} pins ${had}: the mirror changed the file; do not install it (check the mirror, then fix the lock file by hand)`, 'KERNEL_CHECKSUM_MISMATCH');
    }
    lock.set(f, upstream.get(f)!);
  }
  writeFileSync(lockFile, formatLock(lock, ['electrode-lab kernel pins: sha256sum -c format', `learned from ${url} (trust on first use); commit this file`]));
  return { sums: new Map(pin.files.map((f) => [f, lock.get(f)!])), source: 'upstream (trust on first use, written to the lock file)' };
}

const shq = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

/**
 * The guest-side script. `bash script <step>...` with steps fetch, verify,
 * install, hold, grub, assert, or `all` (= every step but assert: the
 * provider reboots the VM, then runs `assert`). Paths can be redirected for
 * tests: EL_KERNEL_DIR, EL_GRUB_DEFAULTS, EL_UPDATE_GRUB, EL_DPKG_ADMINDIR.
 */
export function kernelInstallScript(pin: KernelPin, sums: Checksums, mirror: string): string {
  const sumLines = pin.files.map((f) => {
    const s = sums.get(f);
    if (!s) throw new LabError(`no checksum for ${f}; resolve the pin's checksums first`, 'KERNEL_CHECKSUMS_INCOMPLETE');
    return `${s}  ${f}`;
  });
  return `#!/bin/bash
# electrode-lab: install and pin kernel ${pin.release} (generated, do not edit)
set -euo pipefail
want=${shq(pin.release)}
dir=\${EL_KERNEL_DIR:-/var/cache/electrode-lab/kernel}
grub_defaults=\${EL_GRUB_DEFAULTS:-/etc/default/grub}
update_grub=\${EL_UPDATE_GRUB:-update-grub}
admindir=\${EL_DPKG_ADMINDIR:-/var/lib/dpkg}
files=(${pin.files.map(shq).join(' ')})
held=(${HELD_PACKAGES.join(' ')})

sums() {
  cat <<'SUMS'
${sumLines.join('\n')}
SUMS
}

fetch() {
  mkdir -p "$dir"
  for f in "\${files[@]}"; do
    # keep a file that already verifies: reruns do not download again
    if [ -f "$dir/$f" ] && (cd "$dir" && sums | grep -F "  $f" | sha256sum --status -c -); then continue; fi
    url=${shq(`${mirror}/${pin.mirrorPath}`)}/$f
    echo "kernel: fetching $url"
    if command -v curl >/dev/null; then curl -fsSL --retry 3 -o "$dir/$f.part" "$url"
    else wget -q -O "$dir/$f.part" "$url"; fi
    mv "$dir/$f.part" "$dir/$f"
  done
}

verify() {
  local bad=0
  for f in "\${files[@]}"; do
    if [ ! -f "$dir/$f" ]; then echo "kernel: MISSING $dir/$f" >&2; bad=1; continue; fi
    if ! (cd "$dir" && sums | grep -F "  $f" | sha256sum --status -c -); then
      echo "kernel: CHECKSUM MISMATCH $dir/$f (pinned: $(sums | grep -F "  $f" | cut -d' ' -f1), got: $(sha256sum "$dir/$f" | cut -d' ' -f1)); delete it to download again, or fix the mirror" >&2
      bad=1
    fi
  done
  [ "$bad" = 0 ] || exit 3
  echo "kernel: all \${#files[@]} files match the pin"
}

install_debs() {
  (cd "$dir" && DEBIAN_FRONTEND=noninteractive dpkg -i "\${files[@]}")
}

hold() {
  for p in "\${held[@]}"; do echo "$p hold"; done | dpkg --admindir="$admindir" --set-selections
  echo "kernel: held \${held[*]}"
}

grub() {
  local line='GRUB_DEFAULT="'${shq(pin.grubEntry)}'"'
  if grep -q '^GRUB_DEFAULT=' "$grub_defaults"; then
    # replace in place; a | delimiter because the entry holds no |
    sed -i "s|^GRUB_DEFAULT=.*|$line|" "$grub_defaults"
  else
    echo "$line" >> "$grub_defaults"
  fi
  $update_grub
  echo "kernel: GRUB default is ${pin.grubEntry}"
}

assert_running() {
  local got
  got=$(uname -r)
  if [ "$got" != "$want" ]; then
    echo "kernel: running $got, the lab pins $want; check the GRUB menu (grep GRUB_DEFAULT $grub_defaults) and reboot" >&2
    exit 4
  fi
  echo "kernel: running $want"
}

[ $# -gt 0 ] || set -- all
for step in "$@"; do
  case "$step" in
    fetch) fetch ;;
    verify) verify ;;
    install) install_debs ;;
    hold) hold ;;
    grub) grub ;;
    assert) assert_running ;;
    all)
      if [ "$(uname -r)" = "$want" ]; then echo "kernel: already running $want"; hold; continue; fi
      fetch; verify; install_debs; hold; grub ;;
    *) echo "usage: $0 [fetch|verify|install|hold|grub|assert|all]..." >&2; exit 2 ;;
  esac
done
`;
}
