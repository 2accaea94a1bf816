import { BackupError, ErrorCode } from './errors';
import { pathFromFileUri } from './paths';

/** Attributes of an LDAP entry, names lower-cased, values as strings. */
export type Attributes = Readonly<Record<string, readonly string[]>>;

export type PlanLevel = 'vm' | 'pool' | 'global';

/**
 * How a plan backs up a running VM: `live` (the default) or `save`. Kept in `vmbackupMode`
 * of the project's own auxiliary class (ldap/schema/vmbackup.ldif), not in the stoney schema.
 */
export type BackupMode = 'live' | 'save';

export interface BackupPlan {
  level: PlanLevel;
  dn: string;
  backupRoot: string;
  retainRoot: string;
  ramDisk?: string | undefined;
  imageFormat: 'qcow2';
  imageOwner: string;
  imageGroup: string;
  /** Octal permission bits, e.g. 0o660. */
  imagePermission: number;
  directoryOwner?: string | undefined;
  directoryGroup?: string | undefined;
  directoryPermission?: number | undefined;
  /** MiB/s for the merge; 0 means unlimited. */
  mergeBandwidth: number;
  iterations: number;
  excluded: boolean;
  forceStart: boolean;
  restoreWithoutState: boolean;
  /** From the chosen plan entry's `vmbackupMode`; `live` when it has none. */
  mode: BackupMode;
  /** `vmbackupVerifyDays`: the plan's own verification window; the global setting when absent. */
  verifyDays?: number | undefined;
}

export const BACKUP_CLASS = 'sstvirtualizationbackupobjectclass';
/** The project's own auxiliary class (ldap/schema/vmbackup.ldif) that may carry `vmbackupMode`. */
export const PLAN_MODE_CLASS = 'vmbackupplanobjectclass';

export function hasBackupClass(entry: Attributes | undefined): boolean {
  return (entry?.['objectclass'] ?? []).some((c) => c.toLowerCase() === BACKUP_CLASS);
}

/** The contract's lookup: the VM's own plan, else its pool's, else the global one. */
export function choosePlanEntry(
  candidates: ReadonlyArray<{ level: PlanLevel; dn: string; entry: Attributes | undefined }>,
): { level: PlanLevel; dn: string; entry: Attributes } {
  for (const c of candidates) {
    if (c.entry && hasBackupClass(c.entry)) return { level: c.level, dn: c.dn, entry: c.entry };
  }
  throw new BackupError(
    ErrorCode.configurationEntryNotFound,
    `no backup plan found (looked at ${candidates.map((c) => c.dn).join(', ')})`,
  );
}

function single(entry: Attributes, name: string): string | undefined {
  const v = entry[name.toLowerCase()];
  return v && v.length > 0 ? v[0] : undefined;
}

function required(entry: Attributes, name: string, dn: string): string {
  const v = single(entry, name);
  if (v === undefined || v.trim() === '') {
    throw new BackupError(ErrorCode.missingConfigurationValue, `backup plan ${dn} has no ${name}`);
  }
  return v.trim();
}

export function parseBoolean(value: string | undefined, name: string, fallback: boolean): boolean {
  if (value === undefined) return fallback;
  if (value === 'TRUE') return true;
  if (value === 'FALSE') return false;
  throw new BackupError(
    ErrorCode.unsupportedConfigurationValue,
    `${name} must be TRUE or FALSE, got ${JSON.stringify(value)}`,
  );
}

function parseInteger(
  value: string | undefined,
  name: string,
  fallback: number,
  min: number,
  max: number,
): number {
  if (value === undefined) return fallback;
  if (!/^-?\d+$/.test(value.trim())) {
    throw new BackupError(
      ErrorCode.unsupportedConfigurationValue,
      `${name} must be an integer, got ${JSON.stringify(value)}`,
    );
  }
  const n = Number(value.trim());
  if (n < min || n > max) {
    throw new BackupError(
      ErrorCode.unsupportedConfigurationValue,
      `${name} must be between ${min} and ${max}, got ${n}`,
    );
  }
  return n;
}

/** Permissions are octal digits stored as an INTEGER (`660`); the design page writes `0660`. Accept both. */
export function parsePermission(value: string, name: string): number {
  const v = value.trim();
  if (!/^0?[0-7]{3}$/.test(v)) {
    throw new BackupError(
      ErrorCode.unsupportedConfigurationValue,
      `${name} must be octal like 660, got ${JSON.stringify(value)}`,
    );
  }
  return parseInt(v, 8);
}

