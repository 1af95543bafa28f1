/**
 * The course labs: what each needs, how long it takes, which electrode-lab
 * labs it creates, its hints and its check. `electrode-lab lab ...` reads
 * everything from here; the exercises themselves are labs/<slug>/README.md
 * with the answers template labs/<slug>/answers.yaml.
 */
import { join } from 'node:path';
import { DiagnosticsError } from '../core/diagnostics.js';
import { projectRoot } from '../edges/paths.js';
import { SpecInput } from '../core/spec.js';
import { Answers } from './answers.js';
import { Verdict } from './check.js';
import { checkLab05 } from './crashhunt.js';
import { Evidence } from './evidence.js';
import { checkLab01 } from './lab01.js';
import { checkLab02, LAB02_CRASH_LAB } from './lab02.js';
import { checkLab03, LAB03_BENCH_LAB } from './lab03.js';
import { checkLab04, LAB04_LAB } from './lab04.js';
import { checkLab06, LAB06_FILES } from './lab06.js';
import { checkLab07, LAB07_LAB } from './lab07.js';

export interface LabDef {
  /** `01` */
  id: string;
  /** `01-view-change`: the folder under labs/ and the work folder's name. */
  slug: string;
  title: string;
  minutes: number;
  /** Ids of the labs to do first. */
  prerequisites: string[];
  goals: string;
  /** The electrode-lab lab `lab start` brings up (and its spec). */
  spec: SpecInput & { name: string; replicas: number };
  /** Other lab names the exercise's commands create (a bench's own lab): `reset` removes them and their runs. */
  extraLabs: string[];
  /** Lab names whose run folders are evidence (bench runs, the incident). */
  runLabs: string[];
  /** Host commands the exercise's README runs (beyond `.ci/setup`'s base), with the Debian package that has each: `lab start` names the missing ones. */
  tools?: { command: string; debianPackage: string }[];
  /** Crash explanations of runs on the lab wait in the work folder until the check passes (src/course/holdback.ts): the exercise is to explain the crash. */
  holdsExplanations?: boolean;
  /** `lab start` runs the crash-hunt incident after `up`. */
  incident?: boolean;
  /** Files the README's commands write in the project folder, named `<prefix>...`: `lab check` copies them as evidence, `lab reset` removes them. */
  projectFiles?: { prefix: string };
  hints: string[];
  check(answers: Answers, ev: Evidence): Verdict;
}

