/** RFC 4514: escape an attribute value for use inside a DN. */
export function escapeDnValue(value: string): string {
  const body = value.replace(/[\\,+"<>;=#]/g, (c) => `\\${c}`).replace(/\0/g, '\\00');
  // Leading and trailing spaces are escaped; decided on the raw value, not the escaped one.
  const lead = value.startsWith(' ') ? '\\' : '';
  const trailing = value.endsWith(' ') && !(value === ' ' && lead);
  return trailing ? `${lead}${body.slice(0, -1)}\\ ` : `${lead}${body}`;
}

/** RFC 4515: escape an assertion value for use inside a search filter. */
export function escapeFilterValue(value: string): string {
  return value.replace(/[\\*()\0]/g, (c) => `\\${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}
