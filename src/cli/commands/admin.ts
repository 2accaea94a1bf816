import type { Command } from 'commander';
import { createControlWorker } from '../../workers/control';
import { createNodeWorker } from '../../workers/node';
import { CODEC_SERVER_DESCRIPTION, runCodecServer, type CodecServerOptions } from '../codec-server';
import { runScheduleSync, startPeriodicSync } from '../schedules';
import { jsonOption, prose, type CommandContext } from './context';

/** The long-running and setup commands: workers, schedule sync, codec server. */
export function addAdminCommands(program: Command, ctx: CommandContext): void {
  const out = (line: string) => ctx.io.out(line);
  const worker = program
    .command('worker')
    .summary('run the control worker or the node worker of a hypervisor')
    .description('Runs a Temporal worker. Both stop gracefully on SIGINT/SIGTERM.');
  worker
    .command('control')
    .summary('workflows and directory activities (queue vmbackup-control)')
    .description('Runs workflows and directory activities on the control queue (vmbackup-control).')
    .action(async () => {
      const w = await createControlWorker();
      out('control worker running on queue vmbackup-control');
      const stopSync = await startPeriodicSync(out);
      try {
        await w.run();
      } finally {
        stopSync();
      }
      ctx.exit(0);
    });
  worker
    .command('node')
    .summary('the hypervisor steps of one node (queue node-<name>)')
    .description('Runs snapshot, merge and retain for VMs whose sstNode is <name> (queue node-<name>).')
    .requiredOption('--node <name>', "the hypervisor's name (sstNode)")
    .action(async (o: { node: string }) => {
      const w = await createNodeWorker(o.node);
      out(`node worker for ${o.node} running on queue node-${o.node}`);
      await w.run();
      ctx.exit(0);
    });

  program
    .command('schedules')
    .summary('make Temporal schedules match the backup plans')
    .description('Keeps the Temporal schedules in line with the directory.')
    .command('sync')
    .summary('create, update, pause or delete schedules to match the plans')
    .description(
      prose(`Reads every backup plan with cron fields (global, pool, VM) from the directory and
creates, updates, pauses or deletes the Temporal schedules vmbackup-plan-* to match.
Cron fields are local time in VMBACKUP_TIMEZONE (IANA, default UTC). Prints what it
changed, or "no changes". --dry-run only prints what it would change.`),
    )
    .option('--dry-run', 'only print what it would change')
    .addOption(jsonOption())
    .action(async (o: { dryRun?: boolean; json?: boolean }) => {
      ctx.exit(await runScheduleSync({ dryRun: !!o.dryRun, json: o.json }, ctx.io));
    });

  program
    .command('codec-server')
    .summary('decrypt payloads for the Temporal UI and CLI')
    .description(prose(CODEC_SERVER_DESCRIPTION))
    .option('--port <n>', 'TCP port (default 8081; 0 picks a free one)')
    .option('--address <a>', 'address to listen on (default 127.0.0.1)')
    .option('--origin <url>', "the only browser origin allowed by CORS (default TEMPORAL_UI_URL's origin)")
    .action(async (o: CodecServerOptions) => {
      ctx.exit(await runCodecServer(o, out));
    });
}
