/** Where a command writes: `out` is stdout (results), `err` is stderr (messages, progress). */
export interface Io {
  out(line: string): void;
  err(line: string): void;
}

/** A caller's line printer as an Io: both streams into it. */
export function toIo(out: Io | ((line: string) => void)): Io {
  return typeof out === 'function' ? { out, err: out } : out;
}

export const processIo: Io = {
  out: (line) => console.log(line),
  err: (line) => console.error(line),
};

/**
 * A command's output in text or JSON mode. Text mode prints `text` and `info` lines on
 * stdout; JSON mode prints only the one document of `json` on stdout, `info` lines go to
 * stderr and `text` lines nowhere.
 */
export interface Report {
  readonly json: boolean;
  text(line: string): void;
  info(line: string): void;
  /** Prints the JSON document, in JSON mode only. */
  result(doc: unknown): void;
  /** Stderr, in both modes. */
  err(line: string): void;
}

export function report(io: Io, json: boolean | undefined): Report {
  return {
    json: !!json,
    text: (line) => {
      if (!json) io.out(line);
    },
    info: (line) => (json ? io.err(line) : io.out(line)),
    result: (doc) => {
      if (json) io.out(JSON.stringify(doc, null, 2));
    },
    err: (line) => io.err(line),
  };
}

/** `undefined` as `null`: JSON documents keep every field, null when it has no value. */
export const orNull = <T>(v: T | undefined): T | null => (v === undefined ? null : v);
