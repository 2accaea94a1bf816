import type { Attributes } from '../domain/plan';

// RFC 2849: a value is written as is only if it is a "safe string": no NUL, CR or LF,
// ASCII only, and not starting with a space, ':' or '<'. Anything else is base64-encoded.
function isSafe(value: string): boolean {
  if (/^[ :<]/.test(value) || / $/.test(value)) return false;
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (c === 0 || c === 10 || c === 13 || c > 127) return false;
  }
  return true;
}

function line(name: string, value: string): string {
  return value === '' || isSafe(value)
    ? `${name}: ${value}`
    : `${name}:: ${Buffer.from(value, 'utf8').toString('base64')}`;
}

/** Serialises entries as LDIF, parents before children, so the file can be re-added as is. */
export function toLdif(entries: ReadonlyArray<{ dn: string; attributes: Attributes }>): string {
  const sorted = [...entries].sort(
    (a, b) => a.dn.split(',').length - b.dn.split(',').length || a.dn.localeCompare(b.dn),
  );
  return sorted
    .map(({ dn, attributes }) => {
      const lines = [line('dn', dn)];
      const names = Object.keys(attributes).sort((a, b) =>
        a === 'objectclass' ? -1 : b === 'objectclass' ? 1 : a.localeCompare(b),
      );
      for (const name of names) for (const v of attributes[name] ?? []) lines.push(line(name, v));
      return lines.join('\n') + '\n';
    })
    .join('\n');
}
