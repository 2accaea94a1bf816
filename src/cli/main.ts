import { runCli } from './program';

// The entry point of bin/vmbackup.mjs: the commands are defined in program.ts and commands/.
runCli(process.argv.slice(2)).then((code) => process.exit(code));
