import { CommandError, LibvirtUnreachableError, run, transient, type CommandKind } from './run';

const UNREACHABLE =
  /failed to connect to the hypervisor|End of file while reading data|client socket is closed|Cannot recv data/i;

export type DomainState = 'running' | 'paused' | 'shut off' | 'other';

const UNITS: Record<string, number> = { B: 1, KiB: 1024, MiB: 1024 ** 2, GiB: 1024 ** 3, TiB: 1024 ** 4 };

/** `683.480 MiB` as virsh prints sizes, in bytes. */
export function withUnit(value: string, unit: string): number {
  return Math.round(Number(value) * (UNITS[unit] ?? 1));
}

/** Bytes left and the rate of a job's memory copy, from `virsh domjobinfo`. */
export function parseJobProgress(out: string): { remainingBytes?: number; bytesPerSecond?: number } {
  const remaining = /^Memory remaining:\s*([\d.]+)\s*(\S+)/m.exec(out);
  const rate = /^Memory bandwidth:\s*([\d.]+)\s*(\S+)\/s/m.exec(out);
  return {
    ...(remaining && { remainingBytes: withUnit(remaining[1]!, remaining[2]!) }),
    ...(rate && { bytesPerSecond: withUnit(rate[1]!, rate[2]!) }),
  };
}

/** libvirt through `virsh`, one connection URI per instance. */
export class Virsh {
  constructor(readonly uri: string) {}

  /** `kind` bounds how long libvirt may take to answer (see `CommandKind`). */
  private async virsh(args: readonly string[], kind: CommandKind = 'query'): Promise<string> {
    const label = `virsh ${args[0]}`;
    try {
      return await run('virsh', ['-q', '-c', this.uri, ...args], { kind, label });
    } catch (err) {
      // libvirtd down, or gone in the middle of the call: it comes back (and QEMU runs on).
      if (err instanceof CommandError && UNREACHABLE.test(err.stderr))
        throw transient(new LibvirtUnreachableError(label, err.stderr));
      throw err;
    }
  }

  /** The domain's state, or undefined when libvirt does not know the domain. */
  async state(vm: string): Promise<DomainState | undefined> {
    try {
      const out = (await this.virsh(['domstate', '--', vm])).trim();
      if (out === 'running' || out === 'paused' || out === 'shut off') return out;
      return 'other';
    } catch (err) {
      if (err instanceof CommandError && /failed to get domain|Domain not found/i.test(err.stderr))
        return undefined;
      throw err;
    }
  }