export const LABS: readonly LabDef[] = [
  {
    id: '01',
    slug: '01-view-change',
    title: 'a leader dies',
    minutes: 45,
    prerequisites: [],
    goals: 'the normal case and a view change of Viewstamped Replication, read from real packets and logs',
    spec: { name: 'lab01', replicas: 3, provider: 'netns', subnet: '10.79.1.0/24' },
    tools: [{ command: 'tcpdump', debianPackage: 'tcpdump' }],
    extraLabs: [],
    runLabs: [],
    hints: [
      'The header is little-endian and starts right after the 8-byte UDP header: in tcpdump -X the type is the 6th byte of the payload (offset 0x21 of the IP packet).',
      'Idle followers also send a PrepareOK every heartbeat (flag 0x08, EL_F_REPORT) so the leader learns how far they got: look for the Prepare (type 3) your client caused and the PrepareOK that answers it.',
      'Every `start` writes an "electrode-lab start: run ..." line into each replica log first: the view change you caused is after the last one. `grep -n "no word\\|view" <log>` shows the timeline.',
      'The leader of view v is replica v % n. The new leader logs "view N normal (elected), leader N (me), last op X": X is what it carried over from view 0.',
    ],
    check: checkLab01,
  },
  {
    id: '02',
    slug: '02-five-and-seven',
    title: 'why 5 and 7 replicas crashed',
    minutes: 60,
    prerequisites: ['01'],
    goals: 'one plan for every cluster size; the broadcast fast path counted; a crash explained from its crash folder (backtrace, eBPF state, kernel log) without opening a debugger',
    spec: { name: 'lab02', replicas: 7, provider: 'netns', subnet: '10.79.2.0/24' },
    extraLabs: [LAB02_CRASH_LAB],
    runLabs: [LAB02_CRASH_LAB],
    hints: [
      'A MAC is six bytes: 02:4c, two bytes from the lab name, 00 for a replica (01 for a client), the index. `render 7 --name other` changes exactly two of them.',
      'The broadcast row\'s PASSED counts frames fanned out, CLONED the copies made: cloned = (n - 2) x passed, for Prepares AND Commits.',
      '`electrode-lab crashes` prints each crash with its trial (replicas/arm/threads/repeat): open the folder of the `all` trial.',
      'gdb prints the crashing thread first: frames #0, #1, ... from the innermost; inlined functions get frames of their own, so a name can appear twice. The on_* frame (or vr_kernel_record: a Prepare the fast reply handed over through its ring buffer) tells which message was being handled.',
    ],
    check: checkLab02,
  },
  {
    id: '03',
    slug: '03-fast-paths',
    title: 'the three fast paths, measured',
    minutes: 75,
    prerequisites: ['01'],
    goals: 'what each fast path removes from user space, read from kernel counters; the lease that stops a dead replica\'s kernel; what happens when user space and the kernel disagree; a benchmark of every arm and its noise',
    spec: { name: 'lab03', replicas: 5, provider: 'netns', subnet: '10.79.3.0/24' },
    extraLabs: [LAB03_BENCH_LAB],
    runLabs: [LAB03_BENCH_LAB],
    hints: [
      'With n = 5 the leader gets 4 PrepareOKs per op; the f-th (2nd) completes the quorum. Idle followers also report every heartbeat: those pass too.',
      'el_fr_decide in native/include/el_fastpath_rules.h returns one verdict per reason; only EL_FR_ACK answers from the kernel.',
      'After `tc qdisc del dev eth0 clsact` on replica0 nothing fans its Prepares out, but el_config still says broadcast is on: who still gets each Prepare, and who only the retransmissions?',
      '`electrode-lab report` prints "vs baseline" as 1.23x: write 1.23.',
    ],
    check: checkLab03,
  },
  {
    id: '04',
    slug: '04-upstream',
    title: "the course project's code, run as it was",
    minutes: 60,
    prerequisites: ['02'],
    goals: "run the upstream Electrode code with a course scenario's own files, watch the 7-replica crash get captured, explain it from the crash folder, then rerun with generated values; the shared-bpffs mistake on purpose",
    spec: { name: LAB04_LAB, replicas: 7, provider: 'netns', subnet: '10.79.4.0/24' },
    extraLabs: [],
    runLabs: [LAB04_LAB],
    holdsExplanations: true,
    hints: [
      'The run folder of `upstream start` has scenario.txt (what the files said, what happened, what changes), scenario-to-generated.diff and one crash folder per dead process; `electrode-lab crashes <run>` lists them. The lab holds back the explanation electrode-lab writes for each crash (explain.txt) until your check passes; `electrode-lab lab hint 04 --explanations` gives it earlier.',
      "backtrace.txt starts with the crashing thread: the innermost frames are protobuf's accessors (DoViewChangeMessage_LogEntry::opnum); the first VRReplica:: frame below them is upstream's code.",
      'lib/transportcommon.h, SendMessageToAll: look for the `break` under the broadcast bit. With TC_BROADCAST the kernel was meant to make the other copies.',
      "A pin is a file in ONE bpffs: with --shared-bpffs every node's /sys/fs/bpf is the same folder, as the compose file's `/sys/fs/bpf:/sys/fs/bpf` volume made it for every container.",
    ],
    check: checkLab04,
  },
  {
    id: '05',
    slug: '05-crash-hunt',
    title: 'the crash hunt',
    minutes: 45,
    prerequisites: ['02', '03'],
    goals: 'diagnose a planted fault (one of the course project\'s failure classes) from a crash folder, `stats` and `status` alone',
    spec: { name: 'lab05', replicas: 5, provider: 'netns', subnet: '10.79.5.0/24' },
    extraLabs: [],
    runLabs: ['lab05'],
    incident: true,
    hints: [
      'Start with `electrode-lab crashes <run>`: a SIGABRT is the core the incident took of a survivor on purpose; any other signal is a crash of its own.',
      'In the SIGABRT folder\'s bpf.json compare ctrl.view with the last "view N normal" of its log.tail, config.my_idx with the node, config.my_port with the PORT column of `status`.',
      '`stats --name lab05`: do the rows differ the way the replicas\' roles do? Rows identical on different nodes, or a replica whose dispatch SEEN stays far below the others\', both mean something.',
      'Every fault class leaves one clear trace in those three places; the other traces are consequences. Name the cause, not the consequence.',
    ],
    check: checkLab05,
  },
  {
    id: '06',
    slug: '06-comes-back',
    title: 'a replica comes back',
    minutes: 45,
    prerequisites: ['01'],
    goals: 'a crashed follower restarted: recovery (VR Revisited 4.3) read from status and its log, the snapshot it installs; then the same restart with recovery switched off on purpose, and the acknowledged writes that loses found with check-history',
    spec: { name: 'lab06', replicas: 3, provider: 'netns', subnet: '10.79.6.0/24' },
    extraLabs: [],
    runLabs: [],
    projectFiles: { prefix: LAB06_FILES.prefix },
    hints: [
      'Every line replica1 wrote after `electrode-lab restart: replica1 (incarnation 1)` is its new life: `grep -A6 "electrode-lab restart" <log>`.',
      'A restarted replica asks every other replica (a Recovery with a fresh nonce) and waits for f+1 normal answers, the latest view\'s leader among them: that leader\'s state is the one it installs.',
      'Without recovery, replica1 came back empty but normal: it voted in the view change as if it had never acknowledged anything. The view change keeps the log with the highest (last normal view, last op): compare the two it had.',
      'check-history --committed takes the committed logs of the replicas that are still the lab: replica1\'s second life (lab06-committed.replica1.log.1) and replica2\'s; replica0 was killed.',
    ],
    check: checkLab06,
  },
  {
    id: '07',
    slug: '07-one-pays',
    title: 'why one fast path pays and another does not',
    minutes: 45,
    prerequisites: ['03'],
    goals: 'read whole-system flame graphs of baseline, quorum prune and fast reply: where the leader\'s time goes, why pruning PrepareOKs gains little on a veth and removing the followers\' wakeups pays, and what native XDP on virtio-net changes',
    spec: { name: LAB07_LAB, replicas: 3, provider: 'netns', subnet: '10.79.7.0/24' },
    tools: [
      { command: 'perf', debianPackage: 'linux-perf' },
      { command: 'jq', debianPackage: 'jq' },
    ],
    extraLabs: [],
    runLabs: [LAB07_LAB],
    hints: [
      '`electrode-lab report` prints ops/s, "vs baseline" and "leader/follower us/op"; the README\'s jq line prints each record\'s profile.costs and the first entries of profile.top.',
      'profile.top is self time over ALL samples, idle included: entries such as default_idle, pv_native_safe_halt or intel_idle are CPUs with nothing to do. The heaviest one that does work is the answer.',
      'At n = 3 the leader gets 2 PrepareOKs per op and the first completes the quorum: the prune drops one datagram per op, and that datagram reached a leader that was already awake.',
      'In the reply arm the followers\' kernels answer the Prepares (XDP_TX or a TC redirect) and hand them over through a ring buffer without waking anyone: compare the context-switch shares.',
      'The Vagrantfile paragraph of the project README gives libvirt__driver_queues as a multiple of the vCPUs: native XDP on virtio_net wants one spare TX ring per CPU.',
    ],
    check: checkLab07,
  },
];

