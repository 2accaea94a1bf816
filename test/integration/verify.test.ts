import { promises as fs } from 'node:fs';
import path from 'node:path';
import { execa } from 'execa';
import { afterAll, describe, expect, it } from 'vitest';
import { CONTROL_TASK_QUEUE, timingFromEnv } from '../../src/config';
import { ensureRamBlob, removeRamBlob } from '../../src/dev/guest-ram';
import { manifestFileName } from '../../src/domain/manifest';
import { verifyFileName, type VerifyReport } from '../../src/domain/verification';
import type { BackupVmResult } from '../../src/workflows/backup-vm';
import type { VerifyBackupsResult, VerifyFleetResult } from '../../src/workflows/verify-backups';
import { repoRoot } from '../support/dev-env';
import {
  backup,
  createVm,
  guestReads,
  guestWrite,
  leaves,
  MiB,
  temporal,
  type GuestWrite,
} from '../support/harness';
import { useTestNode } from '../support/lifecycle';
import { expectManifestOfBackup } from '../support/manifest';

const NODE = 'vmbt-node-verify';
const VM = 'vmbt-verify';
const node = useTestNode(NODE);
node.vms.push(VM);
const BLOB = 'vmbt-verify-192m';
afterAll(() => removeRamBlob(BLOB).catch(() => undefined));

async function verify(vm: string, backups?: string[]): Promise<VerifyBackupsResult> {
  return (await (
    await temporal()
  ).workflow.execute('verifyBackups', {
    taskQueue: CONTROL_TASK_QUEUE,
    workflowId: `verify/${vm}`,
    args: [{ vm, backups, timing: timingFromEnv() }],
  })) as VerifyBackupsResult;
}

const cli = (...args: string[]) =>
  execa(process.execPath, [`${repoRoot}bin/vmbackup.mjs`, ...args], { reject: false });

async function mark(vm: string, runDate: string) {
  return (await leaves(vm)).find((l) => l.runDate === runDate)?.verification;
}

/** Flips the bits of one byte of a file in place; flipping again puts it back. */
async function flipByte(file: string, offset: number): Promise<void> {
  const h = await fs.open(file, 'r+');
  try {
    const b = Buffer.alloc(1);
    await h.read(b, 0, 1, offset);
    b[0] = b[0]! ^ 0x01;
    await h.write(b, 0, 1, offset);
  } finally {
    await h.close();
  }
}

/** Offset of guest data inside a qcow2 file: the first cluster holding the written pattern. */
async function guestDataOffset(image: string, w: GuestWrite): Promise<number> {
  const needle = Buffer.alloc(64 * 1024, w.pattern);
  const at = (await fs.readFile(image)).indexOf(needle);
  expect(at).toBeGreaterThan(0);
  return at + 1234;
}

let result: BackupVmResult;
const data: GuestWrite = { pattern: 0x6b, offset: 0, length: 4 * MiB };
const files = () => {
  const d = result.runDate;
  return {
    image: `${VM}-disk0.qcow2.${d}`,
    state: `${VM}.state.${d}`,
    xml: `${VM}.xml.${d}`,
    ldif: `${VM}.ldif.${d}`,
  };
};
const inBackup = (name: string) => path.join(result.backupDir, name);

function expectNamed(report: VerifyReport, file: string, problem: RegExp) {
  expect(report.outcome).toBe('failed');
  expect(report.problems).toContainEqual({ file, problem: expect.stringMatching(problem) });
}

