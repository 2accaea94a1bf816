import { BackupError, ErrorCode } from './errors';
import { SAVE_HEADER_BYTES } from './verification';

/**
 * libvirt's save image header: magic (16 bytes), then little-endian words version,
 * data length, was-running, compressed, cookie offset and 14 unused; then `data length`
 * bytes holding the domain XML (NUL-terminated), the migration cookie at `cookie offset`
 * (NUL-terminated) and zero padding; then QEMU's migration stream.
 */
export interface SaveHeader {
  dataBytes: number;
  xml: string;
  /** The cookie's bytes, without its NUL. */
  cookie: Buffer;
}

export function parseSaveHeader(head: Buffer): SaveHeader {
  if (head.subarray(0, 16).toString('latin1') !== 'LibvirtQemudSave' || head.length < SAVE_HEADER_BYTES)
    throw new BackupError(ErrorCode.wrongStateInformation, 'not a complete libvirt save image');
  const dataBytes = head.readUInt32LE(20);
  const cookieOffset = head.readUInt32LE(32);
  const data = head.subarray(SAVE_HEADER_BYTES, SAVE_HEADER_BYTES + dataBytes);
  if (data.length !== dataBytes)
    throw new BackupError(ErrorCode.wrongStateInformation, 'save image header cut short');
  const xmlEnd = data.indexOf(0);
  const cookie = cookieOffset ? data.subarray(cookieOffset, data.indexOf(0, cookieOffset)) : Buffer.alloc(0);
  return { dataBytes, xml: data.subarray(0, xmlEnd < 0 ? dataBytes : xmlEnd).toString('utf8'), cookie };
}

/**
 * The same header with another domain XML, as `virsh save-image-define` writes it: data
 * length kept (the migration stream stays where it is), the cookie moved behind the new
 * XML. Refused when the new XML does not fit in the header's room.
 */
export function withDomainXml(head: Buffer, xml: string): Buffer {
  const h = parseSaveHeader(head);
  const xmlBytes = Buffer.from(xml, 'utf8');
  const cookie = h.cookie.length ? Buffer.concat([h.cookie, Buffer.alloc(1)]) : Buffer.alloc(0);
  const used = xmlBytes.length + 1 + cookie.length;
  if (used > h.dataBytes)
    throw new BackupError(
      ErrorCode.wrongStateInformation,
      `the new domain XML (${xmlBytes.length} bytes) does not fit the save image header (${h.dataBytes} bytes)`,
    );
  const out = Buffer.alloc(SAVE_HEADER_BYTES + h.dataBytes);
  head.copy(out, 0, 0, SAVE_HEADER_BYTES);
  out.writeUInt32LE(cookie.length ? xmlBytes.length + 1 : 0, 32);
  xmlBytes.copy(out, SAVE_HEADER_BYTES);
  cookie.copy(out, SAVE_HEADER_BYTES + xmlBytes.length + 1);
  return out;
}
