/**
 * `npm run bench` (third part): verification throughput against `sha256sum` of the same
 * files in the same run, and the bytes a verification reads against the backup's size.
 *
 * One sandbox VM whose RAM holds a random blob (BENCH_VERIFY_MIB, default `1536:1024` = MiB
 * of RAM : MiB of data) and whose disk holds 48 MiB is backed up once (snapshot, merge,
 * retain: the state file is about the size of the RAM data). Then BENCH_ROUNDS rounds
 * (default 3), alternating which goes first, each after dropping the page cache:
 *   sha256sum   one `sha256sum` process over every file of the backup but the manifest;
 *   verify      the node's verifyBackup (hashes, qemu-img check, header and XML/LDIF checks).
 * Bytes read are the worker process's own `rchar` and `read_bytes` (/proc/self/io) over the
 * verification. Writes .dev/bench-verify.json.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { merge } from '../src/activities/node/merge';
import { retain } from '../src/activities/node/retain';
import { snapshot } from '../src/activities/node/snapshot';
import type { SnapshotInput, VmRunInput } from '../src/activities/node/types';
import { verifyBackup } from '../src/activities/node/verify';
import { ensureRamBlob } from '../src/dev/guest-ram';
import { createSandboxVm, removeSandboxVm } from '../src/dev/sandbox-vm';
import { withDirectory } from '../src/directory/connection';
import { exportVmLdif, readPlan, readVm } from '../src/directory/vm-directory';
import { manifestFileName } from '../src/domain/manifest';
import { formatRunDate } from '../src/domain/names';
import type { VerifyReport } from '../src/domain/verification';
import { run } from '../src/hypervisor/run';
import { benchSetting } from './setting';

const REPO = fileURLToPath(new URL('..', import.meta.url));
const OUT_FILE = path.join(REPO, '.dev', 'bench-verify.json');
const NODE = 'bench-node';
const VM = 'bench-verify';
const MiB = 1024 * 1024;

async function processIo(): Promise<{ rchar: number; readBytes: number }> {
  const text = await fs.readFile('/proc/self/io', 'utf8');
  const field = (name: string) => Number(new RegExp(`^${name}: (\\d+)$`, 'm').exec(text)?.[1] ?? NaN);
  return { rchar: field('rchar'), readBytes: field('read_bytes') };
}

/** Every later read comes from the disk, for both contenders alike. */
async function dropCaches(): Promise<void> {
  await run('sync', []);
  await fs.writeFile('/proc/sys/vm/drop_caches', '3');
}

const median = (values: readonly number[]): number => {
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
};

async function main(): Promise<void> {
  const rounds = Number(process.env['BENCH_ROUNDS'] ?? 3);
  const [memoryMiB, dataMiB] = (process.env['BENCH_VERIFY_MIB'] ?? '1536:1024').split(':').map(Number);
  if (!memoryMiB || !dataMiB || dataMiB >= memoryMiB)
    throw new Error('BENCH_VERIFY_MIB is RAM:data in MiB, data < RAM');
  const { directory, node, roots, deps, guest, tree, inActivity } = benchSetting();

  await removeSandboxVm(VM, { virsh: deps.virsh, directory, node }).catch(() => undefined);
  const blob = await ensureRamBlob(`bench-${dataMiB}m`, dataMiB * MiB);
  await createSandboxVm(
    { name: VM, node: NODE, disks: 1, memoryMiB, ramData: blob, ...roots },
    { virsh: deps.virsh, directory, node },
  );
  try {
    await guest.write(VM, 0, 0x22, 0, 48 * MiB);
    const target = await withDirectory(directory, async (dir) => {
      const record = await readVm(dir, tree, VM);
      return { record, plan: await readPlan(dir, tree, record), ldif: await exportVmLdif(dir, tree, VM) };
    });
    const input: VmRunInput = {
      vm: VM,
      runDate: formatRunDate(new Date()),
      disks: target.record.disks,
      plan: { ...target.plan, mode: 'save' },
    };
    const retainStart = performance.now();
    await inActivity((i: SnapshotInput) => snapshot(deps, i), { ...input, ldif: target.ldif });
    await inActivity((i: VmRunInput) => merge(deps, i), input);
    const kept = await inActivity((i: VmRunInput) => retain(deps, i), input);
    console.log(
      `verify bench: backup of ${VM} (${memoryMiB} MiB RAM, ${dataMiB} MiB data) in ${((performance.now() - retainStart) / 1000).toFixed(1)} s`,
    );
    const files = (await fs.readdir(kept.backupDir))
      .filter((f) => f !== manifestFileName(VM, input.runDate))
      .map((f) => path.join(kept.backupDir, f));
    let size = 0;
    for (const f of files) size += (await fs.stat(f)).size;

    const sums: number[] = [];
    const verifies: number[] = [];
    const reads: Array<{ rchar: number; readBytes: number; reported: number }> = [];
    const shaSum = async () => {
      await dropCaches();
      const t0 = performance.now();
      await run('sha256sum', ['--', ...files], { kind: 'unbounded' });
      sums.push((performance.now() - t0) / 1000);
    };
    const verify = async () => {
      await dropCaches();
      const io0 = await processIo();
      const t0 = performance.now();
      const report = (await inActivity((i: VmRunInput & { backupDir: string }) => verifyBackup(deps, i), {
        ...input,
        backupDir: kept.backupDir,
      })) as VerifyReport;
      verifies.push((performance.now() - t0) / 1000);
      const io1 = await processIo();
      if (report.outcome !== 'passed')
        throw new Error(`verification did not pass: ${JSON.stringify(report.problems)}`);
      reads.push({
        rchar: io1.rchar - io0.rchar,
        readBytes: io1.readBytes - io0.readBytes,
        reported: report.bytesRead,
      });
    };
    for (let r = 0; r < rounds; r++) {
      if (r % 2 === 0) {
        await shaSum();
        await verify();
      } else {
        await verify();
        await shaSum();
      }
      const rate = (s: number) => `${(size / MiB / s).toFixed(0)} MiB/s`;
      console.log(
        `  round ${r + 1}: sha256sum ${sums.at(-1)!.toFixed(2)} s (${rate(sums.at(-1)!)}), verify ${verifies.at(-1)!.toFixed(2)} s (${rate(verifies.at(-1)!)}), verify read ${reads.at(-1)!.rchar} bytes (${reads.at(-1)!.readBytes} from storage) of ${size}`,
      );
    }
    const ratio = median(sums) / median(verifies);
    const result = {
      vm: { memoryMiB, dataMiB },
      backupBytes: size,
      rounds,
      sha256sumSeconds: sums,
      verifySeconds: verifies,
      throughputRatio: ratio,
      reads,
      readOnce: reads.every((r) => r.reported === size),
    };
    await fs.writeFile(OUT_FILE, `${JSON.stringify(result, null, 2)}\n`);
    console.log(
      `verify: ${(size / MiB).toFixed(0)} MiB, median sha256sum ${median(sums).toFixed(2)} s, verify ${median(verifies).toFixed(2)} s: throughput ${ratio.toFixed(2)}× sha256sum (goal ≥ 0.8×); bytes hashed = backup size in every round: ${result.readOnce}; ${OUT_FILE}`,
    );
    await fs.rm(kept.backupDir, { recursive: true, force: true });
  } finally {
    await removeSandboxVm(VM, { virsh: deps.virsh, directory, node }).catch(() => undefined);
  }
}

void main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
