import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { Client } from 'pg';

/** The superuser of every embedded cluster. */
export const SUPERUSER = 'lethe';
/** The password clusters were made with before each had its own: changed at their first start since. */
export const LEGACY_PASSWORD = 'lethe';

/** Where a cluster's superuser password is kept: beside the cluster's folder, mode 600, readable by this user only. */
export function passwordFileOf(clusterDir: string): string {
  return `${clusterDir}.password`;
}

/** A fresh random password (256 bits, hex: nothing to escape in a URL), written to `file` with mode 600. */
export function createPassword(file: string): string {
  const password = randomBytes(32).toString('hex');
  const temporary = `${file}.${process.pid}.tmp`;
  writeFileSync(temporary, `${password}\n`, { mode: 0o600, flag: 'w' });
  renameSync(temporary, file);
  return password;
}

/** The password kept in `file`, or undefined when there is none (a cluster made before passwords were kept). */
export function readPassword(file: string): string | undefined {
  if (!existsSync(file)) return undefined;
  const password = readFileSync(file, 'utf8').trim();
  if (!/^[0-9a-f]{64}$/.test(password)) throw new Error(`${file} does not hold a password this launcher wrote: delete it only if the cluster beside it still has the old fixed one`);
  return password;
}

/**
 * Makes sure the superuser logs in with `password` on the server at 127.0.0.1:`port`: a cluster made
 * with the old fixed password (LEGACY_PASSWORD) gets `password` instead, once. Throws when neither works.
 */
export async function ensureSuperuserPassword(port: number, password: string, log: (line: string) => void, where: string): Promise<void> {
  const connect = async (candidate: string): Promise<Client | undefined> => {
    const client = new Client({ host: '127.0.0.1', port, user: SUPERUSER, password: candidate, database: 'postgres' });
    try {
      await client.connect();
      return client;
    } catch (error) {
      await client.end().catch(() => undefined);
      if ((error as { code?: string }).code === '28P01') return undefined; // wrong password
      throw error;
    }
  };
  const current = await connect(password);
  if (current) {
    await current.end();
    return;
  }
  const legacy = await connect(LEGACY_PASSWORD);
  if (!legacy) throw new Error(`the superuser of the embedded PostgreSQL in ${where} accepts neither the password kept beside it nor the old fixed one`);
  try {
    await legacy.query(`ALTER ROLE ${SUPERUSER} PASSWORD ${legacy.escapeLiteral(password)}`);
  } finally {
    await legacy.end();
  }
  log(`the superuser of the embedded PostgreSQL in ${where} had the old fixed password: it now has the random one kept beside it`);
}
