import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  ConfigError,
  directoryConfig,
  maintenanceSchedules,
  nodeConfig,
  temporalConfig,
  timingFromEnv,
} from '../../src/config';

/** Runs `fn`, insists that it throws a ConfigError and returns its message. */
function configErrorOf(fn: () => unknown): string {
  let thrown: unknown;
  try {
    fn();
  } catch (e) {
    thrown = e;
  }
  expect(thrown, 'expected a ConfigError to be thrown').toBeInstanceOf(ConfigError);
  expect((thrown as Error).name).toBe('ConfigError');
  return (thrown as Error).message;
}

describe('temporalConfig', () => {
  const env = { TEMPORAL_ADDRESS: 'localhost:7233', TEMPORAL_NAMESPACE: 'default' };

  it('reads address and namespace', () => {
    expect(temporalConfig(env)).toEqual({
      address: 'localhost:7233',
      namespace: 'default',
      uiUrl: undefined,
    });
  });

  it('reads the optional UI URL', () => {
    expect(temporalConfig({ ...env, TEMPORAL_UI_URL: 'http://localhost:8233' }).uiUrl).toBe(
      'http://localhost:8233',
    );
  });

  it('accepts an IPv4 address and a fully qualified host name', () => {
    expect(temporalConfig({ ...env, TEMPORAL_ADDRESS: '127.0.0.1:7233' }).address).toBe('127.0.0.1:7233');
    expect(temporalConfig({ ...env, TEMPORAL_ADDRESS: 'temporal.example.com:443' }).address).toBe(
      'temporal.example.com:443',
    );
  });

  it('trims surrounding white space', () => {
    expect(
      temporalConfig({ TEMPORAL_ADDRESS: ' localhost:7233\n', TEMPORAL_NAMESPACE: ' ns ' }),
    ).toMatchObject({
      address: 'localhost:7233',
      namespace: 'ns',
    });
  });

  it.each(['TEMPORAL_ADDRESS', 'TEMPORAL_NAMESPACE'])('refuses a missing %s, naming it', (name) => {
    expect(configErrorOf(() => temporalConfig({ ...env, [name]: undefined }))).toContain(name);
  });

  it.each(['', '   '])('treats %j as a missing variable', (value) => {
    expect(configErrorOf(() => temporalConfig({ ...env, TEMPORAL_NAMESPACE: value }))).toContain(
      'TEMPORAL_NAMESPACE',
    );
  });

  it.each([
    ['a URL with a scheme', 'http://localhost:7233'],
    ['a host without port', 'localhost'],
    ['a non-numeric port', 'localhost:http'],
    ['a port without host', ':7233'],
    ['a path', 'localhost:7233/x'],
    ['an inner space', 'local host:7233'],
  ])('refuses %s as TEMPORAL_ADDRESS', (_what, address) => {
    expect(configErrorOf(() => temporalConfig({ ...env, TEMPORAL_ADDRESS: address }))).toContain(
      'TEMPORAL_ADDRESS',
    );
  });
});

