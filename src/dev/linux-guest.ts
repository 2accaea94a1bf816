import { promises as fs } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { run } from '../hypervisor/run';
import { readDomainXml } from '../domain/domain-xml';
import { parseXml } from '../domain/xml/parse';
import { serializeXml } from '../domain/xml/serialize';
import type { XmlElement } from '../domain/xml/tree';

/**
 * A real Linux guest for the tests, whose RAM and disk change while a backup runs:
 * Debian's cloud kernel and a busybox initramfs (scripts/guest-image.sh), booted by
 * libvirt's direct kernel boot under TCG. Once a second its /init increments a counter
 * in RAM, dirties a few MiB of RAM, writes the counter to the first sector of /dev/vda
 * (`tick 00000042`, flushed) and prints `tick 42` on the serial console, which libvirt
 * appends to a file. After a restore of RAM and disk from one instant the guest goes on
 * from the disk's value: its first tick is that value + 1.
 */

const SCRIPT = fileURLToPath(new URL('../../scripts/guest-image.sh', import.meta.url));

/** Outside the repository: QEMU runs as libvirt-qemu, which may not enter a 0700 home. */
export function linuxGuestDir(): string {
  return process.env['VMBACKUP_GUEST_DIR'] || '/var/tmp/vmbackup-guest';
}

/** Kernel messages stay on (they show boot progress in the console file); no panic reboot loop. */
export const LINUX_GUEST_CMDLINE = 'console=ttyS0 panic=0';

export interface LinuxGuestImage {
  kernel: string;
  initrd: string;
}

let built: Promise<LinuxGuestImage> | undefined;

/** Builds kernel and initramfs when missing or outdated (the script is idempotent); once per process. */
export function ensureLinuxGuestImage(): Promise<LinuxGuestImage> {
  built ??= (async () => {
    const dir = linuxGuestDir();
    const result = await execa('bash', [SCRIPT], {
      reject: false,
      all: true,
      env: { VMBACKUP_GUEST_DIR: dir, LC_ALL: 'C' },
    });
    if (result.exitCode !== 0 || result.failed) {
      built = undefined;
      throw new Error(
        `scripts/guest-image.sh failed (exit ${result.exitCode}): ${String(result.all).trim()}`,
      );
    }
    return { kernel: path.join(dir, 'vmlinuz'), initrd: path.join(dir, 'initrd.img') };
  })();
  return built;
}

/** The file the VM's serial console is appended to. */
export function linuxGuestConsole(vm: string): string {
  return path.join(linuxGuestDir(), 'console', `${vm}.log`);
}

/** `<os>` for direct kernel boot of the guest image. */
export function linuxGuestOsXml(image: LinuxGuestImage): string {
  return `<os>
    <type arch='x86_64' machine='pc'>hvm</type>
    <kernel>${image.kernel}</kernel>
    <initrd>${image.initrd}</initrd>
    <cmdline>${LINUX_GUEST_CMDLINE}</cmdline>
  </os>`;
}

/**
 * Serial port and console into `consoleFile`. `append='on'`: every QEMU process of the VM
 * (start, and each restore from a saved state) adds to the file instead of truncating it,
 * so the file tells the guest's whole story.
 */
export function linuxGuestConsoleXml(consoleFile: string): string {
  return `<serial type='file'>
      <source path='${consoleFile}' append='on'/>
      <target port='0'/>
    </serial>
    <console type='file'>
      <source path='${consoleFile}' append='on'/>
      <target type='serial' port='0'/>
    </console>`;
}

/** Elements written as XML text, parsed (they are ours: a wrapper makes one root). */
const elementsOf = (xml: string): XmlElement[] => parseXml(`<x>${xml}</x>`).root.elements();

/** Replaces the one child of `parent` that `pick` finds with `replacement`. */
function replaceOnce(
  parent: XmlElement | undefined,
  pick: (e: XmlElement) => boolean,
  replacement: XmlElement[],
  what: string,
): void {
  const found = parent?.elements().filter(pick) ?? [];
  if (found.length !== 1) throw new Error(`domain XML has ${found.length} ${what}, expected one`);
  parent!.insertBefore(found[0]!, ...replacement).remove(found[0]!);
}

/**
 * Turns a sandbox VM's domain XML (BIOS boot, pty console) into the Linux guest's: builds
 * the image if needed and starts the VM's console file afresh.
 */
