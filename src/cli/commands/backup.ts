import type { Command } from 'commander';
import { runBackup } from '../backup';
import { runWatch } from '../watch';
import { jsonOption, noProgressOption, prose, type CommandContext } from './context';

export function addBackupCommands(program: Command, ctx: CommandContext): void {
  program
    .command('backup')
    .summary('back up one or several VMs')
    .description(
      prose(`Backs up the named VMs. With several VMs, all snapshots run first, together, then the
merges and retains. Prints the workflow ID and its Temporal UI address.
With --wait it shows each VM's progress on stderr while it runs (stage, bytes done of
total, rate, ETA: bars on a terminal, timestamped lines otherwise) and prints each VM's
outcome; exit 1 if any failed.`),
    )
    .argument('<vm...>', 'the VMs to back up')
    .option('--wait', "wait for the end and print each VM's outcome; exit 1 if any failed")
    .option('--run-date <YYYYMMDDThhmmssZ>', 'the planned time (UTC) naming the run; default now')
    .addOption(noProgressOption())
    .addOption(jsonOption())
    .action(
      async (vms: string[], o: { wait?: boolean; runDate?: string; progress: boolean; json?: boolean }) => {
        ctx.exit(
          await ctx.withClient((client) =>
            runBackup(
              client,
              { vms, wait: !!o.wait, runDate: o.runDate, json: o.json, progress: o.progress },
              ctx.io,
            ),
          ),
        );
      },
    );

  program
    .command('watch')
    .summary("show the progress of a VM's backup or restore that is running")
    .description(
      prose(`Attaches to the backup or restore of <vm> that is running (workflow vm/<vm>) and shows
its progress until it ends: the stage, bytes done of total, rate and ETA, as bars on a
terminal and as timestamped lines otherwise (stderr), then its outcome (stdout).
Give the workflow ID of a multi-VM run (backup-vms/…, printed by vmbackup backup) to
follow each of its VMs. Exit 0 when the run ended well, 1 when it failed (or the restore
was aborted), 2 when no run is going.`),
    )
    .argument('<vm>', 'a VM name, or the workflow ID of a multi-VM run')
    .action(async (target: string) => {
      ctx.exit(await ctx.withClient((client) => runWatch(client, { target }, ctx.io.out, ctx.io.err)));
    });
}