/** `01`, `1`, `01-view-change`, `view-change` -> the lab; anything else lists the labs. */
export function findLab(ref: string): LabDef {
  const r = ref.trim().toLowerCase();
  const hit = LABS.find((l) => l.id === r || l.id === r.padStart(2, '0') || l.slug === r || l.slug.slice(3) === r);
  if (!hit) {
    throw new DiagnosticsError([{ code: 'LAB_UNKNOWN', subject: `lab ${ref}`, message: 'no such course lab', hint: `the labs are ${LABS.map((l) => `${l.id} (${l.slug})`).join(', ')}; see \`electrode-lab lab list\`` }]);
  }
  return hit;
}

/** labs/<slug>/ of this checkout. */
export function labFolder(def: LabDef, root = projectRoot()): string {
  return join(root, 'labs', def.slug);
}

export function answersTemplate(def: LabDef, root = projectRoot()): string {
  return join(labFolder(def, root), 'answers.yaml');
}

/** Every electrode-lab lab name an exercise can leave behind. */
export function labNames(def: LabDef): string[] {
  return [def.spec.name, ...def.extraLabs];
}

/** The warning `lab start` prints for each tool of the exercise that is not on PATH (pure: `have` says what is). */
export function missingToolLines(def: LabDef, have: (command: string) => boolean): string[] {
  return (def.tools ?? []).filter((t) => !have(t.command)).map((t) => `${t.command} is not installed and lab ${def.id}'s README runs it: \`apt-get install ${t.debianPackage}\` (or run .ci/setup, which installs it); the rest of the lab works without it`);
}