describe('directoryConfig', () => {
  const env = {
    LDAP_URL: 'ldap://localhost:3389',
    LDAP_BIND_DN: 'cn=admin,o=stepping-stone,c=ch',
    LDAP_BIND_PASSWORD: 'secret',
    LDAP_BASE_DN: 'o=stepping-stone,c=ch',
  };

  it('reads URL, bind DN, password and base DN', () => {
    expect(directoryConfig(env)).toEqual({
      url: 'ldap://localhost:3389',
      bindDn: 'cn=admin,o=stepping-stone,c=ch',
      bindPassword: 'secret',
      baseDn: 'o=stepping-stone,c=ch',
    });
  });

  it.each(['ldaps://ldap.example.com:636', 'ldap://ldap.example.com', 'ldap://127.0.0.1:389/'])(
    'accepts the LDAP URL %s',
    (url) => {
      expect(directoryConfig({ ...env, LDAP_URL: url }).url).toBe(url);
    },
  );

  it.each(['http://localhost:389', 'localhost:389', 'ldap://', 'ldap://host/o=t', 'ldapi:///run/slapd.sock'])(
    'refuses the LDAP URL %j',
    (url) => {
      expect(configErrorOf(() => directoryConfig({ ...env, LDAP_URL: url }))).toContain('LDAP_URL');
    },
  );

  it.each(['LDAP_URL', 'LDAP_BIND_DN', 'LDAP_BIND_PASSWORD', 'LDAP_BASE_DN'])(
    'refuses a missing %s, naming it',
    (name) => {
      expect(configErrorOf(() => directoryConfig({ ...env, [name]: undefined }))).toContain(name);
    },
  );

  it('does not reveal the bind password in an error message', () => {
    expect(configErrorOf(() => directoryConfig({ ...env, LDAP_URL: 'bad' }))).not.toContain('secret');
  });
});

describe('nodeConfig', () => {
  const env = {
    LIBVIRT_URI: 'qemu:///system',
    VMBACKUP_IMAGES_ROOT: '/var/virtualization',
    VMBACKUP_STORAGE_ROOTS: '/var/backup:/var/virtualization/retain',
  };

  it('reads the libvirt URI, the images root and the storage roots', () => {
    expect(nodeConfig(env)).toEqual({
      libvirtUri: 'qemu:///system',
      imagesRoot: '/var/virtualization',
      storageRoots: ['/var/backup', '/var/virtualization/retain'],
      libvirtRunDir: '/run/libvirt/qemu',
      liveMaxCopySeconds: 120,
    });
  });

  it('reads how long a live memory copy may run before the VM is paused, and refuses a bad value', () => {
    expect(nodeConfig({ ...env, VMBACKUP_LIVE_MAX_COPY_SECONDS: '2.5' }).liveMaxCopySeconds).toBe(2.5);
    for (const bad of ['0', '-1', 'soon'])
      expect(configErrorOf(() => nodeConfig({ ...env, VMBACKUP_LIVE_MAX_COPY_SECONDS: bad }))).toContain(
        'VMBACKUP_LIVE_MAX_COPY_SECONDS',
      );
  });

  it('reads where libvirt keeps the QEMU pid files, and refuses a relative path', () => {
    expect(nodeConfig({ ...env, VMBACKUP_LIBVIRT_RUN_DIR: '/var/run/libvirt/qemu/' }).libvirtRunDir).toBe(
      '/var/run/libvirt/qemu',
    );
    expect(configErrorOf(() => nodeConfig({ ...env, VMBACKUP_LIBVIRT_RUN_DIR: 'run/qemu' }))).toContain(
      'VMBACKUP_LIBVIRT_RUN_DIR',
    );
  });

  it('normalises the images root and strips trailing slashes', () => {
    expect(nodeConfig({ ...env, VMBACKUP_IMAGES_ROOT: '/var//virtualization/./' }).imagesRoot).toBe(
      '/var/virtualization',
    );
  });

  it('keeps "/" as images root', () => {
    expect(nodeConfig({ ...env, VMBACKUP_IMAGES_ROOT: '/' }).imagesRoot).toBe('/');
  });

  it('normalises storage roots and skips empty entries', () => {
    expect(nodeConfig({ ...env, VMBACKUP_STORAGE_ROOTS: '/var/backup/::/mnt//ram/./' }).storageRoots).toEqual(
      ['/var/backup', '/mnt/ram'],
    );
  });

  it('accepts a single storage root', () => {
    expect(nodeConfig({ ...env, VMBACKUP_STORAGE_ROOTS: '/srv/backup' }).storageRoots).toEqual([
      '/srv/backup',
    ]);
  });

  it.each(['LIBVIRT_URI', 'VMBACKUP_IMAGES_ROOT', 'VMBACKUP_STORAGE_ROOTS'])(
    'refuses a missing %s, naming it',
    (name) => {
      expect(configErrorOf(() => nodeConfig({ ...env, [name]: undefined }))).toContain(name);
    },
  );

  it.each(['var/virtualization', './images', '~/images'])('refuses the relative images root %j', (value) => {
    const message = configErrorOf(() => nodeConfig({ ...env, VMBACKUP_IMAGES_ROOT: value }));
    expect(message).toContain('VMBACKUP_IMAGES_ROOT');
    expect(message).toContain('absolute');
  });

  it('refuses a relative storage root among absolute ones', () => {
    const message = configErrorOf(() => nodeConfig({ ...env, VMBACKUP_STORAGE_ROOTS: '/var/backup:retain' }));
    expect(message).toContain('VMBACKUP_STORAGE_ROOTS');
    expect(message).toContain('"retain"');
  });
});

