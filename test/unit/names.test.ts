import { describe, expect, it } from 'vitest';
import {
  assertNodeName,
  assertRunDate,
  assertVmName,
  formatRunDate,
  nodeTaskQueue,
} from '../../src/domain/names';
import { expectBackupError } from './expect-backup-error';

describe('assertVmName', () => {
  it.each([
    ['a plain name', 'web01'],
    ['a name with dashes, dots and underscores', 'db-server_2.prod'],
    ['a lower-case UUID', '0f83f084-8080-413e-b558-b678e504836e'],
    ['an upper-case UUID', '0F83F084-8080-413E-B558-B678E504836E'],
    ['a single character', 'x'],
    ['a name starting with a digit', '1vm'],
    ['a name of exactly 64 characters', 'a'.repeat(64)],
  ])('accepts %s', (_what, name) => {
    expect(() => assertVmName(name)).not.toThrow();
  });

  it.each([
    ['a comma', 'web,01'],
    ['an equals sign', 'web=01'],
    ['a plus sign', 'web+01'],
    ['a double quote', 'web"01'],
    ['a single quote', "web'01"],
    ['a backtick', 'web`01'],
    ['a space', 'web 01'],
    ['a leading space', ' web01'],
    ['a trailing space', 'web01 '],
    ['a tab', 'web\t01'],
    ['a trailing newline', 'web01\n'],
    ['a slash', 'pool/web01'],
    ['a backslash', 'pool\\web01'],
    ['two consecutive dots', 'web..01'],
    ['a semicolon', 'web;01'],
    ['a hash', 'web#01'],
    ['angle brackets', 'web<01>'],
    ['an asterisk', 'web*'],
    ['parentheses', 'web(01)'],
    ['a NUL byte', 'web\u000001'],
    ['a non-ASCII letter', 'wébserver'],
    ['a dollar sign', 'web$01'],
  ])('refuses a VM name containing %s', (_what, name) => {
    expectBackupError(() => assertVmName(name), 23, 'invalid VM name');
  });

  it.each([
    ['an empty name', ''],
    ['the name ".."', '..'],
    ['the name "."', '.'],
    ['a name starting with a dot', '.hidden'],
    ['a name starting with a dash', '-rf'],
    ['a name starting with an underscore', '_vm'],
    ['a name of 65 characters', 'a'.repeat(65)],
    ['a very long name', 'a'.repeat(1000)],
  ])('refuses %s', (_what, name) => {
    expectBackupError(() => assertVmName(name), 23);
  });

  it.each([
    ['undefined', undefined],
    ['null', null],
    ['a number', 42],
    ['an array', ['web01']],
    ['an object', { name: 'web01' }],
  ])('refuses %s instead of a string', (_what, value) => {
    expectBackupError(() => assertVmName(value), 23);
  });

  it('quotes the refused name in the error message', () => {
    expectBackupError(() => assertVmName('a,b'), 23, '"a,b"');
  });
});

describe('assertNodeName', () => {
  it.each(['node01', 'kvm-01.example.com', '10.0.0.1', 'N'])('accepts the node name %j', (name) => {
    expect(() => assertNodeName(name)).not.toThrow();
  });

  it.each([
    ['an underscore', 'node_01'],
    ['a slash', 'node/01'],
    ['a space', 'node 01'],
    ['two consecutive dots', 'node..example'],
    ['a leading dash', '-node'],
    ['a colon', 'node:01'],
  ])('refuses a node name containing %s', (_what, name) => {
    expectBackupError(() => assertNodeName(name), 39, 'invalid node name');
  });

  it('refuses an empty node name', () => {
    expectBackupError(() => assertNodeName(''), 39);
  });

  it('refuses a node name longer than 63 characters', () => {
    expect(() => assertNodeName('n'.repeat(63))).not.toThrow();
    expectBackupError(() => assertNodeName('n'.repeat(64)), 39);
  });
});

describe('nodeTaskQueue', () => {
  it('prefixes the node name with "node-"', () => {
    expect(nodeTaskQueue('kvm-01')).toBe('node-kvm-01');
  });

  it('keeps dots of a fully qualified node name', () => {
    expect(nodeTaskQueue('kvm-01.example.com')).toBe('node-kvm-01.example.com');
  });

  it('refuses to build a task queue for an invalid node name', () => {
    expectBackupError(() => nodeTaskQueue('kvm 01'), 39);
    expectBackupError(() => nodeTaskQueue(''), 39);
  });
});

describe('formatRunDate', () => {
  it('formats a UTC instant as YYYYMMDDThhmmssZ', () => {
    expect(formatRunDate(new Date(Date.UTC(2014, 0, 9, 13, 44, 45)))).toBe('20140109T134445Z');
  });

  it('drops milliseconds instead of rounding them', () => {
    expect(formatRunDate(new Date(Date.UTC(2026, 11, 31, 23, 59, 59, 999)))).toBe('20261231T235959Z');
  });

  it('zero-pads single-digit months, days and times', () => {
    expect(formatRunDate(new Date(Date.UTC(2026, 1, 3, 4, 5, 6)))).toBe('20260203T040506Z');
  });

  it('uses UTC, not the local time zone', () => {
    expect(formatRunDate(new Date('2026-06-15T23:30:00+02:00'))).toBe('20260615T213000Z');
  });

  it('produces values that assertRunDate accepts', () => {
    const value = formatRunDate(new Date(Date.UTC(2024, 1, 29, 0, 0, 0)));
    expect(value).toBe('20240229T000000Z');
    expect(() => assertRunDate(value)).not.toThrow();
  });
});

describe('assertRunDate', () => {
  it.each(['20140109T134445Z', '20240229T000000Z', '20261231T235959Z', '19700101T000000Z'])(
    'accepts the run date %s',
    (value) => {
      expect(() => assertRunDate(value)).not.toThrow();
    },
  );

  it.each([
    ['month 13, hour 25', '20261332T250000Z'],
    ['month 00', '20260001T000000Z'],
    ['day 00', '20260100T000000Z'],
    ['day 32', '20260132T000000Z'],
    ['30 February', '20260230T000000Z'],
    ['29 February of a non-leap year', '20230229T000000Z'],
    ['31 April', '20260431T000000Z'],
    ['hour 24', '20260101T240000Z'],
    ['minute 60', '20260101T006000Z'],
    ['second 60', '20260101T000060Z'],
  ])('refuses an impossible date (%s)', (_what, value) => {
    expectBackupError(() => assertRunDate(value), 18, 'invalid run date');
  });

  it.each([
    ['an ISO 8601 date with separators', '2026-01-01T00:00:00Z'],
    ['a date without the Z suffix', '20260101T000000'],
    ['a lower-case t and z', '20260101t000000z'],
    ['a date with milliseconds', '20260101T000000.000Z'],
    ['a date with a trailing space', '20260101T000000Z '],
    ['a date with a trailing newline', '20260101T000000Z\n'],
    ['a date with a leading space', ' 20260101T000000Z'],
    ['a two-digit year', '260101T000000Z'],
    ['an empty string', ''],
    ['a DN-like value', 'ou=20260101T000000Z'],
  ])('refuses a malformed run date: %s', (_what, value) => {
    expectBackupError(() => assertRunDate(value), 18);
  });

  it.each([
    ['undefined', undefined],
    ['a number', 20260101],
    ['a Date', new Date(Date.UTC(2026, 0, 1))],
  ])('refuses %s instead of a string', (_what, value) => {
    expectBackupError(() => assertRunDate(value), 18);
  });
});