describe('verification of kept backups', () => {
  it('passes a fresh backup of a VM whose RAM holds data: every file read once (bytes read = the backup size), the leaf marked passed, the VM untouched', async () => {
    const blob = await ensureRamBlob(BLOB, 192 * MiB);
    await createVm({ name: VM, node: NODE, disks: 1, memoryMiB: 256, ramData: blob, mode: 'unset' });
    await guestWrite(VM, 0, data);
    result = await backup(VM);
    const manifest = await expectManifestOfBackup(result.backupDir, VM, result.runDate);

    const [report] = (await verify(VM)).reports;
    expect(report).toMatchObject({ outcome: 'passed', problems: [], runDate: result.runDate });
    const size = manifest.files.reduce((sum, f) => sum + f.size, 0);
    expect(size).toBeGreaterThan(192 * MiB); // the state file holds the RAM data
    expect(report!.bytesRead).toBe(size);
    expect(report!.bytesExpected).toBe(size);
    expect(report!.files).toBe(4); // state, XML, LDIF, image
    expect(await mark(VM, result.runDate)).toMatchObject({ outcome: 'passed' });
    const written = JSON.parse(
      await fs.readFile(inBackup(verifyFileName(VM, result.runDate)), 'utf8'),
    ) as VerifyReport;
    expect(written.outcome).toBe('passed');
    expect((await fs.stat(inBackup(verifyFileName(VM, result.runDate)))).mode & 0o777).toBe(0o600);
    expect(await guestReads(VM, 0, data)).toBe(true);
  }, 240_000);

  it('detects one flipped byte in the image, the state file, the XML and the LDIF, names the file and marks the backup failed; put back, it passes again', async () => {
    const f = files();
    const targets: Array<[string, number]> = [
      [f.image, await guestDataOffset(inBackup(f.image), data)],
      [f.state, Math.floor((await fs.stat(inBackup(f.state))).size / 2)],
      [f.xml, Math.floor((await fs.stat(inBackup(f.xml))).size / 2)],
      [f.ldif, Math.floor((await fs.stat(inBackup(f.ldif))).size / 2)],
    ];
    for (const [name, offset] of targets) {
      await flipByte(inBackup(name), offset);
      const [report] = (await verify(VM, [result.runDate])).reports;
      expectNamed(report!, name, /^SHA-256 [0-9a-f]{64} differs from the manifest/);
      expect(report!.problems.filter((p) => p.problem.startsWith('SHA-256')).map((p) => p.file)).toEqual([
        name,
      ]);
      const m = await mark(VM, result.runDate);
      expect(m?.outcome).toBe('failed');
      expect(m?.summary).toContain(name);
      if (name === f.image) {
        // The command line says it too, by name, and exits 1 for scripts and monitoring.
        const r = await cli('verify', VM, '--backup', result.runDate);
        expect(r.exitCode).toBe(1);
        expect(r.stdout).toContain(`${VM} ${result.runDate}: FAILED`);
        expect(r.stdout).toContain(`  ${name}: SHA-256`);
        const listing = await cli('backups', VM);
        expect(listing.stdout).toMatch(/FAILED \d{4}-\d\d-\d\d/);
        expect(listing.stdout).toContain(`verification failed: ${name}: SHA-256`);
      }
      await flipByte(inBackup(name), offset);
    }
    expect((await verify(VM, [result.runDate])).reports[0]!.outcome).toBe('passed');
    expect(await mark(VM, result.runDate)).toMatchObject({ outcome: 'passed' });
  }, 240_000);

  it('detects a truncated image by its size and by qemu-img check', async () => {
    const image = inBackup(files().image);
    const aside = `${image}.aside`;
    await fs.copyFile(image, aside);
    try {
      const size = (await fs.stat(image)).size;
      await fs.truncate(image, size - 256 * 1024);
      const [report] = (await verify(VM, [result.runDate])).reports;
      expectNamed(
        report!,
        files().image,
        new RegExp(`^size ${size - 256 * 1024} bytes, the manifest says ${size}$`),
      );
      expectNamed(report!, files().image, /^qemu-img check/);
      expect((await mark(VM, result.runDate))?.outcome).toBe('failed');
    } finally {
      await fs.rename(aside, image);
    }
  }, 120_000);

  it('reports a backup without manifest as such: its structure is checked, its contents are not proven', async () => {
    const manifest = inBackup(manifestFileName(VM, result.runDate));
    const kept = await fs.readFile(manifest);
    await fs.unlink(manifest);
    try {
      const [report] = (await verify(VM, [result.runDate])).reports;
      expect(report).toMatchObject({ outcome: 'no-manifest', problems: [], bytesRead: 0 });
      expect((await mark(VM, result.runDate))?.outcome).toBe('no-manifest');
      // Without a manifest a broken structure still shows: an image qemu-img cannot open.
      const image = inBackup(files().image);
      await flipByte(image, 0);
      const [broken] = (await verify(VM, [result.runDate])).reports;
      await flipByte(image, 0);
      expectNamed(broken!, files().image, /^qemu-img check/);
    } finally {
      await fs.writeFile(manifest, kept, { mode: 0o600 });
    }
    expect((await verify(VM, [result.runDate])).reports[0]!.outcome).toBe('passed');
  }, 120_000);

  it('scheduled verification re-verifies only backups not verified within the window, one VM at a time per node', async () => {
    const client = await temporal();
    const run = (windowDays: number) =>
      client.workflow.execute('verifyFleet', {
        taskQueue: CONTROL_TASK_QUEUE,
        workflowId: `verify-fleet-test-${Date.now()}`,
        args: [{ windowDays, timing: timingFromEnv() }],
      }) as Promise<VerifyFleetResult>;
    const before = (await mark(VM, result.runDate))!.checkedAt;
    const recent = await run(7);
    expect(recent.verified.filter((v) => v.vm === VM)).toEqual([]);
    expect((await mark(VM, result.runDate))!.checkedAt).toBe(before);
    // A window shorter than the time since: due again.
    const due = await run(1e-9);
    expect(due.errors.filter((e) => e.vm === VM)).toEqual([]);
    expect(due.verified).toContainEqual({ vm: VM, runDate: result.runDate, outcome: 'passed' });
    expect((await mark(VM, result.runDate))!.checkedAt > before).toBe(true);
  }, 180_000);

  it('refuses an unknown VM, a bad name and a backup that does not exist, and changes nothing', async () => {
    const listing = await fs.readdir(result.backupDir);
    for (const args of [
      ['verify', 'vmbt-no-such-vm'],
      ['verify', 'bad,name'],
      ['verify', VM, '--backup', '20000101T000000Z'],
      ['verify', VM, '--backup', 'yesterday'],
    ]) {
      const r = await cli(...args);
      expect(r.exitCode, args.join(' ')).not.toBe(0);
      expect(r.stderr + r.stdout, args.join(' ')).toMatch(/not found|no backup|invalid|must be|not a valid/i);
    }
    expect(await fs.readdir(result.backupDir)).toEqual(listing);
  }, 120_000);
});