describe('timingFromEnv', () => {
  it('defaults to 120 s node wait, 20 s heartbeat and at most 60 s between attempts', () => {
    expect(timingFromEnv({})).toEqual({ nodeWaitSeconds: 120, heartbeatSeconds: 20, retryMaxSeconds: 60 });
  });

  it('treats empty variables as unset', () => {
    expect(timingFromEnv({ VMBACKUP_NODE_WAIT_SECONDS: '', VMBACKUP_HEARTBEAT_SECONDS: '' })).toEqual({
      nodeWaitSeconds: 120,
      heartbeatSeconds: 20,
      retryMaxSeconds: 60,
    });
  });

  it('reads each value from its own variable', () => {
    expect(
      timingFromEnv({
        VMBACKUP_NODE_WAIT_SECONDS: '5',
        VMBACKUP_HEARTBEAT_SECONDS: '2.5',
        VMBACKUP_RETRY_MAX_SECONDS: '1',
      }),
    ).toEqual({ nodeWaitSeconds: 5, heartbeatSeconds: 2.5, retryMaxSeconds: 1 });
    expect(timingFromEnv({ VMBACKUP_HEARTBEAT_SECONDS: '7' })).toEqual({
      nodeWaitSeconds: 120,
      heartbeatSeconds: 7,
      retryMaxSeconds: 60,
    });
  });

  it.each(['0', '-1', 'abc', '10s', 'Infinity', 'NaN', '  '])(
    'refuses %j as a number of seconds, naming the variable',
    (value) => {
      expect(configErrorOf(() => timingFromEnv({ VMBACKUP_NODE_WAIT_SECONDS: value }))).toContain(
        'VMBACKUP_NODE_WAIT_SECONDS',
      );
      expect(configErrorOf(() => timingFromEnv({ VMBACKUP_HEARTBEAT_SECONDS: value }))).toContain(
        'VMBACKUP_HEARTBEAT_SECONDS',
      );
    },
  );
});

describe('nodeConfig storage roots and the bind password', () => {
  const base = { LIBVIRT_URI: 'qemu:///system', VMBACKUP_IMAGES_ROOT: '/var/virtualization' };
  it('keeps / as a storage root', () => {
    expect(nodeConfig({ ...base, VMBACKUP_STORAGE_ROOTS: '/' }).storageRoots).toEqual(['/']);
  });
  it('refuses a storage root list that names no directory', () => {
    expect(configErrorOf(() => nodeConfig({ ...base, VMBACKUP_STORAGE_ROOTS: ':' }))).toContain(
      'VMBACKUP_STORAGE_ROOTS',
    );
  });
  it('keeps spaces around the bind password', () => {
    const env = {
      LDAP_URL: 'ldap://127.0.0.1:3389',
      LDAP_BIND_DN: 'cn=admin',
      LDAP_BIND_PASSWORD: ' secret ',
      LDAP_BASE_DN: 'o=x',
    };
    expect(directoryConfig(env).bindPassword).toBe(' secret ');
  });
});

