import { describe, expect, it } from 'vitest';
import { escapeDnValue, escapeFilterValue } from '../../src/directory/escape';

describe('escapeDnValue (RFC 4514)', () => {
  it('leaves an ordinary value alone', () => {
    expect(escapeDnValue('web01')).toBe('web01');
    expect(escapeDnValue('virtual machines')).toBe('virtual machines');
    expect(escapeDnValue('20140109T134445Z')).toBe('20140109T134445Z');
  });

  it.each([
    [',', 'a,b', 'a\\,b'],
    ['+', 'a+b', 'a\\+b'],
    ['"', 'a"b', 'a\\"b'],
    ['\\', 'a\\b', 'a\\\\b'],
    ['<', 'a<b', 'a\\<b'],
    ['>', 'a>b', 'a\\>b'],
    [';', 'a;b', 'a\\;b'],
    ['=', 'a=b', 'a\\=b'],
    ['#', 'a#b', 'a\\#b'],
  ])('escapes %s with a backslash', (_char, value, expected) => {
    expect(escapeDnValue(value)).toBe(expected);
  });

  it('escapes a leading #', () => {
    expect(escapeDnValue('#1')).toBe('\\#1');
  });

  it('escapes every occurrence, not just the first', () => {
    expect(escapeDnValue('a,b,c+d')).toBe('a\\,b\\,c\\+d');
  });

  it('escapes a backslash before the characters it escapes, without double escaping', () => {
    expect(escapeDnValue('\\,')).toBe('\\\\\\,');
  });

  it('writes NUL as \\00', () => {
    expect(escapeDnValue('a\u0000b')).toBe('a\\00b');
  });

  it('escapes a leading space', () => {
    expect(escapeDnValue(' web')).toBe('\\ web');
  });

  it('escapes a trailing space', () => {
    expect(escapeDnValue('web ')).toBe('web\\ ');
  });

  it('keeps inner spaces as they are', () => {
    expect(escapeDnValue('a b  c')).toBe('a b  c');
  });

  it('escapes both leading and trailing spaces', () => {
    expect(escapeDnValue(' web ')).toBe('\\ web\\ ');
  });

  it('escapes a value consisting of a single space once', () => {
    expect(escapeDnValue(' ')).toBe('\\ ');
  });

  it('escapes both ends of a value of two spaces', () => {
    expect(escapeDnValue('  ')).toBe('\\ \\ ');
  });

  it('escapes a trailing space after an escaped special character', () => {
    expect(escapeDnValue('a, ')).toBe('a\\,\\ ');
  });

  it('leaves non-ASCII characters as UTF-8 text', () => {
    expect(escapeDnValue('Zürich')).toBe('Zürich');
  });

  it('returns an empty value unchanged', () => {
    expect(escapeDnValue('')).toBe('');
  });
});

describe('escapeFilterValue (RFC 4515)', () => {
  it('leaves an ordinary value alone', () => {
    expect(escapeFilterValue('web01')).toBe('web01');
    expect(escapeFilterValue('a,b=c+d#e')).toBe('a,b=c+d#e');
  });

  it.each([
    ['*', 'a*b', 'a\\2ab'],
    ['(', 'a(b', 'a\\28b'],
    [')', 'a)b', 'a\\29b'],
    ['\\', 'a\\b', 'a\\5cb'],
    ['NUL', 'a\u0000b', 'a\\00b'],
  ])('escapes %s as a two-digit hex pair', (_char, value, expected) => {
    expect(escapeFilterValue(value)).toBe(expected);
  });

  it('neutralises a filter injection attempt', () => {
    expect(escapeFilterValue('*)(objectClass=*')).toBe('\\2a\\29\\28objectClass=\\2a');
  });

  it('escapes a backslash only once when followed by hex-looking text', () => {
    expect(escapeFilterValue('\\2a')).toBe('\\5c2a');
  });
});

describe('escapeDnValue trailing spaces', () => {
  it('escapes a trailing space that follows an escaped backslash', () => {
    expect(escapeDnValue('x\\ ')).toBe('x\\\\\\ ');
  });
});
