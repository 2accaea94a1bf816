import { readFileSync } from 'node:fs';
import path from 'node:path';
import { maintenanceCron, type MaintenanceSchedule } from './domain/schedules';

/** Settings come from the environment only; `.dev/env` is the embedded default. */
export class ConfigError extends Error {
  override name = 'ConfigError';
}

type Env = Readonly<Record<string, string | undefined>>;

function need(env: Env, name: string, trim = true): string {
  const v = env[name];
  if (v === undefined || v.trim() === '') {
    throw new ConfigError(
      `environment variable ${name} is not set (source .dev/env for the embedded defaults)`,
    );
  }
  return trim ? v.trim() : v;
}

function absolute(env: Env, name: string): string {
  const v = need(env, name);
  if (!path.isAbsolute(v))
    throw new ConfigError(`environment variable ${name} must be an absolute path, got ${JSON.stringify(v)}`);
  return path.normalize(v).replace(/\/+$/, '') || '/';
}

function seconds(env: Env, name: string, fallback: number): number {
  const v = env[name];
  if (v === undefined || v === '') return fallback;
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0)
    throw new ConfigError(
      `environment variable ${name} must be a positive number of seconds, got ${JSON.stringify(v)}`,
    );
  return n;
}

/** Files and names for a TLS connection to Temporal; each part is optional. */
export interface TemporalTlsConfig {
  /** Client certificate and key for mTLS; both or neither. */
  clientCertPath?: string | undefined;
  clientKeyPath?: string | undefined;
  /** CA that issued the server's certificate; without it the system's trusted roots apply. */
  serverCaCertPath?: string | undefined;
  /** Name to check the server's certificate against, when TEMPORAL_ADDRESS's host is not it. */
  serverName?: string | undefined;
}

export interface TemporalConfig {
  address: string;
  namespace: string;
  uiUrl?: string | undefined;
  /** Absent: a plain connection. */
  tls?: TemporalTlsConfig | undefined;
  apiKey?: string | undefined;
}

/** TLS to the directory; the server's certificate is always verified. */
export interface DirectoryTlsConfig {
  /** `ldaps`: TLS from the first byte; `starttls`: an ldap:// connection upgraded before the bind. */
  mode: 'ldaps' | 'starttls';
  /** PEM certificates of LDAP_CA_FILE, read once; absent: Node's trusted roots. */
  ca?: string | undefined;
  caFile?: string | undefined;
}

export interface DirectoryConfig {
  url: string;
  bindDn: string;
  bindPassword: string;
  baseDn: string;
  /** Absent: a plain connection. */
  tls?: DirectoryTlsConfig | undefined;
}

export interface NodeConfig {
  libvirtUri: string;
  /** Live disk images must lie below it (the original's /var/virtualization). */
  imagesRoot: string;
  /** Retain, backup and RAM disk directories named by plans must lie below one of these. */
  storageRoots: string[];
  /** Where libvirt keeps each running domain's QEMU pid file (`<vm>.pid`). */
  libvirtRunDir: string;
  /** Live mode: how long a memory copy may run before the VM is paused to end it (s). */
  liveMaxCopySeconds?: number | undefined;
}

export const CONTROL_TASK_QUEUE = 'vmbackup-control';

export function temporalConfig(env: Env = process.env): TemporalConfig {
  const address = need(env, 'TEMPORAL_ADDRESS');
  if (!/^[A-Za-z0-9.-]+:\d+$/.test(address))
    throw new ConfigError(`TEMPORAL_ADDRESS must be host:port, got ${JSON.stringify(address)}`);
  return {
    address,
    namespace: need(env, 'TEMPORAL_NAMESPACE'),
    uiUrl: env['TEMPORAL_UI_URL'],
    ...temporalSecurity(env),
  };
}

function optionalAbsolute(env: Env, name: string): string | undefined {
  const v = env[name];
  return v === undefined || v.trim() === '' ? undefined : absolute(env, name);
}