describe('temporalConfig TLS and API key', () => {
  const env = { TEMPORAL_ADDRESS: 'temporal.example.com:7233', TEMPORAL_NAMESPACE: 'default' };
  const pair = {
    TEMPORAL_TLS_CLIENT_CERT_PATH: '/etc/vmbackup/tls/client.pem',
    TEMPORAL_TLS_CLIENT_KEY_PATH: '/etc/vmbackup/tls/client.key',
  };

  it('connects in plain text when no TLS variable and no API key is set', () => {
    const config = temporalConfig({ ...env, TEMPORAL_TLS_SERVER_NAME: '', TEMPORAL_API_KEY: ' ' });
    expect(config.tls).toBeUndefined();
    expect(config.apiKey).toBeUndefined();
  });

  it('reads the client pair, the server CA and the server name', () => {
    expect(
      temporalConfig({
        ...env,
        ...pair,
        TEMPORAL_TLS_SERVER_CA_CERT_PATH: '/etc/vmbackup/tls/ca.pem',
        TEMPORAL_TLS_SERVER_NAME: 'frontend.internal',
      }).tls,
    ).toEqual({
      clientCertPath: '/etc/vmbackup/tls/client.pem',
      clientKeyPath: '/etc/vmbackup/tls/client.key',
      serverCaCertPath: '/etc/vmbackup/tls/ca.pem',
      serverName: 'frontend.internal',
    });
  });

  it('turns TLS on for a server CA alone (no client certificate)', () => {
    expect(temporalConfig({ ...env, TEMPORAL_TLS_SERVER_CA_CERT_PATH: '/ca.pem' }).tls).toEqual({
      serverCaCertPath: '/ca.pem',
    });
  });

  it('turns TLS on for an API key alone', () => {
    const config = temporalConfig({ ...env, TEMPORAL_API_KEY: 'k3y' });
    expect(config.apiKey).toBe('k3y');
    expect(config.tls).toEqual({});
  });

  it.each([
    ['a certificate without its key', 'TEMPORAL_TLS_CLIENT_KEY_PATH'],
    ['a key without its certificate', 'TEMPORAL_TLS_CLIENT_CERT_PATH'],
  ])('refuses %s, naming both variables', (_what, left) => {
    const message = configErrorOf(() => temporalConfig({ ...env, ...pair, [left]: undefined }));
    expect(message).toContain('TEMPORAL_TLS_CLIENT_CERT_PATH');
    expect(message).toContain('TEMPORAL_TLS_CLIENT_KEY_PATH');
  });

  it.each([
    'TEMPORAL_TLS_CLIENT_CERT_PATH',
    'TEMPORAL_TLS_CLIENT_KEY_PATH',
    'TEMPORAL_TLS_SERVER_CA_CERT_PATH',
  ])('refuses a relative path in %s, naming it', (name) => {
    expect(configErrorOf(() => temporalConfig({ ...env, ...pair, [name]: 'tls/file.pem' }))).toContain(name);
  });
});

