import { escapeDnValue } from './escape';

/** The stoney cloud tree below the configured base (see the directory contract). */
export class StoneyTree {
  constructor(readonly base: string) {}

  get virtualization(): string {
    return `ou=virtualization,ou=services,${this.base}`;
  }
  get virtualMachines(): string {
    return `ou=virtual machines,${this.virtualization}`;
  }
  get pools(): string {
    return `ou=virtual machine pools,${this.virtualization}`;
  }
  get globalBackupPlan(): string {
    return `ou=backup,ou=configuration,${this.virtualization}`;
  }
  vm(name: string): string {
    return `sstVirtualMachine=${escapeDnValue(name)},${this.virtualMachines}`;
  }
  devices(vm: string): string {
    return `ou=devices,${this.vm(vm)}`;
  }
  vmBackup(vm: string): string {
    return `ou=backup,${this.vm(vm)}`;
  }
  runLeaf(vm: string, runDate: string): string {
    return `ou=${escapeDnValue(runDate)},${this.vmBackup(vm)}`;
  }
  pool(name: string): string {
    return `sstVirtualMachinePool=${escapeDnValue(name)},${this.pools}`;
  }
  poolBackup(pool: string): string {
    return `ou=backup,${this.pool(pool)}`;
  }
}
