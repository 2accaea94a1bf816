import { describe, expect, it } from 'vitest';
import { confine, isInside, pathFromFileUri, poolPathOf, runLayout } from '../../src/domain/paths';
import { expectBackupError } from './expect-backup-error';

describe('pathFromFileUri', () => {
  it('turns a file:/// URI into an absolute path', () => {
    expect(pathFromFileUri('file:///var/backup/virtualization', 'sstBackupRootDirectory')).toBe(
      '/var/backup/virtualization',
    );
  });

  it('strips trailing slashes', () => {
    expect(pathFromFileUri('file:///var/backup/virtualization/', 'a')).toBe('/var/backup/virtualization');
    expect(pathFromFileUri('file:///var/backup///', 'a')).toBe('/var/backup');
  });

  it('collapses duplicate slashes and "." segments', () => {
    expect(pathFromFileUri('file:///var//backup/./virtualization', 'a')).toBe('/var/backup/virtualization');
  });

  it('keeps the root directory as "/"', () => {
    expect(pathFromFileUri('file:///', 'a')).toBe('/');
  });

  it('percent-decodes the path', () => {
    expect(pathFromFileUri('file:///var/backup%20files/caf%C3%A9', 'a')).toBe('/var/backup files/café');
  });

  it('does not treat a single dot in a file name as a parent reference', () => {
    expect(pathFromFileUri('file:///var/ram.disk/x..y', 'a')).toBe('/var/ram.disk/x..y');
  });

  it.each([
    ['an http URI', 'http://backup.example.com/var/backup'],
    ['an nfs URI', 'nfs://server/export/backup'],
    ['an upper-case scheme', 'FILE:///var/backup'],
    ['a bare absolute path', '/var/backup'],
    ['a file: URI with a single slash', 'file:/var/backup'],
    ['an empty value', ''],
  ])('refuses %s with the unsupported-protocol code', (_what, uri) => {
    expectBackupError(() => pathFromFileUri(uri, 'sstBackupRootDirectory'), 35, 'sstBackupRootDirectory');
  });

  it.each([
    ['a relative path (host-less two-slash form)', 'file://var/backup'],
    ['a file URI with a host name', 'file://localhost/var/backup'],
    ['a ".." segment', 'file:///var/backup/../../etc'],
    ['a trailing ".." segment', 'file:///var/backup/..'],
    ['a percent-encoded ".." segment', 'file:///var/backup/%2e%2e/etc'],
    ['a percent-encoded slash forming ".."', 'file:///var/backup%2F..%2Fetc'],
    ['a percent-encoded NUL byte', 'file:///var/backup%00/x'],
  ])('refuses %s', (_what, uri) => {
    expectBackupError(() => pathFromFileUri(uri, 'sstBackupRetainDirectory'), 39, 'sstBackupRetainDirectory');
  });

  it('refuses a malformed percent escape', () => {
    expectBackupError(
      () => pathFromFileUri('file:///var/backup%zz', 'sstBackupRamDiskLocation'),
      39,
      'malformed',
    );
  });
});

describe('isInside', () => {
  it('counts the root itself and anything below it as inside', () => {
    expect(isInside('/var/backup', '/var/backup')).toBe(true);
    expect(isInside('/var/backup', '/var/backup/a/b')).toBe(true);
  });

  it('counts siblings sharing a name prefix as outside', () => {
    expect(isInside('/var/backup', '/var/backupX')).toBe(false);
    expect(isInside('/var/backup', '/var/backup-old/a')).toBe(false);
  });

  it('counts parents as outside', () => {
    expect(isInside('/var/backup', '/var')).toBe(false);
    expect(isInside('/var/backup', '/')).toBe(false);
  });
});

describe('confine', () => {
  const roots = ['/var/backup', '/var/virtualization/retain'] as const;

  it('returns a path below one of the roots, normalised', () => {
    expect(confine('/var/backup/vm-persistent/pool/web01', roots, 'backup dir')).toBe(
      '/var/backup/vm-persistent/pool/web01',
    );
    expect(confine('/var/virtualization/retain//web01/./x', roots, 'retain dir')).toBe(
      '/var/virtualization/retain/web01/x',
    );
  });

  it('accepts a root itself', () => {
    expect(confine('/var/backup', roots, 'backup dir')).toBe('/var/backup');
  });

  it('refuses a path outside every root and names what was checked', () => {
    expectBackupError(() => confine('/etc/passwd', roots, 'backup dir'), 39, /backup dir.*outside/);
  });

  it('refuses a parent of a root', () => {
    expectBackupError(() => confine('/var', roots, 'backup dir'), 39);
  });

  it('refuses a sibling directory whose name merely starts with a root name', () => {
    expectBackupError(() => confine('/var/backupX', roots, 'backup dir'), 39);
    expectBackupError(() => confine('/var/backupX/web01', roots, 'backup dir'), 39);
    expectBackupError(() => confine('/var/virtualization/retain2/web01', roots, 'retain dir'), 39);
  });

  it('refuses ".." segments even when the result would land inside a root', () => {
    expectBackupError(() => confine('/var/backup/a/../b', roots, 'backup dir'), 39, 'not an absolute path');
  });

  it('refuses ".." segments that climb out of a root', () => {
    expectBackupError(() => confine('/var/backup/../../etc', roots, 'backup dir'), 39);
    expectBackupError(() => confine('/var/backup/..', roots, 'backup dir'), 39);
  });

  it('refuses a relative path', () => {
    expectBackupError(() => confine('var/backup/web01', roots, 'backup dir'), 39, 'not an absolute path');
  });

  it('refuses everything when no root is configured', () => {
    expectBackupError(() => confine('/var/backup', [], 'backup dir'), 39);
  });
});