const BACKUP_MODES: readonly BackupMode[] = ['live', 'save'];

/** `vmbackupMode` of one plan entry: absent means `live`; compared case-insensitively after trim. */
export function parseMode(value: string | undefined, dn: string): BackupMode {
  if (value === undefined) return 'live';
  const v = value.trim().toLowerCase();
  const mode = BACKUP_MODES.find((m) => m === v);
  if (mode === undefined) {
    throw new BackupError(
      ErrorCode.unsupportedConfigurationValue,
      `${dn}: vmbackupMode must be live or save, got ${JSON.stringify(value)}`,
    );
  }
  return mode;
}

/** Portable user and group names only: they are handed to chown. */
function ownerName(value: string, name: string): string {
  if (!/^[A-Za-z_][A-Za-z0-9_.-]{0,31}$/.test(value) && !/^\d+$/.test(value)) {
    throw new BackupError(
      ErrorCode.unsupportedConfigurationValue,
      `${name} is not a valid user or group name: ${JSON.stringify(value)}`,
    );
  }
  return value;
}

export function parsePlan(level: PlanLevel, dn: string, entry: Attributes): BackupPlan {
  const format = required(entry, 'sstVirtualizationDiskImageFormat', dn);
  if (format !== 'qcow2') {
    throw new BackupError(
      ErrorCode.unsupportedConfigurationValue,
      `${dn}: disk image format ${JSON.stringify(format)} is not supported (qcow2 only)`,
    );
  }
  const ramDiskUri = single(entry, 'sstBackupRamDiskLocation');
  const dirPerm = single(entry, 'sstVirtualizationDiskImageDirectoryPermission');
  const dirOwner = single(entry, 'sstVirtualizationDiskImageDirectoryOwner');
  const dirGroup = single(entry, 'sstVirtualizationDiskImageDirectoryGroup');
  return {
    level,
    dn,
    backupRoot: pathFromFileUri(required(entry, 'sstBackupRootDirectory', dn), 'sstBackupRootDirectory'),
    retainRoot: pathFromFileUri(required(entry, 'sstBackupRetainDirectory', dn), 'sstBackupRetainDirectory'),
    ramDisk: ramDiskUri ? pathFromFileUri(ramDiskUri, 'sstBackupRamDiskLocation') : undefined,
    imageFormat: 'qcow2',
    imageOwner: ownerName(
      required(entry, 'sstVirtualizationDiskImageOwner', dn),
      'sstVirtualizationDiskImageOwner',
    ),
    imageGroup: ownerName(
      required(entry, 'sstVirtualizationDiskImageGroup', dn),
      'sstVirtualizationDiskImageGroup',
    ),
    imagePermission: parsePermission(
      required(entry, 'sstVirtualizationDiskImagePermission', dn),
      'sstVirtualizationDiskImagePermission',
    ),
    directoryOwner: dirOwner ? ownerName(dirOwner, 'sstVirtualizationDiskImageDirectoryOwner') : undefined,
    directoryGroup: dirGroup ? ownerName(dirGroup, 'sstVirtualizationDiskImageDirectoryGroup') : undefined,
    directoryPermission: dirPerm
      ? parsePermission(dirPerm, 'sstVirtualizationDiskImageDirectoryPermission')
      : undefined,
    mergeBandwidth: parseInteger(
      single(entry, 'sstVirtualizationBandwidthMerge'),
      'sstVirtualizationBandwidthMerge',
      0,
      0,
      1_000_000,
    ),
    iterations: parseInteger(
      single(entry, 'sstBackupNumberOfIterations'),
      'sstBackupNumberOfIterations',
      1,
      1,
      99,
    ),
    excluded: parseBoolean(single(entry, 'sstBackupExcludeFromBackup'), 'sstBackupExcludeFromBackup', false),
    forceStart: parseBoolean(
      single(entry, 'sstVirtualizationVirtualMachineForceStart'),
      'sstVirtualizationVirtualMachineForceStart',
      false,
    ),
    restoreWithoutState: parseBoolean(
      single(entry, 'sstRestoreVMWithoutState'),
      'sstRestoreVMWithoutState',
      false,
    ),
    mode: parseMode(single(entry, 'vmbackupMode'), dn),
    ...(single(entry, 'vmbackupVerifyDays') !== undefined && {
      verifyDays: parseInteger(single(entry, 'vmbackupVerifyDays'), 'vmbackupVerifyDays', 7, 1, 366),
    }),
  };
}
