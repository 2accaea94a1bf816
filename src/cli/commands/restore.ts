import { Option, type Command } from 'commander';
import { abortRestore, decideRestore, showRestore, startRestore } from '../restore';
import { runRestoreAs } from '../restore-as';
import {
  backupDateOption,
  jsonOption,
  noProgressOption,
  positiveNumber,
  prose,
  type CommandContext,
} from './context';

export function addRestoreCommands(program: Command, ctx: CommandContext): void {
  const restore = program
    .command('restore')
    .summary('restore a VM from a backup (or as a new VM with --as); decide, abort, status')
    .description(
      prose(`Starts the restore of <vm> from that backup (default: the latest finished one), waits
until the conflicts between the backed-up and the live configuration are known and
prints them. Nothing live is touched before a decision: see the subcommands decide, abort
and status.

With --as <new-name>: brings the backup up as a new VM <new-name> on the same node: a new
UUID and new MAC addresses, its disks copied next to the original's (named after the new
VM), from the saved state (or defined and left off as the VM was), and a directory entry
copied from the backed-up one with sstNode the original's. The original VM, its disks,
XML and entry are not touched. A name already taken (entry, domain or image) is refused
and nothing is changed.`),
    )
    .enablePositionalOptions()
    .argument('<vm>', 'the VM to restore')
    .addOption(backupDateOption('the backup to restore (default: the latest finished one)'))
    .addOption(
      new Option('--as <new-name>', 'bring the backup up as a new VM; the original untouched').conflicts(
        'decisionTimeout',
      ),
    )
    .addOption(
      new Option(
        '--decision-timeout <seconds>',
        'abort by itself when no decision came within this time',
      ).argParser(positiveNumber('--decision-timeout')),
    )
    .addOption(jsonOption())
    .action(
      async (vm: string, o: { backup?: string; as?: string; decisionTimeout?: number; json?: boolean }) => {
        ctx.exit(
          await ctx.withClient((client) =>
            o.as !== undefined
              ? runRestoreAs(client, { vm, as: o.as, backup: o.backup, json: o.json }, ctx.io)
              : startRestore(
                  client,
                  { vm, backup: o.backup, decisionTimeoutSeconds: o.decisionTimeout, json: o.json },
                  ctx.io,
                ),
          ),
        );
      },
    );

  restore
    .command('decide')
    .summary('decide the conflicts of a restore that waits for its decision')
    .description(
      prose(`Decides every conflict (ids from the table of \`vmbackup restore <vm>\`); --all-* sets the
side of those not named. Returns once the decision is accepted; --wait follows the
restore to its end, showing its progress on stderr (stage, bytes, rate, ETA), and exits 1
unless the VM was restored.`),
    )
    .argument('<vm>', 'the VM being restored')
    .option('--take-backup <ids>', 'comma-separated conflict ids to take from the backup')
    .option('--keep-live <ids>', 'comma-separated conflict ids to keep as they are live')
    .addOption(new Option('--all-backup', 'every conflict not named: the backup').conflicts('allLive'))
    .addOption(new Option('--all-live', 'every conflict not named: live'))
    .option('--wait', 'follow the restore to its end')
    .addOption(noProgressOption())
    .addOption(jsonOption())
    .action(
      async (
        vm: string,
        o: {
          takeBackup?: string;
          keepLive?: string;
          allBackup?: boolean;
          allLive?: boolean;
          wait?: boolean;
          progress: boolean;
          json?: boolean;
        },
      ) => {
        ctx.exit(
          await ctx.withClient((client) =>
            decideRestore(
              client,
              {
                vm,
                wait: !!o.wait,
                takeBackup: o.takeBackup,
                keepLive: o.keepLive,
                allBackup: o.allBackup,
                allLive: o.allLive,
                json: o.json,
                progress: o.progress,
              },
              ctx.io,
            ),
          ),
        );
      },
    );

  restore
    .command('abort')
    .summary('abort a restore that waits for its decision')
    .description('Aborts a restore that waits for its decision; the live VM stays as it is.')
    .argument('<vm>', 'the VM being restored')
    .option('--reason <text>', 'why, recorded with the abort')
    .addOption(jsonOption())
    .action(async (vm: string, o: { reason?: string; json?: boolean }) => {
      ctx.exit(
        await ctx.withClient((client) =>
          abortRestore(client, { vm, reason: o.reason, json: o.json }, ctx.io),
        ),
      );
    });

  restore
    .command('status')
    .summary("show a restore's stage, conflicts and decision")
    .description("Shows the restore's stage, conflicts and decision.")
    .argument('<vm>', 'the VM being restored')
    .addOption(jsonOption())
    .action(async (vm: string, o: { json?: boolean }) => {
      ctx.exit(await ctx.withClient((client) => showRestore(client, { vm, json: o.json }, ctx.io)));
    });
}