export async function linuxGuestDomainXml(vm: string, xml: string): Promise<string> {
  const image = await ensureLinuxGuestImage();
  const consoleFile = linuxGuestConsole(vm);
  await fs.mkdir(path.dirname(consoleFile), { recursive: true, mode: 0o755 });
  await fs.rm(consoleFile, { force: true });
  const doc = readDomainXml(xml);
  replaceOnce(doc.root, (e) => e.name === 'os', elementsOf(linuxGuestOsXml(image)), '<os> elements');
  const consoles = elementsOf(linuxGuestConsoleXml(consoleFile));
  const pty = (e: XmlElement) => e.name === 'console' && e.attr('type') === 'pty';
  replaceOnce(doc.root.first('devices'), pty, consoles, 'pty consoles');
  return serializeXml(doc);
}

/** Current size of the console file: an offset to read only what the guest prints from now on. */
export async function consoleOffset(consoleFile: string): Promise<number> {
  return (await fs.stat(consoleFile).catch(() => ({ size: 0 }))).size;
}

/** The console's lines from `fromOffset` on (a partial last line included). */
export async function consoleLines(consoleFile: string, fromOffset = 0): Promise<string[]> {
  const text = await fs.readFile(consoleFile).catch(() => Buffer.alloc(0));
  return text.subarray(fromOffset).toString('utf8').split(/\r?\n/);
}

/** The counter values of the complete `tick <n>` lines, in the order printed. */
export async function ticks(consoleFile: string, fromOffset = 0): Promise<number[]> {
  const lines = await consoleLines(consoleFile, fromOffset);
  // The last element is what follows the last newline: a line still being printed.
  return lines
    .slice(0, -1)
    .map((l) => /^tick (\d+)$/.exec(l.trim())?.[1])
    .filter((v): v is string => v !== undefined)
    .map(Number);
}

/** The guest's complaints (`guest: mismatch …`, a failed insmod or disk write) from `fromOffset` on. */
export async function guestComplaints(consoleFile: string, fromOffset = 0): Promise<string[]> {
  return (await consoleLines(consoleFile, fromOffset)).filter((l) =>
    /^guest: (mismatch|insmod .* failed|no \/dev\/vda|disk write failed)/.test(l.trim()),
  );
}

export async function lastTick(consoleFile: string): Promise<number | undefined> {
  return (await ticks(consoleFile)).at(-1);
}

/** Polls the console until the ticks from `fromOffset` on satisfy `done`; returns them. */
export async function waitForTicks(
  consoleFile: string,
  done: (ticks: number[]) => boolean,
  options: { fromOffset?: number; timeoutMs?: number; what?: string } = {},
): Promise<number[]> {
  const deadline = Date.now() + (options.timeoutMs ?? 120_000);
  for (;;) {
    const seen = await ticks(consoleFile, options.fromOffset ?? 0);
    if (done(seen)) return seen;
    if (Date.now() > deadline) {
      const tail = (await consoleLines(consoleFile)).slice(-15).join('\n');
      throw new Error(
        `${options.what ?? 'the ticks'} did not come within ${options.timeoutMs ?? 120_000} ms; console ends:\n${tail}`,
      );
    }
    await sleep(250);
  }
}

/** Decodes the guest's sector 0: `tick 00000042\n` padded with zeros, or anything else. */
export function parseDiskCounter(sector: Buffer): number | undefined {
  const m = /^tick (\d{8})\n/.exec(sector.toString('latin1'));
  return m ? Number(m[1]) : undefined;
}

/** The bytes of a `qemu-io` `read -v` hex dump (`00000000:  74 69 63 6b …  tick…`). */
export function parseQemuIoDump(dump: string): Buffer {
  const bytes: number[] = [];
  for (const line of dump.split('\n')) {
    const m = /^[0-9a-f]{8}:\s+(.*)$/.exec(line);
    if (!m) continue;
    // 16 hex bytes, then the ASCII column.
    for (const token of m[1]!.trim().split(/\s+/).slice(0, 16)) {
      if (!/^[0-9a-f]{2}$/.test(token)) break;
      bytes.push(parseInt(token, 16));
    }
  }
  return Buffer.from(bytes);
}

/**
 * The counter on a disk image (through its backing chain), read offline: `-U` lets it
 * read the live image of a running VM too. Undefined when the sector holds no counter.
 */
export async function diskCounter(image: string): Promise<number | undefined> {
  const dump = await run('qemu-io', ['-r', '-U', '-c', 'read -v 0 512', image]);
  return parseDiskCounter(parseQemuIoDump(dump));
}
