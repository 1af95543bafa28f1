/**
 * The XDP state of a link, from `ip -d -j link show` JSON: the ONE parser of
 * XDP modes (status, the bench's environment record, the VM NIC checks).
 * iproute2's modes: 1 = native (driver), 2 = generic (skb), 3 = offload,
 * 4 = several programs (then `attached` lists them).
 */
export type XdpModeName = 'native' | 'generic' | 'offload' | 'none' | string;

export interface XdpProgram {
  mode: XdpModeName;
  name?: string;
  id?: number;
}

interface IpLinkJson {
  xdp?: { mode?: number; prog?: { id?: number; name?: string }; attached?: { mode?: number; prog?: { id?: number; name?: string } }[] };
}

const MODES: Record<number, XdpModeName> = { 1: 'native', 2: 'generic', 3: 'offload' };

/** Every XDP program on the link(s) in the JSON ([] when none, or the text is not ip's JSON). */
export function xdpPrograms(ipLinkJson: string): XdpProgram[] {
  let links: IpLinkJson[];
  try {
    links = JSON.parse(ipLinkJson) as IpLinkJson[];
  } catch {
    return [];
  }
  const out: XdpProgram[] = [];
  for (const l of Array.isArray(links) ? links : []) {
    const x = l.xdp;
    if (!x) continue;
    const progs = x.attached ?? (x.prog ? [{ mode: x.mode, prog: x.prog }] : []);
    for (const a of progs) {
      out.push({
        mode: MODES[a.mode ?? 0] ?? `mode ${String(a.mode)}`,
        ...(a.prog?.name ? { name: a.prog.name } : {}),
        ...(a.prog?.id !== undefined ? { id: a.prog.id } : {}),
      });
    }
  }
  return out;
}

/** The mode of the first program: native, generic, offload, or none. */
export function xdpMode(ipLinkJson: string): XdpModeName {
  return xdpPrograms(ipLinkJson)[0]?.mode ?? 'none';
}
