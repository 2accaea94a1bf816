import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { InsufficientAccessError, NoSuchObjectError } from 'ldapts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDirectoryActivities } from '../../src/activities/directory';
import { directoryConfig } from '../../src/config';
import { createSandboxVm, defaultPlan, removeSandboxVm } from '../../src/dev/sandbox-vm';
import { withDirectory, type Directory } from '../../src/directory/connection';
import { writeVmEntries } from '../../src/directory/restore-directory';
import { BackupError } from '../../src/domain/errors';
import { nextRunDate, node, roots, tree, virsh, directory as admin } from '../support/harness';
import { repoRoot } from '../support/dev-env';

/**
 * The dev slapd's access rules (deploy/openldap/vmbackup-access.ldif) over TLS: what the
 * control and node identities may do, checked with the code the workers run.
 */
const env = process.env;
const plainUrl = env['LDAP_PLAIN_URL']!;
const control = directoryConfig();
const controlStartTls = directoryConfig({ ...env, LDAP_URL: plainUrl, LDAP_STARTTLS: 'true' });
const nodeIdentity = directoryConfig({
  ...env,
  LDAP_BIND_DN: env['LDAP_NODE_BIND_DN'],
  LDAP_BIND_PASSWORD: env['LDAP_NODE_BIND_PASSWORD'],
});

const VM = 'acl-vm';
const POOL = 'acl-pool';
const poolDn = tree.pool(POOL);
const peopleDn = `ou=people,${tree.base}`;
const personDn = `uid=acl-person,${peopleDn}`;
const deps = { virsh, directory: admin, node };
let scratch = '';
let createdPeople = false;

const asAdmin = <T>(fn: (dir: Directory) => Promise<T>) => withDirectory(admin, fn);

async function removeSubtree(dn: string): Promise<void> {
  await asAdmin(async (dir) => {
    const entries = await dir.search(dn, 'sub', '(objectClass=*)', ['1.1']);
    for (const e of entries.sort((a, b) => b.dn.split(',').length - a.dn.split(',').length))
      await dir.del(e.dn);
  });
}

/** The error `fn` fails with (it must fail). */
async function failure(fn: () => Promise<unknown>): Promise<unknown> {
  try {
    await fn();
  } catch (err) {
    return err;
  }
  throw new Error('expected the operation to be refused');
}

beforeAll(async () => {
  scratch = await fs.mkdtemp(path.join(os.tmpdir(), 'vmbackup-acl-'));
  await removeSubtree(poolDn);
  // A VM without a plan of its own: its pool's plan applies.
  await createSandboxVm(
    {
      name: VM,
      node: 'acl-node',
      pool: POOL,
      running: false,
      plan: null,
      retainRoot: roots.retain,
      backupRoot: roots.backup,
      ramDisk: roots.ramDisk,
    },
    deps,
  );
  await asAdmin(async (dir) => {
    await dir.add(poolDn, { objectClass: ['top', 'sstVirtualMachines'], sstVirtualMachinePool: POOL });
    await dir.add(tree.poolBackup(POOL), {
      objectClass: ['top', 'organizationalUnit', 'sstVirtualizationBackupObjectClass', 'sstCronObjectClass'],
      ou: 'backup',
      ...defaultPlan({ retainRoot: roots.retain, backupRoot: roots.backup, ramDisk: roots.ramDisk }),
      sstCronActive: 'FALSE',
    });
    if (!(await dir.read(peopleDn, ['1.1']))) {
      await dir.add(peopleDn, { objectClass: ['top', 'organizationalUnit'], ou: 'people' });
      createdPeople = true;
    }
    if (await dir.read(personDn, ['1.1'])) await dir.del(personDn);
    await dir.add(personDn, {
      objectClass: ['top', 'inetOrgPerson'],
      uid: 'acl-person',
      cn: 'ACL Person',
      sn: 'Person',
      userPassword: 'secret-of-a-person',
    });
  });
});

afterAll(async () => {
  await removeSandboxVm(VM, deps, POOL).catch(() => undefined);
  await removeSubtree(poolDn).catch(() => undefined);
  await removeSubtree(createdPeople ? peopleDn : personDn).catch(() => undefined);
  if (scratch) await fs.rm(scratch, { recursive: true, force: true });
});

