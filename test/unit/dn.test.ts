import { describe, expect, it } from 'vitest';
import { StoneyTree } from '../../src/directory/dn';

const BASE = 'o=stepping-stone,c=ch';
const VIRT = `ou=virtualization,ou=services,${BASE}`;
const tree = new StoneyTree(BASE);

describe('StoneyTree', () => {
  it('keeps the base it was given', () => {
    expect(tree.base).toBe(BASE);
  });

  it('places the virtualization service below ou=services', () => {
    expect(tree.virtualization).toBe(VIRT);
  });

  it('names the containers of VMs and pools', () => {
    expect(tree.virtualMachines).toBe(`ou=virtual machines,${VIRT}`);
    expect(tree.pools).toBe(`ou=virtual machine pools,${VIRT}`);
  });

  it('names the global backup plan', () => {
    expect(tree.globalBackupPlan).toBe(`ou=backup,ou=configuration,${VIRT}`);
  });

  it('names a VM by sstVirtualMachine below ou=virtual machines', () => {
    expect(tree.vm('web01')).toBe(`sstVirtualMachine=web01,ou=virtual machines,${VIRT}`);
  });

  it("names a VM's devices, its backup plan and a run leaf", () => {
    const vm = `sstVirtualMachine=web01,ou=virtual machines,${VIRT}`;
    expect(tree.devices('web01')).toBe(`ou=devices,${vm}`);
    expect(tree.vmBackup('web01')).toBe(`ou=backup,${vm}`);
    expect(tree.runLeaf('web01', '20140109T134445Z')).toBe(`ou=20140109T134445Z,ou=backup,${vm}`);
  });

  it('names a pool and its backup plan', () => {
    const pool = `sstVirtualMachinePool=0f83f084-8080-413e-b558-b678e504836e,ou=virtual machine pools,${VIRT}`;
    expect(tree.pool('0f83f084-8080-413e-b558-b678e504836e')).toBe(pool);
    expect(tree.poolBackup('0f83f084-8080-413e-b558-b678e504836e')).toBe(`ou=backup,${pool}`);
  });

  it('escapes special characters in a VM name', () => {
    expect(tree.vm('a,b=c')).toBe(`sstVirtualMachine=a\\,b\\=c,ou=virtual machines,${VIRT}`);
    expect(tree.vm('x+y"z')).toBe(`sstVirtualMachine=x\\+y\\"z,ou=virtual machines,${VIRT}`);
    expect(tree.vm(' lead')).toBe(`sstVirtualMachine=\\ lead,ou=virtual machines,${VIRT}`);
    expect(tree.vm('#1')).toBe(`sstVirtualMachine=\\#1,ou=virtual machines,${VIRT}`);
  });

  it('escapes an odd VM name in every DN built from it', () => {
    const vm = `sstVirtualMachine=evil\\,ou\\=x,ou=virtual machines,${VIRT}`;
    expect(tree.devices('evil,ou=x')).toBe(`ou=devices,${vm}`);
    expect(tree.vmBackup('evil,ou=x')).toBe(`ou=backup,${vm}`);
    expect(tree.runLeaf('evil,ou=x', '20140109T134445Z')).toBe(`ou=20140109T134445Z,ou=backup,${vm}`);
  });

  it('escapes special characters in a pool name', () => {
    expect(tree.pool('p;1')).toBe(`sstVirtualMachinePool=p\\;1,ou=virtual machine pools,${VIRT}`);
    expect(tree.poolBackup('p<1>')).toBe(
      `ou=backup,sstVirtualMachinePool=p\\<1\\>,ou=virtual machine pools,${VIRT}`,
    );
  });

  it('escapes the run date of a run leaf', () => {
    expect(tree.runLeaf('web01', 'x,y')).toBe(
      `ou=x\\,y,ou=backup,sstVirtualMachine=web01,ou=virtual machines,${VIRT}`,
    );
  });

  it('works with another base', () => {
    expect(new StoneyTree('dc=example,dc=org').vm('web01')).toBe(
      'sstVirtualMachine=web01,ou=virtual machines,ou=virtualization,ou=services,dc=example,dc=org',
    );
  });
});
