import { execa } from 'execa';

/** When libvirt paused and resumed a domain, by its own lifecycle events' clock (epoch ms). */
export interface PauseSpan {
  suspendedAt?: number | undefined;
  resumedAt?: number | undefined;
}

export interface LifecycleWatch {
  /** Stops watching; the first suspension and the first resumption after it. */
  stop(): Promise<PauseSpan>;
}

/** `2026-12-01 23:18:36.404+0000: event 'lifecycle' for domain 'vm': Suspended Paused` */
const EVENT = /^(\d{4}-\d\d-\d\d) (\d\d:\d\d:\d\d\.\d+)\+0000: event 'lifecycle' for domain '(.*)': (\w+)/;

export function parseLifecycleLine(line: string): { at: number; vm: string; event: string } | undefined {
  const m = EVENT.exec(line.trim());
  if (!m) return undefined;
  return { at: Date.parse(`${m[1]}T${m[2]}Z`), vm: m[3]!, event: m[4]! };
}

/** Calls `on` for every lifecycle event line `virsh event --timestamp` writes to `out`. */
export function onLifecycleEvents(
  out: NodeJS.ReadableStream | null | undefined,
  on: (e: { at: number; vm: string; event: string }) => void,
): void {
  let rest = '';
  out?.setEncoding('utf8');
  out?.on('data', (chunk: string) => {
    rest += chunk;
    const lines = rest.split('\n');
    rest = lines.pop() ?? '';
    for (const line of lines) {
      const e = parseLifecycleLine(line);
      if (e) on(e);
    }
  });
}

/**
 * Watches a domain's lifecycle events (`virsh event --loop --timestamp`) so that a live
 * snapshot's pause is measured by libvirt, not guessed. Resolves once the watch is
 * registered (a short settle time after the connected virsh took the command). `vm` is a
 * checked domain name.
 */
export async function watchLifecycle(
  uri: string,
  vm: string,
  options: { onSuspended?: () => void; settleMs?: number } = {},
): Promise<LifecycleWatch> {
  if (!/^[A-Za-z0-9_.-]+$/.test(vm)) throw new Error(`not a domain name: ${JSON.stringify(vm)}`);
  // An interactive virsh: once it answers, it is connected, and the watch is registered
  // moments after the command goes in (a fresh `virsh event` can take longer to connect
  // than a busy node's memory copy takes).
  const child = execa('virsh', ['-q', '-c', uri], {
    reject: false,
    env: { LC_ALL: 'C' },
    buffer: false,
    stdin: 'pipe',
  });
  const span: PauseSpan = {};
  onLifecycleEvents(child.stdout, (e) => {
    if (e.event === 'Suspended' && span.suspendedAt === undefined) {
      span.suspendedAt = e.at;
      options.onSuspended?.();
    }
    if (e.event === 'Resumed' && span.suspendedAt !== undefined && span.resumedAt === undefined)
      span.resumedAt = e.at;
  });
  const connected = new Promise<void>((resolve) => {
    const onData = (chunk: string) => {
      if (!chunk.includes('\n__connected__')) return;
      child.stdout?.off('data', onData);
      resolve();
    };
    child.stdout?.on('data', onData);
  });
  child.stdin?.write('echo __connected__\n');
  await Promise.race([connected, new Promise((r) => setTimeout(r, 10_000))]);
  child.stdin?.write(`event --domain ${vm} --event lifecycle --loop --timestamp\n`);
  await new Promise((r) => setTimeout(r, options.settleMs ?? 50));
  return {
    async stop() {
      // The resume event may trail the end of the job by a moment.
      for (let i = 0; i < 40 && span.suspendedAt !== undefined && span.resumedAt === undefined; i++)
        await new Promise((r) => setTimeout(r, 25));
      child.kill('SIGKILL');
      await child;
      return span;
    },
  };
}