  /** State and libvirt's reason for it (`shut off` + `saved`, `paused` + `saving`, …). */
  async stateWithReason(vm: string): Promise<{ state: DomainState; reason: string } | undefined> {
    try {
      const out = (await this.virsh(['domstate', '--reason', '--', vm])).trim();
      const m = /^(.*?)\s*\(([^)]*)\)$/.exec(out);
      const name = m ? m[1]! : out;
      const state: DomainState =
        name === 'running' || name === 'paused' || name === 'shut off' ? name : 'other';
      return { state, reason: m ? m[2]! : '' };
    } catch (err) {
      if (err instanceof CommandError && /failed to get domain|Domain not found/i.test(err.stderr))
        return undefined;
      throw err;
    }
  }

  /**
   * The operation of the libvirt job running on the domain (`Save`, `Snapshot`, …), or
   * undefined when none runs. A job outlives the client that started it: a worker killed
   * during `virsh save` leaves libvirtd saving.
   */
  async activeJob(vm: string): Promise<string | undefined> {
    let out: string;
    try {
      out = await this.virsh(['domjobinfo', '--', vm]);
    } catch (err) {
      if (err instanceof CommandError && /not running|failed to get domain/i.test(err.stderr))
        return undefined;
      throw err;
    }
    const type = /^Job type:\s*(\S+)/m.exec(out)?.[1];
    const operation = /^Operation:\s*(\S+)/m.exec(out)?.[1];
    // A live snapshot reports its memory copy `Completed` while it still snapshots the disks
    // with the VM paused: the job ends only when libvirt resumes the VM.
    if (type === 'Completed' && operation === 'Snapshot') return operation;
    if (!type || type === 'None' || type === 'Completed' || type === 'Failed') return undefined;
    return operation ?? type;
  }

  /** The persistent configuration (not the runtime one) with secrets, as `virsh dumpxml --inactive`. */
  dumpInactiveXml(vm: string): Promise<string> {
    return this.virsh(['dumpxml', '--inactive', '--security-info', '--', vm]);
  }

  dumpXml(vm: string): Promise<string> {
    return this.virsh(['dumpxml', '--', vm]);
  }

  async save(vm: string, file: string): Promise<void> {
    await this.virsh(['save', '--', vm, file], 'long');
  }

  saveImageXml(file: string): Promise<string> {
    return this.virsh(['save-image-dumpxml', '--security-info', '--', file]);
  }

  async restore(file: string, xmlFile: string, paused = false): Promise<void> {
    await this.virsh(['restore', '--xml', xmlFile, ...(paused ? ['--paused'] : []), '--', file], 'long');
  }

  async start(vm: string, paused = false): Promise<void> {
    await this.virsh(['start', ...(paused ? ['--paused'] : []), '--', vm], 'long');
  }

  /**
   * Resumes a paused VM. One found running is where a resume leads: libvirt resumes a VM
   * itself when its live snapshot ends, which may fall between our look and our call.
   */
  async resume(vm: string): Promise<void> {
    try {
      await this.virsh(['resume', '--', vm]);
    } catch (err) {
      if (
        err instanceof CommandError &&
        /already running/i.test(err.stderr) &&
        (await this.state(vm)) === 'running'
      )
        return;
      throw err;
    }
  }

  /** Asks the guest to power off (ACPI); returns at once. */
  async shutdown(vm: string): Promise<void> {
    await this.virsh(['shutdown', '--', vm], 'long');
  }

  async destroy(vm: string): Promise<void> {
    await this.virsh(['destroy', '--', vm], 'long');
  }

  async define(xmlFile: string): Promise<void> {
    await this.virsh(['define', '--', xmlFile], 'long');
  }

  async undefine(vm: string): Promise<void> {
    await this.virsh(['undefine', '--', vm]);
  }

  /** Target → source file of each disk, as libvirt sees it now. */
  async diskSources(vm: string): Promise<Map<string, string>> {
    const out = await this.virsh(['domblklist', '--details', '--', vm]);
    const map = new Map<string, string>();
    for (const line of out.split('\n')) {
      const [type, device, target, ...source] = line.trim().split(/\s+/);
      if (type === 'file' && device === 'disk' && target && source.length) map.set(target, source.join(' '));
    }
    return map;
  }

  /** Starts a block pull (`block-stream`) of `target`; returns at once. */
  async startBlockPull(vm: string, target: string, bandwidthMiB: number): Promise<void> {
    // Options before `--`: after it virsh took `--bandwidth` for the bandwidth's value and refused it.
    await this.virsh([
      'blockpull',
      ...(bandwidthMiB > 0 ? ['--bandwidth', String(bandwidthMiB)] : []),
      '--',
      vm,
      target,
    ]);
  }

  /** Progress of the block job on `target`, or undefined when none runs. */
  async blockJob(vm: string, target: string): Promise<{ cur: number; end: number } | undefined> {
    const out = await this.virsh(['blockjob', '--raw', '--', vm, target]);
    const cur = /cur=(\d+)/.exec(out);
    const end = /end=(\d+)/.exec(out);
    return cur && end ? { cur: Number(cur[1]), end: Number(end[1]) } : undefined;
  }

  /**
   * A live external snapshot of memory and disks (no libvirt metadata): the guest runs while
   * its RAM goes to `memoryFile`, pauses for the last pages, and resumes on a new overlay per
   * disk. Returns when libvirt's job has ended; the job itself outlives this client.
   */
  async snapshotLive(
    vm: string,
    memoryFile: string,
    overlays: ReadonlyArray<{ target: string; file: string }>,
    untouched: readonly string[],
  ): Promise<void> {
    const spec = (v: string) => v.replace(/,/g, ',,'); // virsh escapes a comma in a value by doubling it
    await this.virsh(
      [
        'snapshot-create-as',
        '--no-metadata',
        '--live',
        '--atomic',
        '--memspec',
        `file=${spec(memoryFile)},snapshot=external`,
        ...overlays.flatMap((o) => [
          '--diskspec',
          `${spec(o.target)},snapshot=external,file=${spec(o.file)}`,
        ]),
        ...untouched.flatMap((t) => ['--diskspec', `${spec(t)},snapshot=no`]),
        '--domain',
        vm,
      ],
      'unbounded',
    );
  }

  /** Names of every domain libvirt knows, running or not. */
  async domainNames(): Promise<string[]> {
    return (await this.virsh(['list', '--all', '--name']))
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l !== '');
  }

  /** How far the running job's memory copy is: bytes left and the current rate, as libvirt reports them. */
  async jobProgress(vm: string): Promise<{ remainingBytes?: number; bytesPerSecond?: number }> {
    return parseJobProgress(await this.virsh(['domjobinfo', '--', vm]));
  }

  async suspend(vm: string): Promise<void> {
    await this.virsh(['suspend', '--', vm]);
  }

  /**
   * QEMU's own downtime of the domain's last finished job (`Total downtime`), in ms: what a
   * live snapshot's pause was when nobody watched its lifecycle events.
   */
  async lastJobDowntimeMs(vm: string): Promise<{ operation?: string; downtimeMs?: number }> {
    const out = await this.virsh(['domjobinfo', '--completed', '--', vm]).catch(() => '');
    const operation = /^Operation:\s*(\S+)/m.exec(out)?.[1];
    const ms = /^Total downtime:\s*(\d+)\s*ms/m.exec(out)?.[1];
    return { operation, downtimeMs: ms === undefined ? undefined : Number(ms) };
  }

  /** Starts an active block commit of `target`'s overlay into its backing image; returns at once. */
  async startActiveCommit(vm: string, target: string, bandwidthMiB: number): Promise<void> {
    await this.virsh([
      'blockcommit',
      '--active',
      ...(bandwidthMiB > 0 ? ['--bandwidth', String(bandwidthMiB)] : []),
      '--',
      vm,
      target,
    ]);
  }

  /** Ends a ready active commit: the disk reads and writes its image again, the overlay is unused. */
  async pivot(vm: string, target: string): Promise<void> {
    await this.virsh(['blockjob', '--pivot', '--', vm, target]);
  }

  /** Human monitor command, as the seed and the tests use for guest-visible I/O. */
  hmp(vm: string, command: string): Promise<string> {
    // `pmemsave` of GiBs of RAM takes a while.
    return this.virsh(['qemu-monitor-command', '--hmp', '--', vm, command], 'long');
  }
}
