import { execa, type ResultPromise } from 'execa';

/** Arguments the shell passes through unquoted: domain names and options only. */
const PLAIN = /^[A-Za-z0-9_.:=-]+$/;

/**
 * One long-lived `virsh` reading commands on stdin: a few ms per command instead of a new
 * process and connection each, which under load takes hundreds of ms. Used where timing
 * matters (pausing a group of VMs at one instant). Commands run one after the other.
 */
export class VirshShell {
  private out = '';
  private queue: Promise<unknown> = Promise.resolve();
  private waiting: (() => void) | undefined;
  private seq = 0;

  private constructor(private readonly child: ResultPromise) {
    child.stdout?.setEncoding('utf8');
    child.stdout?.on('data', (chunk: string) => {
      this.out += chunk;
      this.waiting?.();
    });
  }

  static open(uri: string): VirshShell {
    const child = execa('virsh', ['-q', '-c', uri], {
      reject: false,
      buffer: false,
      env: { LC_ALL: 'C' },
      stdin: 'pipe',
    });
    return new VirshShell(child);
  }

  /** Runs one virsh command (its words, each checked to need no quoting) and returns its output. */
  run(args: readonly string[]): Promise<string> {
    for (const a of args)
      if (!PLAIN.test(a)) throw new Error(`virsh shell: refusing argument ${JSON.stringify(a)}`);
    const next = this.queue.then(() => this.exchange(args.join(' ')));
    this.queue = next.catch(() => undefined);
    return next;
  }

  private async exchange(command: string): Promise<string> {
    const mark = `__vmbackup_${process.pid}_${++this.seq}__`;
    this.child.stdin?.write(`${command}\necho ${mark}\n`);
    // virsh echoes the command after its prompt (`virsh # echo mark`): only the output line
    // starts with the mark; its newline may come after the next prompt.
    const end = `\n${mark}`;
    for (;;) {
      const i = this.out.indexOf(end);
      if (i >= 0) {
        const text = this.out.slice(0, i);
        this.out = this.out.slice(i + end.length);
        return text;
      }
      if (this.child.exitCode !== null) throw new Error('virsh shell ended');
      await new Promise<void>((r) => {
        this.waiting = r;
        setTimeout(r, 50);
      });
    }
  }

  async close(): Promise<void> {
    this.child.stdin?.end();
    await this.queue;
    await this.child;
  }
}
