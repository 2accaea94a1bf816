import { parseArgs } from 'node:util';
import { ConfigError, temporalConfig } from '../config';
import { BackupError } from '../domain/errors';
import { createControlWorker } from '../workers/control';
import { createNodeWorker } from '../workers/node';
import { runBackup } from './backup';
import { connectClient } from './client';

const HELP: Record<string, string> = {
  main: `vmbackup — backup of libvirt VMs orchestrated by Temporal

Usage:
  vmbackup worker control              run the control worker (workflows, directory)
  vmbackup worker node --node <name>   run the node worker of a hypervisor
  vmbackup backup <vm...> [--wait]     back up one or several VMs

Configuration comes from the environment (TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, LDAP_URL,
LDAP_BIND_DN, LDAP_BIND_PASSWORD, LDAP_BASE_DN, LIBVIRT_URI, VMBACKUP_IMAGES_ROOT,
VMBACKUP_STORAGE_ROOTS); \`set -a; . .dev/env; set +a\` gives the embedded defaults.
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
      await worker.run();
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
  console.error(`unknown command ${JSON.stringify(command)}\n\n${HELP['main']}`);
  return 2;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    if (err instanceof ConfigError || err instanceof BackupError || (err as Error)?.name === 'TypeError') {
      console.error(`vmbackup: ${(err as Error).message}`);
    } else {
      console.error(`vmbackup: ${(err as Error)?.message ?? String(err)}`);
    }
    process.exit(err instanceof BackupError || err instanceof ConfigError ? 2 : 1);
  },
);
