import { describe, expect, it } from 'vitest';
import {
  type Attributes,
  choosePlanEntry,
  hasBackupClass,
  parseBoolean,
  parsePermission,
  parsePlan,
  PLAN_MODE_CLASS,
} from '../../src/domain/plan';
import { expectBackupError } from './expect-backup-error';

const VM_PLAN_DN = 'ou=backup,sstVirtualMachine=web01,ou=virtual machines,ou=virtualization,ou=services,o=t';
const POOL_PLAN_DN =
  'ou=backup,sstVirtualMachinePool=p1,ou=virtual machine pools,ou=virtualization,ou=services,o=t';
const GLOBAL_PLAN_DN = 'ou=backup,ou=configuration,ou=virtualization,ou=services,o=t';

const planClass = { objectclass: ['top', 'organizationalUnit', 'sstVirtualizationBackupObjectClass'] };
const ouOnly = { objectclass: ['top', 'organizationalUnit'], ou: ['backup'] };

/** A complete plan as the original's sample data has it; attribute names lower-cased. */
function planEntry(overrides: Record<string, string[] | undefined> = {}): Attributes {
  const entry: Record<string, string[]> = {
    ...planClass,
    sstbackuprootdirectory: ['file:///var/backup/virtualization'],
    sstbackupretaindirectory: ['file:///var/virtualization/retain'],
    sstvirtualizationdiskimageformat: ['qcow2'],
    sstvirtualizationdiskimageowner: ['root'],
    sstvirtualizationdiskimagegroup: ['vm-storage'],
    sstvirtualizationdiskimagepermission: ['660'],
  };
  for (const [k, v] of Object.entries(overrides)) {
    if (v === undefined) delete entry[k];
    else entry[k] = v;
  }
  return entry;
}

describe('hasBackupClass', () => {
  it('recognises the backup object class whatever its case', () => {
    expect(hasBackupClass({ objectclass: ['sstVirtualizationBackupObjectClass'] })).toBe(true);
    expect(hasBackupClass({ objectclass: ['SSTVIRTUALIZATIONBACKUPOBJECTCLASS'] })).toBe(true);
    expect(hasBackupClass({ objectclass: ['sstvirtualizationbackupobjectclass'] })).toBe(true);
  });

  it('is false for an entry without the class, without objectClass, or no entry at all', () => {
    expect(hasBackupClass(ouOnly)).toBe(false);
    expect(hasBackupClass({ ou: ['backup'] })).toBe(false);
    expect(hasBackupClass(undefined)).toBe(false);
  });
});

describe('choosePlanEntry', () => {
  const vm = { level: 'vm' as const, dn: VM_PLAN_DN };
  const pool = { level: 'pool' as const, dn: POOL_PLAN_DN };
  const global = { level: 'global' as const, dn: GLOBAL_PLAN_DN };

  it("takes the VM's own plan when it carries the backup class", () => {
    const vmEntry = { ...planClass, sstbackupnumberofiterations: ['3'] };
    const chosen = choosePlanEntry([
      { ...vm, entry: vmEntry },
      { ...pool, entry: planClass },
      { ...global, entry: planClass },
    ]);
    expect(chosen).toEqual({ level: 'vm', dn: VM_PLAN_DN, entry: vmEntry });
  });

  it("falls back to the pool's plan when the VM has none", () => {
    const poolEntry = { ...planClass, sstbackupnumberofiterations: ['2'] };
    const chosen = choosePlanEntry([
      { ...vm, entry: undefined },
      { ...pool, entry: poolEntry },
      { ...global, entry: planClass },
    ]);
    expect(chosen).toEqual({ level: 'pool', dn: POOL_PLAN_DN, entry: poolEntry });
  });

  it("skips the VM's ou=backup when it only holds run leaves (no backup class)", () => {
    const chosen = choosePlanEntry([
      { ...vm, entry: ouOnly },
      { ...pool, entry: ouOnly },
      { ...global, entry: planClass },
    ]);
    expect(chosen.level).toBe('global');
    expect(chosen.dn).toBe(GLOBAL_PLAN_DN);
  });

  it('matches the backup class case-insensitively', () => {
    const chosen = choosePlanEntry([
      { ...vm, entry: { objectclass: ['top', 'SSTVirtualizationBACKUPObjectClass'] } },
      { ...global, entry: planClass },
    ]);
    expect(chosen.level).toBe('vm');
  });

  it('respects the order it is given: first found wins', () => {
    const chosen = choosePlanEntry([
      { ...global, entry: planClass },
      { ...vm, entry: planClass },
    ]);
    expect(chosen.level).toBe('global');
  });

  it('fails with code 32 naming every DN it looked at when no plan is found', () => {
    const error = expectBackupError(
      () =>
        choosePlanEntry([
          { ...vm, entry: undefined },
          { ...pool, entry: ouOnly },
          { ...global, entry: undefined },
        ]),
      32,
    );
    expect(error.message).toContain(VM_PLAN_DN);
    expect(error.message).toContain(POOL_PLAN_DN);
    expect(error.message).toContain(GLOBAL_PLAN_DN);
  });

  it('fails with code 32 when there are no candidates', () => {
    expectBackupError(() => choosePlanEntry([]), 32);
  });
});

