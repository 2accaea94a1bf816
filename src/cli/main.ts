import { parseArgs } from 'node:util';
import { ConfigError, temporalConfig } from '../config';
import { BackupError } from '../domain/errors';
import { createControlWorker } from '../workers/control';
import { createNodeWorker } from '../workers/node';
import { runBackup } from './backup';
import { listVmBackups } from './backups';
import { runScheduleSync, startPeriodicSync } from './schedules';
import { abortRestore, decideRestore, showRestore, startRestore } from './restore';
import { connectClient } from '../temporal/connect';
import { runCodecServer } from './codec-server';
import { runVerify } from './verify';
import { runExport } from './export';
import { runStatus } from './status';
import { runDrill } from './drill';
import { runRestoreAs } from './restore-as';

const HELP: Record<string, string> = {
  main: `vmbackup — backup of libvirt VMs orchestrated by Temporal

Usage:
  vmbackup worker control              run the control worker (workflows, directory)
  vmbackup worker node --node <name>   run the node worker of a hypervisor
  vmbackup backup <vm...> [--wait]     back up one or several VMs
  vmbackup restore <vm> [--backup D]   start a restore and show its conflicts
  vmbackup restore <vm> --as <new> [--backup D]  the backup as a new VM; the original untouched
  vmbackup restore decide|abort|status <vm>
  vmbackup status [--node N] [--json]  every VM: last good backup, last run, verification; exit 1 if any needs attention
  vmbackup backups <vm>                list a VM's backups: date, state, verification, size, files
  vmbackup verify <vm> [--backup D|--all]  re-read a backup against its manifest and check it
  vmbackup export <vm> --disk vdb --to F [--backup D]  one disk of a backup as a standalone qcow2
  vmbackup drill <vm> [--backup D]     restore a backup into a scratch VM, check it runs, remove it
  vmbackup schedules sync [--dry-run]  make Temporal schedules match the backup plans
  vmbackup codec-server [--port N]     decrypt payloads for the Temporal UI and CLI

Configuration comes from the environment (TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, LDAP_URL,
LDAP_STARTTLS, LDAP_CA_FILE, LDAP_BIND_DN, LDAP_BIND_PASSWORD, LDAP_BASE_DN, LIBVIRT_URI,
VMBACKUP_IMAGES_ROOT, VMBACKUP_STORAGE_ROOTS, VMBACKUP_CODEC_KEYS_FILE); \`set -a; . .dev/env; set +a\` gives the
embedded defaults.
Run \`vmbackup <command> --help\` for details.`,
  worker: `Usage:
  vmbackup worker control
      Runs workflows and directory activities on the control queue.
  vmbackup worker node --node <name>
      Runs snapshot, merge and retain for VMs whose sstNode is <name> (queue node-<name>).
Both stop gracefully on SIGINT/SIGTERM.`,
  backup: `Usage: vmbackup backup <vm...> [--wait] [--run-date YYYYMMDDThhmmssZ]

Backs up the named VMs. With several VMs, all snapshots run first, together, then the
merges and retains. Prints the workflow ID and its Temporal UI address.
  --wait       wait for the end and print each VM's outcome; exit 1 if any failed
  --run-date   the planned time (UTC) naming the run; default now`,
  schedules: `Usage: vmbackup schedules sync [--dry-run]

Reads every backup plan with cron fields (global, pool, VM) from the directory and
creates, updates, pauses or deletes the Temporal schedules vmbackup-plan-* to match.
Cron fields are local time in VMBACKUP_TIMEZONE (IANA, default UTC). Prints what it
changed, or "no changes". --dry-run only prints what it would change.`,
  verify: `Usage: vmbackup verify <vm> [--backup YYYYMMDDThhmmssZ | --all]

Verifies backups of <vm> on its node (default: the latest complete one): every file is
re-read once against the size and SHA-256 its manifest recorded at retain, the images pass
\`qemu-img check\`, the state file is a libvirt save image (or the placeholder of a VM that
was off), XML and LDIF parse and describe the same disks, and every disk has its image.
The outcome is marked on the run leaf (shown by \`vmbackup backups\`) and written to
<vm>.verify.<date> in the backup directory. Prints each bad file by name and what is
wrong. Exit 0 when every backup passed (or has no manifest, said so), 1 when any failed.`,
  status: `Usage: vmbackup status [--node <name>] [--json]

One line per VM of the directory (or of one node): its plan and mode, the last good
backup and its age, the last run's outcome, why the nightly run skips it, the newest
backup's verification, the next scheduled run, and OK or FAIL with the reasons. Exit 0
when every VM that should be backed up (not excluded, with a scheduled plan) has a good
backup within its schedule's period (plus 2 h; 26 h when it cannot be told), its newest
backup did not fail verification, its last run did not fail, the nightly run does not
skip it and its node has a worker; 1 otherwise. Usable as a Nagios/Icinga check as it is.
--json prints {"ok": …, "vms": [...]} with the same fields (see README).`,
  export: `Usage: vmbackup export <vm> --disk <target> --to <file> [--backup YYYYMMDDThhmmssZ]

Writes one disk of a backup (default: the latest complete one) as a standalone qcow2 file
<file> on the VM's node, without touching the VM. <file> must be an absolute path inside a
storage root (VMBACKUP_STORAGE_ROOTS) and must not exist; it is owner-only (guest data) and
compared with the backup's image before it appears under its name.`,
  drill: `Usage: vmbackup drill <vm> [--backup YYYYMMDDThhmmssZ]

Restore drill on the VM's node: the backup (default the latest complete one) comes up as a
scratch VM <vm>-drill-<MMDDhhmm> with a new UUID, its disks and state copied into
<retain root>/drills/<vm>/<date>/ (checked against the manifest, compared with the backup's
images before it runs), from its saved state (interfaces on the isolated libvirt network
vmbackup-drill) or booted without interfaces when the VM was off. It must reach running;
then it is destroyed and everything it made removed, also after a crash. The live VM and
its directory entry are never touched. The result is written to <vm>.drill.<date> in the
backup directory. Exit 0 when the drill passed, 1 when it failed.
The schedule vmbackup-drill (VMBACKUP_DRILL_CRON, default '0 3 1 * *', 'off' to turn off)
drills every VM's latest backup monthly, one VM at a time per node.`,
  restore: `Usage:
  vmbackup restore <vm> [--backup YYYYMMDDThhmmssZ] [--decision-timeout <seconds>]
      Starts the restore of <vm> from that backup (default: the latest finished one),
      waits until the conflicts between the backed-up and the live configuration are
      known and prints them. Nothing live is touched before a decision.
  vmbackup restore <vm> --as <new-name> [--backup YYYYMMDDThhmmssZ]
      Brings the backup up as a new VM <new-name> on the same node: a new UUID and new MAC
      addresses, its disks copied next to the original's (named after the new VM), from
      the saved state (or defined and left off as the VM was), and a directory entry copied
      from the backed-up one with sstNode the original's. The original VM, its disks, XML
      and entry are not touched. A name already taken (entry, domain or image) is refused
      and nothing is changed.
  vmbackup restore decide <vm> [--take-backup id,id] [--keep-live id,id] [--all-backup|--all-live] [--wait]
      Decides every conflict (ids from the table); --all-* sets the side of those not named.
      Returns once the decision is accepted; --wait follows the restore to its end.
  vmbackup restore abort <vm> [--reason text]
      Aborts a restore that waits for its decision; the live VM stays as it is.
  vmbackup restore status <vm>
      Shows the restore's stage, conflicts and decision.`,
};

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  const out = (line: string) => console.log(line);
  if (!command || command === '--help' || command === '-h' || command === 'help') {
    out(HELP['main']!);
    return command ? 0 : 2;
  }
  if (command === 'worker') {
    const { values, positionals } = parseArgs({
      args: rest,
      options: { node: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
      allowPositionals: true,
    });
    if (values.help) return (out(HELP['worker']!), 0);
    const kind = positionals[0];
    if (kind === 'control') {
      const worker = await createControlWorker();
      out('control worker running on queue vmbackup-control');
      const stopSync = await startPeriodicSync(out);
      try {
        await worker.run();
      } finally {
        stopSync();
      }
      return 0;
    }
    if (kind === 'node') {
      if (!values.node) throw new ConfigError('vmbackup worker node needs --node <name>');
      const worker = await createNodeWorker(values.node);
      out(`node worker for ${values.node} running on queue node-${values.node}`);
      await worker.run();
      return 0;
    }
    console.error(HELP['worker']);
    return 2;
  }
  if (command === 'backup') {
    const { values, positionals } = parseArgs({
      args: rest,
      options: {
        wait: { type: 'boolean' },
        'run-date': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
      allowPositionals: true,
    });
    if (values.help) return (out(HELP['backup']!), 0);
    if (positionals.length === 0) {
      console.error(HELP['backup']);
      return 2;
    }
    const client = await connectClient(temporalConfig());
    try {
      return await runBackup(
        client,
        { vms: positionals, wait: !!values.wait, runDate: values['run-date'] },
        out,
      );
    } finally {
      await client.connection.close();
    }
  }
  if (command === 'backups') {
    const { values, positionals } = parseArgs({
      args: rest,
      options: { help: { type: 'boolean', short: 'h' } },
      allowPositionals: true,
    });
    if (values.help || positionals.length !== 1) {
      (values.help ? out : console.error)(
        'Usage: vmbackup backups <vm>\n\nLists the backups of <vm>: date, state of its run leaf, size on disk and the files present.',
      );
      return values.help ? 0 : 2;
    }
    const client = await connectClient(temporalConfig());
    try {
      return await listVmBackups(client, positionals[0]!, out);
    } finally {
      await client.connection.close();
    }
  }
  if (command === 'schedules') {
    const { values, positionals } = parseArgs({
      args: rest,
      options: { 'dry-run': { type: 'boolean' }, help: { type: 'boolean', short: 'h' } },
      allowPositionals: true,
    });
    if (values.help) return (out(HELP['schedules']!), 0);
    if (positionals[0] !== 'sync') {
      console.error(HELP['schedules']);
      return 2;
    }
    return runScheduleSync(!!values['dry-run'], out);
  }
  if (command === 'codec-server') return runCodecServer(rest, out);
  if (command === 'status') {
    const { values, positionals } = parseArgs({
      args: rest,
      options: { node: { type: 'string' }, json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } },
      allowPositionals: true,
    });
    if (values.help) return (out(HELP['status']!), 0);
    if (positionals.length) {
      console.error(HELP['status']);
      return 2;
    }
    const config = temporalConfig();
    const client = await connectClient(config);
    try {
      return await runStatus(
        client,
        { node: values.node, json: !!values.json, namespace: config.namespace },
        out,
      );
    } finally {
      await client.connection.close();
    }
  }
  if (command === 'export') {
    const { values, positionals } = parseArgs({
      args: rest,
      options: {
        backup: { type: 'string' },
        disk: { type: 'string' },
        to: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
      allowPositionals: true,
    });
    if (values.help) return (out(HELP['export']!), 0);
    if (positionals.length !== 1 || !values.disk || !values.to) {
      console.error(HELP['export']);
      return 2;
    }
    const client = await connectClient(temporalConfig());
    try {
      return await runExport(
        client,
        { vm: positionals[0]!, backup: values.backup, disk: values.disk, to: values.to },
        out,
      );
    } finally {
      await client.connection.close();
    }
  }
  if (command === 'drill') {
    const { values, positionals } = parseArgs({
      args: rest,
      options: { backup: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
      allowPositionals: true,
    });
    if (values.help) return (out(HELP['drill']!), 0);
    if (positionals.length !== 1) {
      console.error(HELP['drill']);
      return 2;
    }
    const client = await connectClient(temporalConfig());
    try {
      return await runDrill(client, { vm: positionals[0]!, backup: values.backup }, out);
    } finally {
      await client.connection.close();
    }
  }
  if (command === 'verify') {
    const { values, positionals } = parseArgs({
      args: rest,
      options: {
        backup: { type: 'string' },
        all: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
      allowPositionals: true,
    });
    if (values.help) return (out(HELP['verify']!), 0);
    if (positionals.length !== 1 || (values.backup !== undefined && values.all)) {
      console.error(HELP['verify']);
      return 2;
    }
    const client = await connectClient(temporalConfig());
    try {
      return await runVerify(client, { vm: positionals[0]!, backup: values.backup, all: !!values.all }, out);
    } finally {
      await client.connection.close();
    }
  }
  if (command === 'restore') {
    const { values, positionals } = parseArgs({
      args: rest,
      options: {
        backup: { type: 'string' },
        as: { type: 'string' },
        'decision-timeout': { type: 'string' },
        'take-backup': { type: 'string' },
        'keep-live': { type: 'string' },
        'all-backup': { type: 'boolean' },
        'all-live': { type: 'boolean' },
        reason: { type: 'string' },
        wait: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
      allowPositionals: true,
    });
    if (values.help) return (out(HELP['restore']!), 0);
    const [first, second] = positionals;
    if (!first) {
      console.error(HELP['restore']);
      return 2;
    }
    const sub = ['decide', 'abort', 'status'].includes(first) && second ? first : undefined;
    const vm = sub ? second! : first;
    const timeout = values['decision-timeout'];
    if (timeout !== undefined && !(Number(timeout) > 0))
      throw new ConfigError('--decision-timeout must be a positive number of seconds');
    const client = await connectClient(temporalConfig());
    try {
      if (sub === 'decide') {
        return await decideRestore(
          client,
          {
            vm,
            wait: !!values.wait,
            takeBackup: values['take-backup'],
            keepLive: values['keep-live'],
            allBackup: values['all-backup'],
            allLive: values['all-live'],
          },
          out,
        );
      }
      if (sub === 'abort') return await abortRestore(client, { vm, reason: values.reason }, out);
      if (sub === 'status') return await showRestore(client, vm, out);
      if (values.as !== undefined)
        return await runRestoreAs(client, { vm, as: values.as, backup: values.backup }, out);
      return await startRestore(
        client,
        { vm, backup: values.backup, decisionTimeoutSeconds: timeout ? Number(timeout) : undefined },
        out,
      );
    } finally {
      await client.connection.close();
    }
  }
  console.error(`unknown command ${JSON.stringify(command)}\n\n${HELP['main']}`);
  return 2;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(`vmbackup: ${(err as Error)?.message ?? String(err)}`);
    // Exit 2 for input or configuration the user can fix; 1 for everything else.
    process.exit(err instanceof BackupError || err instanceof ConfigError ? 2 : 1);
  },
);
