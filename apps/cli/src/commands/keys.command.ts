import { Command, Option } from 'commander';
import { resolve } from 'node:path';
import { ROLES, Role } from '../../../api/src/auth/role';
import { isUuid } from '../../../api/src/common/uuid';
import { ApiKeyService } from '../../../api/src/keys/api-key.service';
import { connectToServiceDatabase } from '../database';

interface DatabaseOptions {
  databaseUrl?: string;
  dataDir?: string;
}

async function withService<T>(opts: DatabaseOptions, run: (service: ApiKeyService) => Promise<T>): Promise<T> {
  const db = await connectToServiceDatabase({
    databaseUrl: opts.databaseUrl ?? process.env.DATABASE_URL,
    dataDir: resolve(opts.dataDir ?? process.env.DATA_DIR ?? './data'),
  });
  try {
    const [{ present }] = await db.dataSource.query(`SELECT to_regclass('api_keys') IS NOT NULL AS present`);
    if (!present) throw new Error('the database has no api_keys table yet: start the service once (npm start) so that it migrates it');
    return await run(new ApiKeyService(db.dataSource));
  } finally {
    await db.close();
  }
}

/** `keys create|revoke`: API keys, straight in the service's database (for the first keys, or a lost admin key). */
export function buildKeysCommand(): Command {
  const keys = new Command('keys').description('create and revoke API keys in the service database');
  const withDatabase = (command: Command) =>
    command
      .option('--database-url <url>', 'PostgreSQL URL (default: $DATABASE_URL, else the embedded database in --data-dir)')
      .option('--data-dir <dir>', 'the service data directory (default: $DATA_DIR or ./data)');

  keys.addCommand(
    withDatabase(
      new Command('create')
        .description('create a key and print it (shown this once; only its SHA-256 is stored)')
        .addOption(new Option('--role <role>', 'the key role').choices(ROLES as unknown as string[]).makeOptionMandatory())
        .option('--name <name>', 'who or what uses the key')
        .option('--json', 'print {id, key, role, name} as JSON'),
    ).action(async (opts: DatabaseOptions & { role: Role; name?: string; json?: boolean }) => {
      if (opts.name !== undefined && (opts.name.length < 1 || opts.name.length > 200))
        throw new Error('--name must be 1 to 200 characters');
      const created = await withService(opts, (service) => service.create(opts.role, opts.name));
      if (opts.json) process.stdout.write(`${JSON.stringify(created)}\n`);
      else process.stdout.write(`created ${created.role} key ${created.id} (${created.name}); the key, shown this once:\n${created.key}\n`);
    }),
  );

  keys.addCommand(
    withDatabase(new Command('revoke').description('revoke a key by id; it stops working at once').argument('<id>', 'the key id')).action(
      async (id: string, opts: DatabaseOptions) => {
        if (!isUuid(id)) throw new Error('<id> must be a key id (a UUID)');
        await withService(opts, (service) => service.revoke(id));
        process.stdout.write(`revoked key ${id}\n`);
      },
    ),
  );
  return keys;
}
