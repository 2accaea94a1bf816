import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { BackupError, ErrorCode } from '../../src/domain/errors';
import {
  CommandError,
  CommandTimeoutError,
  keepingTransient,
  LibvirtUnreachableError,
  limitSeconds,
  run,
} from '../../src/hypervisor/run';
import { Virsh } from '../../src/hypervisor/virsh';

let dir: string;
const savedEnv = { ...process.env };

beforeEach(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'run-timeout-'));
});

afterEach(async () => {
  process.env = { ...savedEnv };
  await fs.rm(dir, { recursive: true, force: true });
});

/** A program that writes its pid to `pidFile` and then hangs (ignoring SIGTERM, as a stuck client might). */
const HANG = [
  '-e',
  "require('fs').writeFileSync(process.argv[1], String(process.pid)); process.on('SIGTERM', () => {}); setInterval(() => {}, 1000);",
];

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('run time limits', () => {
  it('kills a hanging program at its limit and throws CommandTimeoutError naming the command', async () => {
    const pidFile = path.join(dir, 'pid');
    const t = performance.now();
    const err = await run(process.execPath, [...HANG, pidFile], { timeoutSeconds: 1, label: 'hang' }).catch(
      (e: unknown) => e,
    );
    const ms = performance.now() - t;
    expect(err).toBeInstanceOf(CommandTimeoutError);
    expect(err).not.toBeInstanceOf(BackupError);
    expect((err as Error).message).toBe('hang did not finish within 1 s');
    expect(ms).toBeGreaterThanOrEqual(1000);
    expect(ms).toBeLessThan(3000);
    const pid = Number(await fs.readFile(pidFile, 'utf8'));
    expect(alive(pid)).toBe(false);
  });

  it('bounds `sleep 30` by the query limit from the environment', async () => {
    process.env['VMBACKUP_VIRSH_QUERY_TIMEOUT_SECONDS'] = '1';
    const t = performance.now();
    await expect(run('sleep', ['30'], { kind: 'query' })).rejects.toThrow(
      /sleep 30 did not finish within 1 s/,
    );
    expect(performance.now() - t).toBeLessThan(3000);
  });

  it('leaves a program without a kind unbounded, and a failing one a CommandError', async () => {
    expect(await run('sh', ['-c', 'sleep 0.2; echo done'])).toBe('done');
    await expect(run('false', [])).rejects.toBeInstanceOf(CommandError);
  });

  it('reads the limits from the environment, with defaults, and refuses nonsense', () => {
    expect(limitSeconds('query', {})).toBe(60);
    expect(limitSeconds('long', {})).toBe(1800);
    expect(limitSeconds('unbounded', {})).toBeUndefined();
    expect(limitSeconds('query', { VMBACKUP_VIRSH_QUERY_TIMEOUT_SECONDS: '5' })).toBe(5);
    expect(limitSeconds('long', { VMBACKUP_VIRSH_LONG_TIMEOUT_SECONDS: '7200' })).toBe(7200);
    expect(() => limitSeconds('query', { VMBACKUP_VIRSH_QUERY_TIMEOUT_SECONDS: 'soon' })).toThrow(
      /VMBACKUP_VIRSH_QUERY_TIMEOUT_SECONDS must be a positive number/,
    );
  });

  it('keeps a time-out a time-out when a caller wraps it into a business error', async () => {
    const wrapped = keepingTransient(async () => {
      try {
        await run('sleep', ['30'], { timeoutSeconds: 0.5, label: 'sleep' });
      } catch (err) {
        throw new BackupError(ErrorCode.mergeFailed, `block pull of vda: ${(err as Error).message}`);
      }
    });
    await expect(wrapped).rejects.toBeInstanceOf(CommandTimeoutError);
    // Other business errors pass unchanged.
    await expect(
      keepingTransient(() => Promise.reject(new BackupError(ErrorCode.mergeFailed, 'no'))),
    ).rejects.toBeInstanceOf(BackupError);
  });
});

describe('Virsh with a libvirtd that hangs or is gone', () => {
  beforeEach(async () => {
    // A stand-in `virsh` first on PATH: hangs on domstate, cannot connect for domjobinfo.
    const fake = path.join(dir, 'virsh');
    await fs.writeFile(
      fake,
      [
        `#!${process.execPath}`,
        'const args = process.argv.slice(2);',
        "if (args.includes('domstate')) setInterval(() => {}, 1000);",
        "else { process.stderr.write('error: failed to connect to the hypervisor\\nerror: Failed to connect socket: Connection refused\\n'); process.exit(1); }",
        '',
      ].join('\n'),
      { mode: 0o755 },
    );
    process.env['PATH'] = `${dir}:${process.env['PATH']}`;
    process.env['VMBACKUP_VIRSH_QUERY_TIMEOUT_SECONDS'] = '1';
  });

  it('says libvirt did not answer virsh domstate within the limit', async () => {
    const err = await new Virsh('qemu:///system').state('vm1').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CommandTimeoutError);
    expect((err as Error).message).toBe('libvirt did not answer virsh domstate within 1 s');
  });

  it('reports a libvirtd that is not there as unreachable, not as a missing domain', async () => {
    const err = await new Virsh('qemu:///system').activeJob('vm1').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LibvirtUnreachableError);
    expect((err as Error).message).toMatch(
      /^libvirt is not reachable for virsh domjobinfo: error: failed to connect to the hypervisor/,
    );
  });
});