describe('the control identity', () => {
  it.each([
    ['ldaps://', control],
    ['StartTLS', controlStartTls],
  ])('over %s reads a VM and its plan, writes a run leaf and removes it', async (_how, config) => {
    const activities = createDirectoryActivities(config);
    const target = await activities.loadBackupTarget(VM);
    expect(target.vm.node).toBe('acl-node');
    expect(target.vm.disks.map((d) => d.target)).toEqual(['vda']);
    expect(target.plan.level).toBe('pool');
    expect(await activities.exportVmEntry(VM)).toMatch(/^sstnode: acl-node$/im);

    const runDate = nextRunDate();
    await activities.initializeRun(VM, runDate);
    await activities.updateRun(VM, runDate, {
      mode: 'snapshotted',
      state: 'now',
      returnValue: 0,
      executionTimes: ['snapshot: 1'],
      backupDir: '/var/backup/acl-vm',
    });
    const run = (await activities.listRuns(VM)).find((r) => r.runDate === runDate);
    expect(run).toMatchObject({ mode: 'snapshotted', returnValue: 0, backupDir: '/var/backup/acl-vm' });
    // The schedule sync finds the pool's plan.
    expect((await activities.listPlanSchedules()).map((p) => p.dn)).toContain(tree.poolBackup(POOL));
    await activities.removeRun(VM, runDate);
    expect((await activities.listRuns(VM)).map((r) => r.runDate)).not.toContain(runDate);
  });

  it("rewrites a VM's entries on a restore, but not its sstNode", async () => {
    const live = await asAdmin((dir) => dir.search(tree.vm(VM), 'sub', '(objectClass=*)'));
    const vmDn = tree.vm(VM).toLowerCase();
    const resolved = live
      .filter((e) => !(e.attributes['objectclass'] ?? []).some((c) => c.toLowerCase() === 'sstprovisioning'))
      .map((e) => ({
        rdn: e.dn.toLowerCase() === vmDn ? '.' : e.dn.toLowerCase().slice(0, -(vmDn.length + 1)),
        attributes: Object.fromEntries(Object.entries(e.attributes).map(([k, v]) => [k, [...v]])),
      }));
    const vmEntry = resolved.find((r) => r.rdn === '.')!;
    vmEntry.attributes['sstdisplayname'] = ['restored acl-vm'];
    await withDirectory(control, (dir) => writeVmEntries(dir, tree, VM, resolved));
    const after = await asAdmin((dir) => dir.read(tree.vm(VM)));
    expect(after?.attributes['sstdisplayname']).toEqual(['restored acl-vm']);

    vmEntry.attributes['sstnode'] = ['another-node'];
    const err = await failure(() => withDirectory(control, (dir) => writeVmEntries(dir, tree, VM, resolved)));
    expect(err).toBeInstanceOf(InsufficientAccessError);
    expect((await asAdmin((dir) => dir.read(tree.vm(VM))))?.attributes['sstnode']).toEqual(['acl-node']);
  });

  it('cannot write outside the VM subtrees nor delete a VM', async () => {
    const refused: Array<[string, (dir: Directory) => Promise<void>]> = [
      ['the pool plan', (dir) => dir.replace(tree.poolBackup(POOL), { sstCronActive: 'TRUE' })],
      ['the VM entry itself', (dir) => dir.del(tree.vm(VM))],
      ['a person', (dir) => dir.replace(personDn, { sn: 'Changed' })],
      [
        'a new configuration entry',
        (dir) =>
          dir.add(`ou=acl,ou=configuration,${tree.virtualization}`, {
            objectClass: ['top', 'organizationalUnit'],
            ou: 'acl',
          }),
      ],
    ];
    for (const [what, op] of refused) {
      const err = await failure(() => withDirectory(control, op));
      expect(
        err instanceof InsufficientAccessError || err instanceof NoSuchObjectError,
        `${what}: ${String(err)}`,
      ).toBe(true);
    }
    const left = await asAdmin(async (dir) => ({
      cron: (await dir.read(tree.poolBackup(POOL)))?.attributes['sstcronactive'],
      vm: await dir.read(tree.vm(VM), ['1.1']),
      sn: (await dir.read(personDn))?.attributes['sn'],
    }));
    expect(left.cron).toEqual(['FALSE']);
    expect(left.vm).toBeDefined();
    expect(left.sn).toEqual(['Person']);
  });

  it('may add a VM with its node and subtree (restore --as), but then neither change its node nor delete it', async () => {
    const other = tree.vm('acl-other');
    await asAdmin(async (dir) => {
      for (const dn of [`ou=devices,${other}`, other]) if (await dir.read(dn, ['1.1'])) await dir.del(dn);
    });
    await withDirectory(control, async (dir) => {
      await dir.add(other, {
        objectClass: ['top', 'organizationalUnit', 'extensibleObject'],
        ou: 'acl-other',
        sstVirtualMachine: 'acl-other',
        sstNode: 'acl-node',
      });
      await dir.add(`ou=devices,${other}`, { objectClass: ['top', 'organizationalUnit'], ou: 'devices' });
    });
    for (const op of [
      (dir: Directory) => dir.replace(other, { sstNode: 'another-node' }),
      (dir: Directory) => dir.del(`ou=devices,${other}`).then(() => dir.del(other)),
    ]) {
      const err = await failure(() => withDirectory(control, op));
      expect(err).toBeInstanceOf(InsufficientAccessError);
    }
    expect((await asAdmin((dir) => dir.read(other)))?.attributes['sstnode']).toEqual(['acl-node']);
    await asAdmin(async (dir) => {
      for (const dn of [`ou=devices,${other}`, other]) if (await dir.read(dn, ['1.1'])) await dir.del(dn);
    });
  });

  it("cannot read people's or its own userPassword", async () => {
    expect((await asAdmin((dir) => dir.read(personDn)))?.attributes['userpassword']).toBeDefined();
    const seen = await withDirectory(control, async (dir) => ({
      person: await dir.read(personDn, ['userPassword', 'uid']),
      own: await dir.read(control.bindDn, ['userPassword']),
    }));
    expect(seen.person).toBeUndefined();
    expect(seen.own?.attributes['userpassword']).toBeUndefined();
  });
});

