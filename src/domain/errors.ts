/**
 * Return values of the original stoney cloud backup daemon, written to
 * sstProvisioningReturnValue so that existing portals keep understanding them.
 */
export const ErrorCode = {
  ok: 0,
  undefinedError: 1,
  missingConfigurationValue: 2,
  ramDiskInvalid: 3,
  ramDiskTooSmall: 4,
  cannotSaveState: 5,
  copyToBackupWriteFailed: 6,
  copyFileToBackupFailed: 7,
  copyImageToBackupFailed: 8,
  copyXmlToBackupFailed: 9,
  copyEntryToBackupFailed: 10,
  mergeFailed: 11,
  cannotRemoveOldImage: 12,
  cannotRemoveFile: 13,
  cannotCreateEmptyImage: 15,
  cannotRenameImage: 16,
  directoryConnectionFailed: 17,
  wrongStateInformation: 18,
  imageOwner: 19,
  imagePermission: 20,
  cannotRestoreMachine: 21,
  cannotLockMachine: 22,
  cannotFindMachine: 23,
  stateFileToRetainFailed: 24,
  retainRootMissing: 25,
  backupRootMissing: 26,
  cannotCreateDirectory: 27,
  cannotSaveXml: 28,
  cannotSaveDirectoryEntry: 29,
  configurationEntryNotFound: 32,
  directoryXmlInconsistency: 33,
  unsupportedProtocol: 35,
  missingFiles: 37,
  corruptImage: 38,
  unsupportedConfigurationValue: 39,
  cannotMoveImageBack: 40,
  cannotDefine: 41,
  cannotStart: 42,
  retainNotFullyDeleted: 46,
  notEnoughDiskSpace: 47,
  noDiskSpaceInformation: 48,
} as const;

export type ErrorCodeValue = (typeof ErrorCode)[keyof typeof ErrorCode];

/** The failure type name Temporal carries across workers; the code travels in the failure details. */
export const BACKUP_ERROR_TYPE = 'BackupError';

/**
 * A business error that maps to one of the contract's return values. Retrying cannot fix
 * it — unless it is `transient` (the directory is away): then the activity is retried.
 */
export class BackupError extends Error {
  constructor(
    readonly code: ErrorCodeValue,
    message: string,
    readonly transient = false,
  ) {
    super(message);
    this.name = BACKUP_ERROR_TYPE;
  }
}
