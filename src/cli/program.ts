import { Command, CommanderError } from 'commander';
import { ConfigError } from '../config';
import { BackupError } from '../domain/errors';
import { addAdminCommands } from './commands/admin';
import { addBackupCommands } from './commands/backup';
import { commandContext } from './commands/context';
import { addOpsCommands } from './commands/ops';
import { addRestoreCommands } from './commands/restore';
import { processIo, type Io } from './io';

const ENVIRONMENT = `
Configuration comes from the environment (TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, LDAP_URL,
LDAP_STARTTLS, LDAP_CA_FILE, LDAP_BIND_DN, LDAP_BIND_PASSWORD, LDAP_BASE_DN, LIBVIRT_URI,
VMBACKUP_IMAGES_ROOT, VMBACKUP_STORAGE_ROOTS, VMBACKUP_CODEC_KEYS_FILE); \`set -a; . .dev/env; set +a\` gives the
embedded defaults.
Run \`vmbackup <command> --help\` for details.
Exit codes: 0 done, 1 failed (or needs attention), 2 bad input or configuration (nothing done).`;

/**
 * The `vmbackup` command line: every command with its options and help, parsed by
 * commander. A command's action reports its exit code through `exit`.
 */
export function buildProgram(io: Io, exit: (code: number) => void): Command {
  const program = new Command('vmbackup')
    .description('vmbackup — backup of libvirt VMs orchestrated by Temporal')
    .enablePositionalOptions()
    .exitOverride()
    .configureOutput({
      writeOut: (s) => io.out(s.replace(/\n$/, '')),
      writeErr: (s) => io.err(s.replace(/\n$/, '')),
    })
    .showHelpAfterError('(add --help for usage)')
    .addHelpText('after', ENVIRONMENT);
  const ctx = commandContext(io, exit);
  addAdminCommands(program, ctx);
  addBackupCommands(program, ctx);
  addRestoreCommands(program, ctx);
  addOpsCommands(program, ctx);
  return program;
}

/**
 * Runs the command line and returns the exit code: the command's own; 0 for help; 2 for
 * input or configuration the user can fix (unknown command or option, missing argument,
 * invalid name, bad configuration), with nothing done; 1 for anything else.
 */
export async function runCli(argv: readonly string[], io: Io = processIo): Promise<number> {
  let code = 0;
  const program = buildProgram(io, (c) => (code = c));
  try {
    await program.parseAsync([...argv], { from: 'user' });
    return code;
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode === 0 ? 0 : 2;
    io.err(`vmbackup: ${(err as Error)?.message ?? String(err)}`);
    return err instanceof BackupError || err instanceof ConfigError ? 2 : 1;
  }
}
