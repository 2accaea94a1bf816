import { promises as fs } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Virsh } from '../hypervisor/virsh';

/**
 * Guest-visible disk I/O without a guest OS: QEMU's monitor runs qemu-io on the very
 * device the guest sees and prints the outcome into the domain's log.
 */
export class GuestIo {
  constructor(
    private readonly virsh: Virsh,
    private readonly logDir = '/var/log/libvirt/qemu',
  ) {}

  private async logSize(vm: string): Promise<number> {
    try {
      return (await fs.stat(`${this.logDir}/${vm}.log`)).size;
    } catch {
      return 0;
    }
  }

  private async run(
    vm: string,
    diskIndex: number,
    command: string,
    expect: RegExp,
    fail: RegExp,
  ): Promise<boolean> {
    const from = await this.logSize(vm);
    const device = `/machine/peripheral/virtio-disk${diskIndex}/virtio-backend`;
    await this.virsh.hmp(vm, `qemu-io -d ${device} "${command}"`);
    for (let i = 0; i < 100; i++) {
      const text = (await fs.readFile(`${this.logDir}/${vm}.log`)).subarray(from).toString('utf8');
      if (fail.test(text)) return false;
      if (expect.test(text)) return true;
      await sleep(50);
    }
    throw new Error(`no answer from qemu-io on ${vm} disk ${diskIndex} for "${command}"`);
  }

  /** Writes `length` bytes of `pattern` at `offset` through the guest's disk device. */
  async write(vm: string, diskIndex: number, pattern: number, offset: number, length: number): Promise<void> {
    const ok = await this.run(
      vm,
      diskIndex,
      `write -P 0x${pattern.toString(16)} ${offset} ${length}`,
      /wrote \d+\/\d+ bytes/,
      /write failed|error/i,
    );
    if (!ok) throw new Error(`guest write on ${vm} disk ${diskIndex} failed`);
  }

  /** True when the guest reads `pattern` over the whole range. */
  reads(vm: string, diskIndex: number, pattern: number, offset: number, length: number): Promise<boolean> {
    return this.run(
      vm,
      diskIndex,
      `read -P 0x${pattern.toString(16)} ${offset} ${length}`,
      /read \d+\/\d+ bytes/,
      /Pattern verification failed|read failed/,
    );
  }
}