describe('parsePlan', () => {
  it('parses a complete plan and applies the defaults', () => {
    expect(parsePlan('global', GLOBAL_PLAN_DN, planEntry())).toEqual({
      level: 'global',
      dn: GLOBAL_PLAN_DN,
      backupRoot: '/var/backup/virtualization',
      retainRoot: '/var/virtualization/retain',
      ramDisk: undefined,
      imageFormat: 'qcow2',
      imageOwner: 'root',
      imageGroup: 'vm-storage',
      imagePermission: 0o660,
      directoryOwner: undefined,
      directoryGroup: undefined,
      directoryPermission: undefined,
      mergeBandwidth: 0,
      iterations: 1,
      excluded: false,
      forceStart: false,
      restoreWithoutState: false,
      mode: 'live',
    });
  });

  it('parses every optional value when present', () => {
    const plan = parsePlan(
      'vm',
      VM_PLAN_DN,
      planEntry({
        sstbackupramdisklocation: ['file:///mnt/ramdisk/'],
        sstvirtualizationdiskimagedirectoryowner: ['libvirt-qemu'],
        sstvirtualizationdiskimagedirectorygroup: ['kvm'],
        sstvirtualizationdiskimagedirectorypermission: ['770'],
        sstvirtualizationbandwidthmerge: ['50'],
        sstbackupnumberofiterations: ['7'],
        sstbackupexcludefrombackup: ['TRUE'],
        sstvirtualizationvirtualmachineforcestart: ['TRUE'],
        sstrestorevmwithoutstate: ['TRUE'],
      }),
    );
    expect(plan).toMatchObject({
      level: 'vm',
      dn: VM_PLAN_DN,
      ramDisk: '/mnt/ramdisk',
      directoryOwner: 'libvirt-qemu',
      directoryGroup: 'kvm',
      directoryPermission: 0o770,
      mergeBandwidth: 50,
      iterations: 7,
      excluded: true,
      forceStart: true,
      restoreWithoutState: true,
    });
  });

  it('trims surrounding white space of required values', () => {
    const plan = parsePlan(
      'global',
      GLOBAL_PLAN_DN,
      planEntry({
        sstvirtualizationdiskimageformat: [' qcow2 '],
        sstvirtualizationdiskimageowner: [' root '],
        sstvirtualizationdiskimagepermission: [' 640 '],
      }),
    );
    expect(plan.imageFormat).toBe('qcow2');
    expect(plan.imageOwner).toBe('root');
    expect(plan.imagePermission).toBe(0o640);
  });

  it.each([
    'sstBackupRootDirectory',
    'sstBackupRetainDirectory',
    'sstVirtualizationDiskImageFormat',
    'sstVirtualizationDiskImageOwner',
    'sstVirtualizationDiskImageGroup',
    'sstVirtualizationDiskImagePermission',
  ])('refuses a plan without %s with code 2 naming the attribute and the plan', (name) => {
    const error = expectBackupError(
      () => parsePlan('global', GLOBAL_PLAN_DN, planEntry({ [name.toLowerCase()]: undefined })),
      2,
      name,
    );
    expect(error.message).toContain(GLOBAL_PLAN_DN);
  });

  it.each([
    ['an empty value list', []],
    ['an empty string', ['']],
    ['only white space', ['   ']],
  ])('treats a required value given as %s as missing (code 2)', (_what, value) => {
    expectBackupError(
      () => parsePlan('global', GLOBAL_PLAN_DN, planEntry({ sstbackupretaindirectory: value })),
      2,
      'sstBackupRetainDirectory',
    );
  });

  it.each(['raw', 'QCOW2', 'qcow', 'vmdk'])('refuses the disk image format %j with code 39', (format) => {
    expectBackupError(
      () => parsePlan('global', GLOBAL_PLAN_DN, planEntry({ sstvirtualizationdiskimageformat: [format] })),
      39,
      JSON.stringify(format),
    );
  });

  it('refuses a root directory that is not a file:// URI with code 35', () => {
    expectBackupError(
      () =>
        parsePlan('global', GLOBAL_PLAN_DN, planEntry({ sstbackuprootdirectory: ['nfs://server/backup'] })),
      35,
      'sstBackupRootDirectory',
    );
  });

  it('refuses a RAM disk location that is not a file:// URI with code 35', () => {
    expectBackupError(
      () => parsePlan('global', GLOBAL_PLAN_DN, planEntry({ sstbackupramdisklocation: ['tmpfs://ram'] })),
      35,
      'sstBackupRamDiskLocation',
    );
  });

  it('refuses a retain directory that climbs with ".." with code 39', () => {
    expectBackupError(
      () =>
        parsePlan(
          'global',
          GLOBAL_PLAN_DN,
          planEntry({ sstbackupretaindirectory: ['file:///var/virtualization/../../etc'] }),
        ),
      39,
    );
  });

  it('ignores an empty RAM disk location', () => {
    expect(
      parsePlan('global', GLOBAL_PLAN_DN, planEntry({ sstbackupramdisklocation: [''] })).ramDisk,
    ).toBeUndefined();
  });

  describe('permissions', () => {
    it.each([
      ['660', 0o660],
      ['0660', 0o660],
      ['770', 0o770],
      ['0770', 0o770],
      ['600', 0o600],
      ['000', 0],
      ['777', 0o777],
    ])('parses %j as octal', (value, expected) => {
      expect(parsePermission(value, 'perm')).toBe(expected);
      expect(
        parsePlan('global', GLOBAL_PLAN_DN, planEntry({ sstvirtualizationdiskimagepermission: [value] }))
          .imagePermission,
      ).toBe(expected);
    });

    it('parses the directory permission written with a leading zero', () => {
      expect(
        parsePlan(
          'global',
          GLOBAL_PLAN_DN,
          planEntry({ sstvirtualizationdiskimagedirectorypermission: ['0770'] }),
        ).directoryPermission,
      ).toBe(0o770);
    });

    it.each([
      ['a non-octal digit', '999'],
      ['an 8', '680'],
      ['a letter', '66a'],
      ['too few digits', '66'],
      ['four significant digits', '4755'],
      ['two leading zeros', '00660'],
      ['a sign', '-660'],
      ['symbolic notation', 'rw-rw----'],
      ['a hex prefix', '0x1b0'],
    ])('refuses a permission with %s (%j) with code 39', (_what, value) => {
      expectBackupError(() => parsePermission(value, 'sstVirtualizationDiskImagePermission'), 39, value);
      expectBackupError(
        () =>
          parsePlan('global', GLOBAL_PLAN_DN, planEntry({ sstvirtualizationdiskimagepermission: [value] })),
        39,
        'sstVirtualizationDiskImagePermission',
      );
    });

    it('refuses a bad directory permission with code 39 naming the attribute', () => {
      expectBackupError(
        () =>
          parsePlan(
            'global',
            GLOBAL_PLAN_DN,
            planEntry({ sstvirtualizationdiskimagedirectorypermission: ['999'] }),
          ),
        39,
        'sstVirtualizationDiskImageDirectoryPermission',
      );
    });
  });

  describe('booleans', () => {
    it('reads TRUE and FALSE', () => {
      expect(parseBoolean('TRUE', 'x', false)).toBe(true);
      expect(parseBoolean('FALSE', 'x', true)).toBe(false);
    });

    it('uses the fallback when the value is absent', () => {
      expect(parseBoolean(undefined, 'x', true)).toBe(true);
      expect(parseBoolean(undefined, 'x', false)).toBe(false);
    });

    it.each(['true', 'false', 'True', 'yes', '1', '0', '', ' TRUE'])(
      'refuses the boolean %j with code 39',
      (value) => {
        expectBackupError(
          () => parseBoolean(value, 'sstBackupExcludeFromBackup', false),
          39,
          'TRUE or FALSE',
        );
      },
    );

    it.each([
      'sstBackupExcludeFromBackup',
      'sstVirtualizationVirtualMachineForceStart',
      'sstRestoreVMWithoutState',
    ])('refuses a lower-case boolean in %s', (name) => {
      expectBackupError(
        () => parsePlan('vm', VM_PLAN_DN, planEntry({ [name.toLowerCase()]: ['true'] })),
        39,
        name,
      );
    });

    it('reads FALSE explicitly', () => {
      const plan = parsePlan('vm', VM_PLAN_DN, planEntry({ sstbackupexcludefrombackup: ['FALSE'] }));
      expect(plan.excluded).toBe(false);
    });

    it('reads each boolean from its own attribute', () => {
      const plan = parsePlan(
        'vm',
        VM_PLAN_DN,
        planEntry({ sstvirtualizationvirtualmachineforcestart: ['TRUE'] }),
      );
      expect(plan).toMatchObject({ forceStart: true, excluded: false, restoreWithoutState: false });
    });
  });

  describe('integers', () => {
    it.each([
      ['1', 1],
      ['99', 99],
      [' 3 ', 3],
    ])('reads %j as number of iterations', (value, expected) => {
      expect(
        parsePlan('global', GLOBAL_PLAN_DN, planEntry({ sstbackupnumberofiterations: [value] })).iterations,
      ).toBe(expected);
    });

    it.each(['0', '100', '-1', 'abc', '1.5', '', '2x', '1e1'])(
      'refuses %j as number of iterations with code 39',
      (value) => {
        expectBackupError(
          () => parsePlan('global', GLOBAL_PLAN_DN, planEntry({ sstbackupnumberofiterations: [value] })),
          39,
          'sstBackupNumberOfIterations',
        );
      },
    );

    it('accepts 0 as merge bandwidth (unlimited)', () => {
      expect(
        parsePlan('global', GLOBAL_PLAN_DN, planEntry({ sstvirtualizationbandwidthmerge: ['0'] }))
          .mergeBandwidth,
      ).toBe(0);
    });

    it('refuses a negative merge bandwidth with code 39', () => {
      expectBackupError(
        () => parsePlan('global', GLOBAL_PLAN_DN, planEntry({ sstvirtualizationbandwidthmerge: ['-1'] })),
        39,
        'sstVirtualizationBandwidthMerge',
      );
    });
  });

  describe('owners', () => {
    it.each(['root', 'vm-storage', 'libvirt-qemu', '_apt', 'user.name', '0', '107'])(
      'accepts the owner %j',
      (owner) => {
        const plan = parsePlan(
          'global',
          GLOBAL_PLAN_DN,
          planEntry({ sstvirtualizationdiskimageowner: [owner], sstvirtualizationdiskimagegroup: [owner] }),
        );
        expect(plan.imageOwner).toBe(owner);
        expect(plan.imageGroup).toBe(owner);
      },
    );

    it.each([
      ['a shell metacharacter', 'root;rm'],
      ['a colon (owner:group)', 'root:root'],
      ['a space', 'vm storage'],
      ['a leading dash', '-R'],
      ['a leading digit followed by letters', '1abc'],
      ['a slash', 'root/x'],
      ['33 characters', 'a'.repeat(33)],
      ['a non-ASCII letter', 'rüdiger'],
    ])('refuses an image owner with %s with code 39', (_what, owner) => {
      expectBackupError(
        () => parsePlan('global', GLOBAL_PLAN_DN, planEntry({ sstvirtualizationdiskimageowner: [owner] })),
        39,
        'sstVirtualizationDiskImageOwner',
      );
    });

    it('refuses an invalid image group with code 39 naming the attribute', () => {
      expectBackupError(
        () =>
          parsePlan('global', GLOBAL_PLAN_DN, planEntry({ sstvirtualizationdiskimagegroup: ['vm storage'] })),
        39,
        'sstVirtualizationDiskImageGroup',
      );
    });

    it('refuses invalid directory owners and groups with code 39 naming the attribute', () => {
      expectBackupError(
        () =>
          parsePlan(
            'global',
            GLOBAL_PLAN_DN,
            planEntry({ sstvirtualizationdiskimagedirectoryowner: ['a;b'] }),
          ),
        39,
        'sstVirtualizationDiskImageDirectoryOwner',
      );
      expectBackupError(
        () =>
          parsePlan(
            'global',
            GLOBAL_PLAN_DN,
            planEntry({ sstvirtualizationdiskimagedirectorygroup: ['a b'] }),
          ),
        39,
        'sstVirtualizationDiskImageDirectoryGroup',
      );
    });

    it('accepts 32-character names', () => {
      const name = 'a'.repeat(32);
      expect(
        parsePlan('global', GLOBAL_PLAN_DN, planEntry({ sstvirtualizationdiskimageowner: [name] }))
          .imageOwner,
      ).toBe(name);
    });
  });
});