/** The standard TEMPORAL_TLS_* names (as the Temporal CLI reads them) and TEMPORAL_API_KEY. */
function temporalSecurity(env: Env): Pick<TemporalConfig, 'tls' | 'apiKey'> {
  const tls: TemporalTlsConfig = {
    clientCertPath: optionalAbsolute(env, 'TEMPORAL_TLS_CLIENT_CERT_PATH'),
    clientKeyPath: optionalAbsolute(env, 'TEMPORAL_TLS_CLIENT_KEY_PATH'),
    serverCaCertPath: optionalAbsolute(env, 'TEMPORAL_TLS_SERVER_CA_CERT_PATH'),
    serverName: env['TEMPORAL_TLS_SERVER_NAME']?.trim() || undefined,
  };
  if ((tls.clientCertPath === undefined) !== (tls.clientKeyPath === undefined)) {
    const [set, unset] =
      tls.clientCertPath === undefined
        ? ['TEMPORAL_TLS_CLIENT_KEY_PATH', 'TEMPORAL_TLS_CLIENT_CERT_PATH']
        : ['TEMPORAL_TLS_CLIENT_CERT_PATH', 'TEMPORAL_TLS_CLIENT_KEY_PATH'];
    throw new ConfigError(`${set} is set but ${unset} is not: a client certificate needs its key`);
  }
  const apiKey = env['TEMPORAL_API_KEY']?.trim() || undefined;
  // An API key travels as a bearer token, so it implies TLS even without any TLS_* setting.
  const anyTls = Object.values(tls).some((v) => v !== undefined);
  return { tls: anyTls || apiKey !== undefined ? tls : undefined, apiKey };
}

export function directoryConfig(env: Env = process.env): DirectoryConfig {
  const url = need(env, 'LDAP_URL');
  if (!/^ldaps?:\/\/[^/\s]+\/?$/.test(url))
    throw new ConfigError(`LDAP_URL must look like ldap://host:port, got ${JSON.stringify(url)}`);
  return {
    url,
    bindDn: need(env, 'LDAP_BIND_DN'),
    bindPassword: need(env, 'LDAP_BIND_PASSWORD', false),
    baseDn: need(env, 'LDAP_BASE_DN'),
    tls: directoryTls(env, url),
  };
}

function directoryTls(env: Env, url: string): DirectoryTlsConfig | undefined {
  const raw = env['LDAP_STARTTLS']?.trim().toLowerCase() ?? '';
  if (!['', 'true', 'false'].includes(raw))
    throw new ConfigError(`LDAP_STARTTLS must be true or false, got ${JSON.stringify(env['LDAP_STARTTLS'])}`);
  const ldaps = url.startsWith('ldaps://');
  if (ldaps && raw === 'true')
    throw new ConfigError('LDAP_STARTTLS=true needs an ldap:// URL: an ldaps:// connection is TLS already');
  const mode = ldaps ? 'ldaps' : raw === 'true' ? 'starttls' : undefined;
  const caFile = optionalAbsolute(env, 'LDAP_CA_FILE');
  if (!mode) {
    // A CA file that would silently go unused hides a connection without TLS.
    if (caFile !== undefined)
      throw new ConfigError(
        'LDAP_CA_FILE is set but LDAP_URL is plain ldap://: use ldaps:// or LDAP_STARTTLS=true',
      );
    return undefined;
  }
  if (caFile === undefined) return { mode };
  let ca: string;
  try {
    ca = readFileSync(caFile, 'utf8');
  } catch (err) {
    throw new ConfigError(`LDAP_CA_FILE ${caFile} cannot be read: ${(err as Error).message}`);
  }
  if (!ca.includes('-----BEGIN CERTIFICATE-----'))
    throw new ConfigError(`LDAP_CA_FILE ${caFile} holds no PEM certificate`);
  return { mode, ca, caFile };
}

export function nodeConfig(env: Env = process.env): NodeConfig {
  const imagesRoot = absolute(env, 'VMBACKUP_IMAGES_ROOT');
  const roots = need(env, 'VMBACKUP_STORAGE_ROOTS')
    .split(':')
    .filter((r) => r !== '');
  if (roots.length === 0) throw new ConfigError('VMBACKUP_STORAGE_ROOTS names no directory');
  for (const r of roots) {
    if (!path.isAbsolute(r))
      throw new ConfigError(
        `VMBACKUP_STORAGE_ROOTS entries must be absolute paths, got ${JSON.stringify(r)}`,
      );
  }
  return {
    libvirtUri: need(env, 'LIBVIRT_URI'),
    imagesRoot,
    storageRoots: roots.map((r) => path.normalize(r).replace(/\/+$/, '') || '/'),
    libvirtRunDir: env['VMBACKUP_LIBVIRT_RUN_DIR']
      ? absolute(env, 'VMBACKUP_LIBVIRT_RUN_DIR')
      : '/run/libvirt/qemu',
    liveMaxCopySeconds: seconds(env, 'VMBACKUP_LIVE_MAX_COPY_SECONDS', 120),
  };
}

/** How much a node worker runs at once. */
export interface NodeLimits {
  /** `virsh save`s in parallel (each also waits for room for its state file). */
  maxParallelSaves: number;
  /** The worker's activity slots; a waiting save holds one, so keep it above the node's VMs. */
  maxParallelActivities: number;
  /** MiB per second the node's own copies and hashes may read, all runs together; 0: unlimited. */
  readMiBPerSecond: number;
}