describe('the node identity', () => {
  it("reads a VM's sstNode and nothing more, and writes nothing", async () => {
    const seen = await withDirectory(nodeIdentity, async (dir) => ({
      vm: await dir.read(tree.vm(VM)),
      disks: await dir.search(tree.devices(VM), 'one', '(objectClass=*)'),
      plan: await dir.read(tree.poolBackup(POOL)),
      byNode: await dir.search(tree.virtualMachines, 'one', '(sstNode=acl-node)', ['sstVirtualMachine']),
    }));
    expect(seen.vm?.attributes['sstnode']).toEqual(['acl-node']);
    expect(seen.vm?.attributes['sstmemory']).toBeUndefined();
    expect(seen.disks).toEqual([]);
    expect(seen.plan).toBeUndefined();
    expect(seen.byNode.map((e) => e.attributes['sstvirtualmachine']?.[0])).toEqual([VM]);

    for (const op of [
      (dir: Directory) => dir.replace(tree.vm(VM), { sstNode: 'another-node' }),
      (dir: Directory) =>
        dir.add(tree.vmBackup(VM).replace(/^ou=backup/, 'ou=acl'), {
          objectClass: ['top', 'organizationalUnit'],
          ou: 'acl',
        }),
    ]) {
      expect(await failure(() => withDirectory(nodeIdentity, op))).toBeInstanceOf(InsufficientAccessError);
    }
  });
});

describe('TLS', () => {
  it('refuses a directory whose certificate another CA issued, saying so', async () => {
    const other = path.join(scratch, 'other-ca');
    await execa('bash', [path.join(repoRoot, 'scripts/make-certs.sh'), other]);
    const withOtherCa = { ...env, LDAP_CA_FILE: path.join(other, 'ca.pem') };
    for (const config of [
      directoryConfig(withOtherCa),
      directoryConfig({ ...withOtherCa, LDAP_URL: plainUrl, LDAP_STARTTLS: 'true' }),
    ]) {
      const err = await failure(() => withDirectory(config, (dir) => dir.read(tree.vm(VM))));
      expect(err).toBeInstanceOf(BackupError);
      expect((err as BackupError).message).toMatch(
        /TLS certificate is not trusted by the CA in LDAP_CA_FILE/,
      );
      expect((err as BackupError).transient).toBe(false);
    }
  });

  it('refuses a service identity that binds without TLS', async () => {
    const plain = directoryConfig({ ...env, LDAP_URL: plainUrl, LDAP_CA_FILE: undefined });
    const err = await failure(() => withDirectory(plain, (dir) => dir.read(tree.vm(VM))));
    expect(err).toBeInstanceOf(BackupError);
    expect((err as BackupError).message).toMatch(/invalid credentials .*without TLS/);
    // The same password over StartTLS is accepted: TLS is what was missing.
    expect(await withDirectory(controlStartTls, (dir) => dir.read(tree.vm(VM), ['sstNode']))).toBeDefined();
  });
});
