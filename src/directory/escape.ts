/** RFC 4514: escape an attribute value for use inside a DN. */
export function escapeDnValue(value: string): string {
  let out = value.replace(/[\\,+"<>;=#]/g, (c) => `\\${c}`).replace(/\0/g, '\\00');
  if (out.startsWith(' ')) out = `\\${out}`;
  if (out.endsWith(' ') && !out.endsWith('\\ ')) out = `${out.slice(0, -1)}\\ `;
  return out;
}

/** RFC 4515: escape an assertion value for use inside a search filter. */
export function escapeFilterValue(value: string): string {
  return value.replace(/[\\*()\0]/g, (c) => `\\${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}
