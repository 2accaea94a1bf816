/**
 * The manifest of a backup: every file's size and SHA-256 as retain wrote it, kept as one
 * more file of the backup directory (`<vm>.manifest.<date>`). Verification re-reads the
 * files against it.
 */
export const MANIFEST_FORMAT = 'vmbackup-manifest/1';

export interface ManifestEntry {
  name: string;
  size: number;
  sha256: string;
}

export interface Manifest {
  format: typeof MANIFEST_FORMAT;
  vm: string;
  runDate: string;
  /** When retain wrote it (ISO 8601). */
  createdAt: string;
  files: ManifestEntry[];
}

export const manifestFileName = (vm: string, runDate: string): string => `${vm}.manifest.${runDate}`;

export function buildManifest(
  vm: string,
  runDate: string,
  files: readonly ManifestEntry[],
  now: Date,
): Manifest {
  return {
    format: MANIFEST_FORMAT,
    vm,
    runDate,
    createdAt: now.toISOString(),
    files: [...files].sort((a, b) => a.name.localeCompare(b.name)),
  };
}

const isEntry = (e: unknown): e is ManifestEntry => {
  const r = e as Record<string, unknown>;
  return (
    typeof r === 'object' &&
    r !== null &&
    typeof r['name'] === 'string' &&
    !r['name'].includes('/') &&
    Number.isSafeInteger(r['size']) &&
    (r['size'] as number) >= 0 &&
    typeof r['sha256'] === 'string' &&
    /^[0-9a-f]{64}$/.test(r['sha256'])
  );
};

/** Parses a manifest; anything else than this run's well-formed manifest is an error saying what. */
export function parseManifest(text: string, vm: string, runDate: string): Manifest {
  let m: Record<string, unknown>;
  try {
    m = JSON.parse(text) as Record<string, unknown>;
  } catch (err) {
    throw new Error(`not JSON: ${(err as Error).message}`);
  }
  if (typeof m !== 'object' || m === null || m['format'] !== MANIFEST_FORMAT)
    throw new Error(`not a ${MANIFEST_FORMAT} manifest`);
  if (m['vm'] !== vm || m['runDate'] !== runDate)
    throw new Error(`describes ${String(m['vm'])} ${String(m['runDate'])}, not ${vm} ${runDate}`);
  const files = m['files'];
  if (!Array.isArray(files) || !files.every(isEntry)) throw new Error('malformed file list');
  return m as unknown as Manifest;
}
