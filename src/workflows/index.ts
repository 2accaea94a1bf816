export { backupVm } from './backup-vm';
export { backupVms } from './backup-vms';
export { restoreVm } from './restore-vm';
export { nightlyBackup } from './nightly-backup';
export { listBackups } from './list-backups';
export { verifyBackups, verifyFleet } from './verify-backups';
export { exportDisk } from './export-disk';
