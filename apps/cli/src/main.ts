import 'reflect-metadata';
import { Command } from 'commander';
import { buildFsckCommand } from './commands/fsck.command';
import { buildKeysCommand } from './commands/keys.command';
import { buildReplayCommand } from './commands/replay.command';
import { buildVerifyEntryCommand } from './commands/verify-entry.command';
import { buildVerifyLogCommand } from './commands/verify-log.command';
import { buildVerifyModelCommand } from './commands/verify-model.command';
import { buildVerifyReceiptCommand } from './commands/verify-receipt.command';

/** lethe-audit: the operator's and auditor's command line. */
export function buildProgram(): Command {
  return new Command('lethe-audit')
    .description('Lethe: check the ledger of what models learned and unlearned')
    .addCommand(buildFsckCommand())
    .addCommand(buildKeysCommand())
    .addCommand(buildVerifyLogCommand())
    .addCommand(buildVerifyReceiptCommand())
    .addCommand(buildVerifyEntryCommand())
    .addCommand(buildVerifyModelCommand())
    .addCommand(buildReplayCommand())
    .showHelpAfterError();
}

buildProgram()
  .parseAsync(process.argv)
  .catch((error: unknown) => {
    process.stderr.write(`lethe-audit: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(2);
  });
