/**
 * `bench --profile`: one whole-system profile per arm (perf record -a -g on
 * the lab's kernel during the measured part of one trial), kept as folded
 * stacks and drawn as a flame graph; the record names the heaviest symbols
 * and the costs the fast paths exist to remove (wakeups, context switches,
 * copies). Pure: perf script's text in, files' contents and a record out.
 */
import { renderFlameGraph } from './flamegraph.js';
import { foldPerfScript, foldedText, stackShare, symbolShare, topSymbols, totalCount } from './profile.js';

export interface ProfileRecord {
  /** Files relative to the run root. */
  svg: string;
  folded: string;
  samples: number;
  /** Self time, percent of all samples (idle included). */
  top: { symbol: string; share: number }[];
  /** Percent of all samples under the paths that matter here (README "Profiles"). */
  costs: Record<string, number>;
  problem?: string;
}

/** The paths the README's performance notes talk about, by name. */
export const COST_PATHS: Record<string, RegExp[]> = {
  idle: [/^(swapper|cpuidle|do_idle|default_idle)/],
  'ring wakeups (irq_work from bpf_ringbuf)': [/bpf_ringbuf_(submit|output)/, /irq_work_queue/],
  'MSR writes (IPIs, timers)': [/native_write_msr/],
  'context switches': [/__schedule|finish_task_switch/],
  'XDP programs': [/bpf_prog_.*el_xdp|bpf_prog_.*el_xdp_(quorum|reply)|el_xdp_/],
  'TC programs': [/bpf_prog_.*el_tc|el_tc_/],
  'veth XDP copies': [/veth_xdp_rcv_skb|skb_pp_cow_data/],
  'UDP send': [/udp_sendmsg/],
  'UDP receive': [/udp_recvmsg|__skb_recv_udp/],
};

export function profileFromPerfScript(text: string, o: { title: string; subtitle: string; svg: string; folded: string }): { record: ProfileRecord; svgText: string; foldedText: string } {
  const folded = foldPerfScript(text);
  const samples = totalCount(folded);
  const costs: Record<string, number> = {};
  for (const [name, pats] of Object.entries(COST_PATHS)) {
    const share = pats.length === 1 ? symbolShare(folded, pats[0]!) : stackShare(folded, pats);
    costs[name] = Math.round(share.percent * 10) / 10;
  }
  const top = topSymbols(folded, 12).map((t) => ({ symbol: t.symbol, share: Math.round(t.percent * 10) / 10 }));
  return {
    record: { svg: o.svg, folded: o.folded, samples, top, costs, ...(samples ? {} : { problem: 'perf recorded no samples' }) },
    svgText: renderFlameGraph(folded, { title: o.title, subtitle: o.subtitle }),
    foldedText: foldedText(folded),
  };
}
