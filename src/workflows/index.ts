export { backupVm } from './backup-vm';
export { backupVms } from './backup-vms';
