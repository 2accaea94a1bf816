import { Option, type Command } from 'commander';
import { temporalConfig } from '../../config';
import { listVmBackups } from '../backups';
import { runDrill } from '../drill';
import { runExport } from '../export';
import { runStatus } from '../status';
import { runVerify } from '../verify';
import { backupDateOption, jsonOption, prose, type CommandContext } from './context';

/** The commands that look at and check kept backups: status, backups, verify, export, drill. */
export function addOpsCommands(program: Command, ctx: CommandContext): void {
  program
    .command('status')
    .summary('every VM: last good backup, last run, verification; exit 1 if any needs attention')
    .description(
      prose(`One line per VM of the directory (or of one node): its plan and mode, the last good
backup and its age, the last run's outcome, why the nightly run skips it, the newest
backup's verification, the next scheduled run, and OK or FAIL with the reasons. Exit 0
when every VM that should be backed up (not excluded, with a scheduled plan) has a good
backup within its schedule's period (plus 2 h; 26 h when it cannot be told), its newest
backup did not fail verification, its last run did not fail, the nightly run does not
skip it and its node has a worker; 1 otherwise. Usable as a Nagios/Icinga check as it is.
--json prints {"ok": …, "vms": [...]} with the same fields (see docs/json.md).`),
    )
    .option('--node <name>', 'only the VMs of this node')
    .addOption(jsonOption())
    .action(async (o: { node?: string; json?: boolean }) => {
      const namespace = temporalConfig().namespace;
      ctx.exit(
        await ctx.withClient((client) =>
          runStatus(client, { node: o.node, json: !!o.json, namespace }, ctx.io),
        ),
      );
    });

  program
    .command('backups')
    .summary("list a VM's backups: date, state, verification, size, files")
    .description(
      'Lists the backups of <vm>: date, state of its run leaf, size on disk and the files present.',
    )
    .argument('<vm>', 'the VM')
    .addOption(jsonOption())
    .action(async (vm: string, o: { json?: boolean }) => {
      ctx.exit(await ctx.withClient((client) => listVmBackups(client, { vm, json: o.json }, ctx.io)));
    });

  program
    .command('verify')
    .summary('re-read a backup against its manifest and check it')
    .description(
      prose(`Verifies backups of <vm> on its node (default: the latest complete one): every file is
re-read once against the size and SHA-256 its manifest recorded at retain, the images pass
\`qemu-img check\`, the state file is a libvirt save image (or the placeholder of a VM that
was off), XML and LDIF parse and describe the same disks, and every disk has its image.
The outcome is marked on the run leaf (shown by \`vmbackup backups\`) and written to
<vm>.verify.<date> in the backup directory. Prints each bad file by name and what is
wrong. Exit 0 when every backup passed (or has no manifest, said so), 1 when any failed.`),
    )
    .argument('<vm>', 'the VM')
    .addOption(backupDateOption('the backup to verify (default: the latest complete one)'))
    .addOption(new Option('--all', 'every kept backup of the VM').conflicts('backup'))
    .addOption(jsonOption())
    .action(async (vm: string, o: { backup?: string; all?: boolean; json?: boolean }) => {
      ctx.exit(
        await ctx.withClient((client) =>
          runVerify(client, { vm, backup: o.backup, all: !!o.all, json: o.json }, ctx.io),
        ),
      );
    });

  program
    .command('export')
    .summary('one disk of a backup as a standalone qcow2')
    .description(
      prose(`Writes one disk of a backup (default: the latest complete one) as a standalone qcow2 file
<file> on the VM's node, without touching the VM. <file> must be an absolute path inside a
storage root (VMBACKUP_STORAGE_ROOTS) and must not exist; it is owner-only (guest data) and
compared with the backup's image before it appears under its name.`),
    )
    .argument('<vm>', 'the VM')
    .requiredOption('--disk <target>', 'the disk, by its target (vda, vdb, …)')
    .requiredOption('--to <file>', 'the qcow2 file to write (absolute, inside a storage root, new)')
    .addOption(backupDateOption())
    .addOption(jsonOption())
    .action(async (vm: string, o: { disk: string; to: string; backup?: string; json?: boolean }) => {
      ctx.exit(
        await ctx.withClient((client) =>
          runExport(client, { vm, backup: o.backup, disk: o.disk, to: o.to, json: o.json }, ctx.io),
        ),
      );
    });

  program
    .command('drill')
    .summary('restore a backup into a scratch VM, check it runs, remove it')
    .description(
      prose(`Restore drill on the VM's node: the backup (default the latest complete one) comes up as a
scratch VM <vm>-drill-<MMDDhhmm> with a new UUID, its disks and state copied into
<retain root>/drills/<vm>/<date>/ (checked against the manifest, compared with the backup's
images before it runs), from its saved state (interfaces on the isolated libvirt network
vmbackup-drill) or booted without interfaces when the VM was off. It must reach running;
then it is destroyed and everything it made removed, also after a crash. The live VM and
its directory entry are never touched. The result is written to <vm>.drill.<date> in the
backup directory. Exit 0 when the drill passed, 1 when it failed.

The schedule vmbackup-drill (VMBACKUP_DRILL_CRON, default '0 3 1 * *', 'off' to turn off)
drills every VM's latest backup monthly, one VM at a time per node.`),
    )
    .argument('<vm>', 'the VM')
    .addOption(backupDateOption('the backup to drill (default: the latest complete one)'))
    .addOption(jsonOption())
    .action(async (vm: string, o: { backup?: string; json?: boolean }) => {
      ctx.exit(
        await ctx.withClient((client) => runDrill(client, { vm, backup: o.backup, json: o.json }, ctx.io)),
      );
    });
}