describe('poolPathOf', () => {
  it('is the disk directory relative to the images root', () => {
    expect(poolPathOf('/var/virtualization/vm-persistent/pool-a/disk.qcow2', '/var/virtualization')).toBe(
      'vm-persistent/pool-a',
    );
  });

  it('is empty for a disk directly in the images root', () => {
    expect(poolPathOf('/var/virtualization/disk.qcow2', '/var/virtualization')).toBe('');
  });

  it('refuses a disk outside the images root', () => {
    expectBackupError(() => poolPathOf('/srv/images/disk.qcow2', '/var/virtualization'), 39, '/srv/images');
  });

  it('refuses a disk in a sibling directory sharing the images root as a name prefix', () => {
    expectBackupError(() => poolPathOf('/var/virtualization2/pool/disk.qcow2', '/var/virtualization'), 39);
  });
});

describe('runLayout', () => {
  const base = {
    vm: 'web01',
    runDate: '20140109T134445Z',
    diskPaths: [
      '/var/virtualization/vm-persistent/0f83f084-8080-413e-b558-b678e504836e/8798a1d2.qcow2',
      '/var/virtualization/vm-persistent/0f83f084-8080-413e-b558-b678e504836e/9911beef.qcow2',
    ],
    imagesRoot: '/var/virtualization',
    retainRoot: '/var/virtualization/retain',
    backupRoot: '/var/backup/virtualization',
  };
  const pool = 'vm-persistent/0f83f084-8080-413e-b558-b678e504836e';

  it('places the retain and backup directories at <root>/<pool path>/<vm>/<date>', () => {
    const layout = runLayout(base);
    expect(layout.retainDir).toBe(`/var/virtualization/retain/${pool}/web01/20140109T134445Z`);
    expect(layout.backupDir).toBe(`/var/backup/virtualization/${pool}/web01/20140109T134445Z`);
  });

  it('names the state, XML and LDIF files <vm>.<kind>.<date>', () => {
    const layout = runLayout(base);
    expect(layout.stateFile).toBe('web01.state.20140109T134445Z');
    expect(layout.xmlFile).toBe('web01.xml.20140109T134445Z');
    expect(layout.ldifFile).toBe('web01.ldif.20140109T134445Z');
  });

  it('names each disk copy <disk file name>.<date>, in disk order', () => {
    expect(runLayout(base).diskFiles).toEqual([
      '8798a1d2.qcow2.20140109T134445Z',
      '9911beef.qcow2.20140109T134445Z',
    ]);
    expect(runLayout({ ...base, diskPaths: [...base.diskPaths].reverse() }).diskFiles).toEqual([
      '9911beef.qcow2.20140109T134445Z',
      '8798a1d2.qcow2.20140109T134445Z',
    ]);
  });

  it('saves the state into the retain directory when the plan has no RAM disk', () => {
    expect(runLayout(base).stateSaveDir).toBe(`/var/virtualization/retain/${pool}/web01/20140109T134445Z`);
    expect(runLayout({ ...base, ramDisk: undefined }).stateSaveDir).toBe(runLayout(base).retainDir);
  });

  it('saves the state into <ram disk>/<vm> when the plan has a RAM disk', () => {
    expect(runLayout({ ...base, ramDisk: '/mnt/ramdisk' }).stateSaveDir).toBe('/mnt/ramdisk/web01');
  });

  it('keeps VMs of different storage pools apart', () => {
    const a = runLayout({ ...base, diskPaths: ['/var/virtualization/vm-persistent/pool-a/disk.qcow2'] });
    const b = runLayout({ ...base, diskPaths: ['/var/virtualization/vm-persistent/pool-b/disk.qcow2'] });
    expect(a.backupDir).toBe('/var/backup/virtualization/vm-persistent/pool-a/web01/20140109T134445Z');
    expect(b.backupDir).toBe('/var/backup/virtualization/vm-persistent/pool-b/web01/20140109T134445Z');
  });

  it('uses no pool path for a disk directly below the images root', () => {
    const layout = runLayout({ ...base, diskPaths: ['/var/virtualization/disk.qcow2'] });
    expect(layout.backupDir).toBe('/var/backup/virtualization/web01/20140109T134445Z');
  });

  it('tolerates trailing slashes on the roots', () => {
    const layout = runLayout({
      ...base,
      imagesRoot: '/var/virtualization/',
      retainRoot: '/var/virtualization/retain/',
      backupRoot: '/var/backup/virtualization/',
    });
    expect(layout.retainDir).toBe(`/var/virtualization/retain/${pool}/web01/20140109T134445Z`);
    expect(layout.backupDir).toBe(`/var/backup/virtualization/${pool}/web01/20140109T134445Z`);
  });

  it('refuses two disks that share a file name, even in different directories', () => {
    expectBackupError(
      () =>
        runLayout({
          ...base,
          diskPaths: [
            '/var/virtualization/vm-persistent/pool-a/disk.qcow2',
            '/var/virtualization/vm-persistent/pool-b/disk.qcow2',
          ],
        }),
      39,
      'web01',
    );
  });

  it('refuses the same disk listed twice', () => {
    expectBackupError(() => runLayout({ ...base, diskPaths: [base.diskPaths[0]!, base.diskPaths[0]!] }), 39);
  });

  it('refuses a disk outside the images root', () => {
    expectBackupError(() => runLayout({ ...base, diskPaths: ['/srv/other/disk.qcow2'] }), 39);
  });
});

describe('isInside with names that start with two dots', () => {
  it('accepts a child whose name starts with ".." but refuses the parent', () => {
    expect(isInside('/var/backup', '/var/backup/..hidden')).toBe(true);
    expect(isInside('/var/backup', '/var')).toBe(false);
    expect(isInside('/var/backup', '/var/backupX')).toBe(false);
  });
});
