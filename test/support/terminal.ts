import { stripVTControlCharacters } from 'node:util';

/** Control Sequence Introducer: what every cursor move, erase or cursor show/hide starts with. */
export const CSI = `${String.fromCharCode(27)}[`;

/**
 * What a program drew on a terminal, as the texts it drew: cli-progress starts each redraw of
 * a bar at column 1 (`CSI 1G`), so each piece between those is one drawing, its control
 * sequences removed.
 */
export function drawings(raw: string): string[] {
  return raw.split(`${CSI}1G`).map((piece) => stripVTControlCharacters(piece).trim());
}

/** The screen's text, control sequences removed, line by line, blank lines dropped. */
export function screenLines(raw: string): string[] {
  return stripVTControlCharacters(raw)
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter(Boolean);
}