function count(env: Env, name: string, fallback: number): number {
  const v = env[name];
  if (v === undefined || v.trim() === '') return fallback;
  const n = Number(v);
  if (!Number.isInteger(n) || n <= 0)
    throw new ConfigError(
      `environment variable ${name} must be a positive integer, got ${JSON.stringify(v)}`,
    );
  return n;
}

/** A positive integer, or 0 when unset: no limit. */
function optionalCount(env: Env, name: string): number {
  const v = env[name];
  return v === undefined || v.trim() === '' ? 0 : count(env, name, 0);
}

export function nodeLimits(env: Env = process.env): NodeLimits {
  return {
    maxParallelSaves: count(env, 'VMBACKUP_MAX_PARALLEL_SAVES', 4),
    maxParallelActivities: count(env, 'VMBACKUP_MAX_PARALLEL_ACTIVITIES', 32),
    readMiBPerSecond: optionalCount(env, 'VMBACKUP_READ_MIB_PER_SECOND'),
  };
}

/** How long workflows wait for things; in workflow input so that tests can shorten them. */
export interface Timing {
  /** Bounded wait for a node worker to pick up the first, non-destructive step. */
  nodeWaitSeconds: number;
  /** A node activity whose worker died is retried after this many seconds without heartbeat. */
  heartbeatSeconds: number;
  /** Longest pause between two attempts of a node step (absent in runs from before it existed). */
  retryMaxSeconds?: number | undefined;
}

export function timingFromEnv(env: Env = process.env): Timing {
  return {
    nodeWaitSeconds: seconds(env, 'VMBACKUP_NODE_WAIT_SECONDS', 120),
    heartbeatSeconds: seconds(env, 'VMBACKUP_HEARTBEAT_SECONDS', 20),
    retryMaxSeconds: seconds(env, 'VMBACKUP_RETRY_MAX_SECONDS', 60),
  };
}

/** IANA time zone the plans' cron fields are written in (local time on the nodes). */
export function scheduleTimezone(env: Env = process.env): string {
  const tz = env['VMBACKUP_TIMEZONE']?.trim() || 'UTC';
  try {
    new Intl.DateTimeFormat('en', { timeZone: tz });
  } catch {
    throw new ConfigError(
      `VMBACKUP_TIMEZONE must be an IANA time zone such as Europe/Zurich, got ${JSON.stringify(tz)}`,
    );
  }
  return tz;
}

/** Days within which every kept backup is verified again (VMBACKUP_VERIFY_WINDOW_DAYS, default 7). */
export function verifyWindowDays(env: Env = process.env): number {
  const v = env['VMBACKUP_VERIFY_WINDOW_DAYS'];
  if (v === undefined || v === '') return 7;
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0)
    throw new ConfigError(
      `VMBACKUP_VERIFY_WINDOW_DAYS must be a positive number of days, got ${JSON.stringify(v)}`,
    );
  return n;
}

/**
 * The fleet-wide schedules beside the backup plans: daily verification of the backups not
 * verified within the window (VMBACKUP_VERIFY_CRON, default 13:30 local, `off` to turn off).
 */
export function maintenanceSchedules(env: Env = process.env): MaintenanceSchedule[] {
  const timezone = scheduleTimezone(env);
  const cron = (name: string, fallback: string) => {
    try {
      return maintenanceCron(env[name], fallback, name);
    } catch (err) {
      throw new ConfigError((err as Error).message);
    }
  };
  return [
    {
      id: 'vmbackup-verify',
      workflowType: 'verifyFleet',
      cron: cron('VMBACKUP_VERIFY_CRON', '30 13 * * *'),
      timezone,
      note: 'verifies every kept backup not verified within the window, one at a time per node',
      input: { windowDays: verifyWindowDays(env) },
    },
    {
      id: 'vmbackup-drill',
      workflowType: 'drillFleet',
      cron: cron('VMBACKUP_DRILL_CRON', '0 3 1 * *'),
      timezone,
      note: "restore drill of every VM's latest backup, one VM at a time per node",
      input: {},
    },
  ];
}

/** Minutes between the control worker's schedule syncs; 0 turns them off. */
export function scheduleSyncMinutes(env: Env = process.env): number {
  const v = env['VMBACKUP_SCHEDULE_SYNC_MINUTES'];
  if (v === undefined || v === '') return 10;
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0)
    throw new ConfigError(
      `VMBACKUP_SCHEDULE_SYNC_MINUTES must be a number of minutes, got ${JSON.stringify(v)}`,
    );
  return n;
}
