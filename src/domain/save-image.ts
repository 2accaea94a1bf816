import { BackupError, ErrorCode } from './errors';

/**
 * The header of a libvirt QEMU save image (`virsh save`, and a live snapshot's memory
 * file): 16 bytes of magic, then uint32 LE version, data_len, was_running, compressed,
 * cookieOffset and 15 unused words — 92 bytes — then data_len bytes: the domain XML
 * NUL-terminated, the cookie (at cookieOffset, when non-zero) NUL-terminated, NUL padding.
 * libvirt pads data so that the XML can be rewritten in place; it then moves the cookie
 * right behind the new XML and sets cookieOffset to it, keeping data_len (libvirt 9.0,
 * checked here: a saved image has the cookie directly after the XML and the padding after
 * the cookie). `virsh restore --xml` refuses another UUID, so a copy under a new identity
 * can only come from an image whose embedded XML was rewritten this way.
 */
export const SAVE_IMAGE_MAGIC = 'LibvirtQemudSave';
export const SAVE_HEADER_BYTES = 92;
const WORDS_AT = 16;

export interface SaveImageHeader {
  version: number;
  dataLen: number;
  wasRunning: number;
  compressed: number;
  cookieOffset: number;
}

export interface SaveImageData {
  header: SaveImageHeader;
  xml: string;
  /** The cookie's text without its NUL, or undefined when the image has none. */
  cookie?: string | undefined;
}

const bad = (why: string) => new BackupError(ErrorCode.corruptImage, `not a libvirt save image: ${why}`);

export function parseSaveHeader(head: Buffer): SaveImageHeader {
  if (head.length < SAVE_HEADER_BYTES) throw bad('shorter than its header');
  if (head.subarray(0, WORDS_AT).toString('latin1') !== SAVE_IMAGE_MAGIC) throw bad('wrong magic');
  const word = (i: number) => head.readUInt32LE(WORDS_AT + 4 * i);
  const header = {
    version: word(0),
    dataLen: word(1),
    wasRunning: word(2),
    compressed: word(3),
    cookieOffset: word(4),
  };
  if (header.version < 2) throw bad(`version ${header.version} has no cookie offset`);
  if (header.cookieOffset >= header.dataLen && header.cookieOffset !== 0)
    throw bad('its cookie lies outside its data');
  return header;
}

const untilNul = (b: Buffer): string => {
  const end = b.indexOf(0);
  return b.subarray(0, end < 0 ? b.length : end).toString('utf8');
};

/** Header and data (the first `92 + dataLen` bytes of the file) as XML and cookie. */
export function parseSaveData(headAndData: Buffer): SaveImageData {
  const header = parseSaveHeader(headAndData);
  if (headAndData.length < SAVE_HEADER_BYTES + header.dataLen) throw bad('shorter than its data');
  const data = headAndData.subarray(SAVE_HEADER_BYTES, SAVE_HEADER_BYTES + header.dataLen);
  const xmlEnd = header.cookieOffset || header.dataLen;
  return {
    header,
    xml: untilNul(data.subarray(0, xmlEnd)),
    cookie: header.cookieOffset ? untilNul(data.subarray(header.cookieOffset)) : undefined,
  };
}

/**
 * The header and data of the image with `xml` in place of its domain XML: same length, so
 * the memory stream behind it stays where it is. Refused when XML and cookie do not fit.
 */
export function rewriteSaveData(image: SaveImageData, xml: string): Buffer {
  if (xml.includes('\0')) throw bad('the new XML holds a NUL');
  const xmlBytes = Buffer.concat([Buffer.from(xml, 'utf8'), Buffer.alloc(1)]);
  const cookie =
    image.cookie === undefined
      ? Buffer.alloc(0)
      : Buffer.concat([Buffer.from(image.cookie, 'utf8'), Buffer.alloc(1)]);
  const { header } = image;
  if (xmlBytes.length + cookie.length > header.dataLen)
    throw new BackupError(
      ErrorCode.unsupportedConfigurationValue,
      `the rewritten domain XML (${xmlBytes.length} bytes) and cookie (${cookie.length}) do not fit the save image's ${header.dataLen} bytes of header data`,
    );
  const out = Buffer.alloc(SAVE_HEADER_BYTES + header.dataLen);
  out.write(SAVE_IMAGE_MAGIC, 0, 'latin1');
  const words = [
    header.version,
    header.dataLen,
    header.wasRunning,
    header.compressed,
    cookie.length ? xmlBytes.length : 0,
  ];
  words.forEach((w, i) => out.writeUInt32LE(w, WORDS_AT + 4 * i));
  xmlBytes.copy(out, SAVE_HEADER_BYTES);
  cookie.copy(out, SAVE_HEADER_BYTES + xmlBytes.length);
  return out;
}
