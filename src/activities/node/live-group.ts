import { parseJobProgress, type Virsh } from '../../hypervisor/virsh';
import { VirshShell } from '../../hypervisor/virsh-shell';
import type { VmRunInput } from './types';

/** A multi-VM run's live snapshots on this node: the run's ID and all the run's VMs (any node). */
export interface LiveGroupRef {
  id: string;
  members: string[];
}

interface Member {
  vm: string;
  /** The last sample of its memory copy: bytes left, when, and the rate measured between samples. */
  sample?: { at: number; remaining: number; rate?: number | undefined } | undefined;
  /** Its job is about to start (room taken, its lifecycle events watched). */
  ready: boolean;
  ended: boolean;
  onPausedByGroup: () => void;
  /** A connection of its own, opened ahead: at the instant all suspends go out together. */
  shell: VirshShell;
}

interface Group {
  id: string;
  /** How many of the run's VMs libvirt has on this node. */
  expected: Promise<number>;
  firstJoin: number;
  members: Map<string, Member>;
  due: boolean;
  watching: boolean;
}

/** How long members wait for the others of their node (to join, to be ready) before going on without them. */
const WAIT_WINDOW_MS = 20_000;

/** Groups live in this worker's memory only: after a restart each VM's own bound applies. */
const groups = new Map<string, Group>();

export function liveGroupDue(input: VmRunInput & { liveGroup?: LiveGroupRef | undefined }): boolean {
  return input.liveGroup ? (groups.get(input.liveGroup.id)?.due ?? false) : false;
}

export interface Membership {
  /** Waits until every member is ready, so that all memory copies start together. */
  ready(): Promise<void>;
  /** libvirt paused this member for its last pages: the group pauses all others now. */
  pausedByLibvirt(): void;
  /** The member's job ended. */
  ended(): void;
}

async function until(done: () => boolean, since: number): Promise<void> {
  while (!done() && Date.now() - since < WAIT_WINDOW_MS) await new Promise((r) => setTimeout(r, 10));
}

/**
 * Joins the node's group of a multi-VM live run. Members start their memory copies
 * together; the first that libvirt pauses for its last pages (its lifecycle event) has
 * all the others paused at once, each through a virsh connection opened ahead, each then copying
 * only what it has left: the memory of every VM is of one instant.
 */
export async function joinLiveGroup(
  virsh: Virsh,
  ref: LiveGroupRef,
  vm: string,
  onPausedByGroup: () => void,
): Promise<Membership> {
  let group = groups.get(ref.id);
  if (!group) {
    // Registered before anything is awaited: the members arrive at the same moment.
    group = {
      id: ref.id,
      expected: virsh.domainNames().then(
        (names) => ref.members.filter((m) => names.includes(m)).length,
        () => 1,
      ),
      firstJoin: Date.now(),
      members: new Map(),
      due: false,
      watching: false,
    };
    groups.set(ref.id, group);
  }
  const member: Member = {
    vm,
    ready: false,
    ended: false,
    onPausedByGroup,
    shell: VirshShell.open(virsh.uri),
  };
  group.members.set(vm, member);
  const g = group;
  const expected = await g.expected;
  await until(() => g.members.size >= expected, g.firstJoin);
  return {
    async ready() {
      member.ready = true;
      const since = Date.now();
      await until(() => [...g.members.values()].every((m) => m.ready || m.ended), since);
      if (!g.watching) {
        g.watching = true;
        void watchCopies(g);
      }
    },
    pausedByLibvirt() {
      pauseAll(g, member);
    },
    ended() {
      member.ended = true;
      void member.shell.close().catch(() => undefined);
      if ([...g.members.values()].every((m) => m.ended)) groups.delete(g.id);
    },
  };
}

/** Pauses every member but `source` (which libvirt paused already, if given) at once. */
function pauseAll(g: Group, source?: Member): void {
  if (g.due) return;
  g.due = true;
  // All at once, each through its own open connection: libvirt serves them in parallel.
  for (const m of g.members.values()) {
    if (m === source || m.ended || !m.ready) continue;
    void m.shell.run(['suspend', m.vm]).then(
      () => m.onPausedByGroup(),
      () => undefined,
    );
  }
}

/**
 * Samples every member's copy (each through its own connection, in parallel) and pauses
 * all once the first is expected to finish within three sampling rounds and 300 ms (the
 * suspends take a while on a busy node): ahead of its own
 * pause, so that the instant is shared.
 */
async function watchCopies(g: Group): Promise<void> {
  while (!g.due && groups.get(g.id) === g) {
    const started = Date.now();
    const members = [...g.members.values()].filter((m) => m.ready && !m.ended);
    await Promise.all(
      members.map(async (m) => {
        const out = await m.shell.run(['domjobinfo', m.vm]).catch(() => '');
        const seen = parseJobProgress(out).remainingBytes;
        if (seen === undefined) return;
        const now = Date.now();
        const last = m.sample;
        // libvirt gives no rate during the first pass over RAM: measure it between samples.
        const rate =
          last && now > last.at && last.remaining > seen
            ? ((last.remaining - seen) * 1000) / (now - last.at)
            : last?.rate;
        m.sample = { at: now, remaining: seen, rate };
      }),
    );
    const round = Date.now() - started;
    if (
      members.some((m) => m.sample?.rate && (m.sample.remaining / m.sample.rate) * 1000 <= 3 * round + 300)
    ) {
      pauseAll(g);
      return;
    }
    await new Promise((r) => setTimeout(r, 10));
  }
}