describe('directoryConfig TLS', () => {
  const env = {
    LDAP_URL: 'ldaps://ldap.example.com:636',
    LDAP_BIND_DN: 'cn=vmbackup-control,ou=vmbackup,ou=services,o=stepping-stone,c=ch',
    LDAP_BIND_PASSWORD: 'secret',
    LDAP_BASE_DN: 'o=stepping-stone,c=ch',
  };
  const dir = mkdtempSync(path.join(os.tmpdir(), 'vmbackup-config-'));
  const caFile = path.join(dir, 'ca.pem');
  const pem = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n';
  writeFileSync(caFile, pem);
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('uses TLS for an ldaps:// URL, with the trusted roots when no CA file is set', () => {
    expect(directoryConfig(env).tls).toEqual({ mode: 'ldaps' });
  });

  it('connects in plain text to an ldap:// URL without LDAP_STARTTLS', () => {
    expect(directoryConfig({ ...env, LDAP_URL: 'ldap://ldap.example.com' }).tls).toBeUndefined();
  });

  it('upgrades an ldap:// connection with LDAP_STARTTLS=true', () => {
    const config = directoryConfig({ ...env, LDAP_URL: 'ldap://ldap.example.com', LDAP_STARTTLS: 'true' });
    expect(config.tls).toEqual({ mode: 'starttls' });
  });

  it('refuses LDAP_STARTTLS=true on an ldaps:// URL', () => {
    expect(configErrorOf(() => directoryConfig({ ...env, LDAP_STARTTLS: 'true' }))).toContain(
      'LDAP_STARTTLS',
    );
  });

  it('refuses an LDAP_STARTTLS that is neither true nor false', () => {
    expect(
      configErrorOf(() =>
        directoryConfig({ ...env, LDAP_URL: 'ldap://ldap.example.com', LDAP_STARTTLS: 'yes' }),
      ),
    ).toContain('LDAP_STARTTLS');
  });

  it('reads the CA file once, into the configuration', () => {
    const config = directoryConfig({ ...env, LDAP_CA_FILE: caFile });
    writeFileSync(caFile, 'changed later');
    try {
      expect(config.tls).toEqual({ mode: 'ldaps', ca: pem, caFile });
    } finally {
      writeFileSync(caFile, pem);
    }
  });

  it('refuses a relative CA file path, naming LDAP_CA_FILE', () => {
    expect(configErrorOf(() => directoryConfig({ ...env, LDAP_CA_FILE: 'ca.pem' }))).toContain(
      'LDAP_CA_FILE',
    );
  });

  it('refuses a CA file it cannot read, naming the file', () => {
    const missing = path.join(dir, 'missing.pem');
    const message = configErrorOf(() => directoryConfig({ ...env, LDAP_CA_FILE: missing }));
    expect(message).toContain(missing);
    expect(message).toContain('cannot be read');
  });

  it('refuses a CA file without a PEM certificate', () => {
    const empty = path.join(dir, 'empty.pem');
    writeFileSync(empty, '');
    expect(configErrorOf(() => directoryConfig({ ...env, LDAP_CA_FILE: empty }))).toContain(
      'no PEM certificate',
    );
  });

  it('refuses a CA file for a plain ldap:// connection, which would not use it', () => {
    expect(
      configErrorOf(() =>
        directoryConfig({ ...env, LDAP_URL: 'ldap://ldap.example.com', LDAP_CA_FILE: caFile }),
      ),
    ).toContain('LDAP_STARTTLS=true');
  });
});

describe('maintenanceSchedules', () => {
  it("verifies daily at 13:30 in the plans' time zone with a 7-day window by default", () => {
    expect(maintenanceSchedules({ VMBACKUP_TIMEZONE: 'Europe/Zurich' })).toContainEqual(
      expect.objectContaining({
        id: 'vmbackup-verify',
        workflowType: 'verifyFleet',
        cron: '30 13 * * *',
        timezone: 'Europe/Zurich',
        input: { windowDays: 7 },
      }),
    );
  });

  it('takes the cron and window from the environment, off included', () => {
    const [v] = maintenanceSchedules({ VMBACKUP_VERIFY_CRON: 'off', VMBACKUP_VERIFY_WINDOW_DAYS: '14' });
    expect(v).toMatchObject({ cron: 'off', input: { windowDays: 14 } });
  });

  it('refuses a malformed cron or window with the variable named', () => {
    expect(configErrorOf(() => maintenanceSchedules({ VMBACKUP_VERIFY_CRON: 'daily' }))).toMatch(
      /VMBACKUP_VERIFY_CRON/,
    );
    expect(configErrorOf(() => maintenanceSchedules({ VMBACKUP_VERIFY_WINDOW_DAYS: '0' }))).toMatch(
      /VMBACKUP_VERIFY_WINDOW_DAYS/,
    );
  });
});