describe('backup mode (vmbackupMode)', () => {
  const modeClass = {
    objectclass: [...planClass.objectclass, 'vmbackupPlanObjectClass'],
  };

  it('names the auxiliary class in lower case, as Attributes has it', () => {
    expect(PLAN_MODE_CLASS).toBe('vmbackupplanobjectclass');
  });

  it('is live when the plan has no vmbackupMode', () => {
    expect(parsePlan('global', GLOBAL_PLAN_DN, planEntry()).mode).toBe('live');
  });

  it.each([
    ['save', 'save'],
    ['live', 'live'],
    ['LIVE ', 'live'],
    [' Save', 'save'],
  ] as const)('accepts %j as %s (case-insensitive, trimmed)', (value, mode) => {
    const entry = planEntry({ ...modeClass, vmbackupmode: [value] });
    expect(parsePlan('vm', VM_PLAN_DN, entry).mode).toBe(mode);
  });

  it.each(['fast', '', 'live save', 'snapshot'])(
    'refuses %j with code 39 naming the attribute and the allowed values',
    (value) => {
      const error = expectBackupError(
        () => parsePlan('vm', VM_PLAN_DN, planEntry({ ...modeClass, vmbackupmode: [value] })),
        39,
        'vmbackupMode',
      );
      expect(error.message).toMatch(/live or save/);
      expect(error.message).toContain(VM_PLAN_DN);
    },
  );

  describe('comes from the one entry the lookup chose (no inheritance per attribute)', () => {
    const vm = { level: 'vm' as const, dn: VM_PLAN_DN };
    const pool = { level: 'pool' as const, dn: POOL_PLAN_DN };
    const global = { level: 'global' as const, dn: GLOBAL_PLAN_DN };
    const resolve = (candidates: Parameters<typeof choosePlanEntry>[0]) => {
      const chosen = choosePlanEntry(candidates);
      return parsePlan(chosen.level, chosen.dn, chosen.entry);
    };

    it("a VM plan without vmbackupMode is live even when its pool's plan says save", () => {
      const plan = resolve([
        { ...vm, entry: planEntry() },
        { ...pool, entry: planEntry({ ...modeClass, vmbackupmode: ['save'] }) },
        { ...global, entry: planEntry({ ...modeClass, vmbackupmode: ['save'] }) },
      ]);
      expect(plan.level).toBe('vm');
      expect(plan.mode).toBe('live');
    });

    it("a VM without a plan of its own takes the pool's whole plan, mode included", () => {
      const plan = resolve([
        { ...vm, entry: ouOnly },
        { ...pool, entry: planEntry({ ...modeClass, vmbackupmode: ['save'] }) },
        { ...global, entry: planEntry() },
      ]);
      expect(plan.level).toBe('pool');
      expect(plan.mode).toBe('save');
    });

    it('a pool plan without vmbackupMode is live even when the global plan says save', () => {
      const plan = resolve([
        { ...vm, entry: undefined },
        { ...pool, entry: planEntry() },
        { ...global, entry: planEntry({ ...modeClass, vmbackupmode: ['save'] }) },
      ]);
      expect(plan.level).toBe('pool');
      expect(plan.mode).toBe('live');
    });

    it('an invalid mode in a plan the lookup skipped does not matter', () => {
      const plan = resolve([
        { ...vm, entry: planEntry({ ...modeClass, vmbackupmode: ['save'] }) },
        { ...pool, entry: planEntry({ ...modeClass, vmbackupmode: ['fast'] }) },
      ]);
      expect(plan.mode).toBe('save');
    });
  });
});

describe('verification window (vmbackupVerifyDays)', () => {
  it('is absent when the plan does not set it: the global window applies', () => {
    expect(parsePlan('global', GLOBAL_PLAN_DN, planEntry())).not.toHaveProperty('verifyDays');
  });

  it('is the plan own number of days', () => {
    expect(parsePlan('global', GLOBAL_PLAN_DN, planEntry({ vmbackupverifydays: ['3'] })).verifyDays).toBe(3);
  });

  it.each(['0', '400', 'weekly'])('refuses %s', (v) => {
    expect(() => parsePlan('global', GLOBAL_PLAN_DN, planEntry({ vmbackupverifydays: [v] }))).toThrow(
      /vmbackupVerifyDays/,
    );
  });
});
