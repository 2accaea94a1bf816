export { backupVm } from './backup-vm';
export { backupVms } from './backup-vms';
export { restoreVm } from './restore-vm';
