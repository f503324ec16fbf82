// Finding 4 of issue 15: /v1/health is public and shows the anchoring engine's last error, and ethers puts
// the request URL (which for a hosted RPC holds its API key) and the server's answer in its error messages.
// A JSON-RPC endpoint at a secret path and query fails in every way it can; nothing the service shows or
// logs, and nothing the auditor's tools print, may hold the secrets.
import { INestApplication, Logger, LoggerService } from '@nestjs/common';
import type { AddressInfo } from 'node:net';
import { inspect } from 'node:util';
import { JsonRpcProvider, Network } from 'ethers';
import { DataSource } from 'typeorm';
import { HARDHAT_DEV_PRIVATE_KEYS } from '@lethe/chain';
import { Ledger, openDatabase } from '@lethe/ledger';
import { verifyLog } from '@lethe/verifier';
import { AnchoringLoop } from '../../apps/api/src/anchoring/anchoring-loop';
import { remoteChainConnector } from '../../apps/api/src/anchoring/chain-connection';
import { createApp } from '../../apps/api/src/app';
import { loadConfig } from '../../apps/api/src/config/config';
import { API_ENTITIES, API_MIGRATIONS } from '../../apps/api/src/database/schema';
import { ChainFixture, startChainFixture } from '../contracts/support/chain-fixture';
import { TestDatabase, createTestDatabase } from '../support/database';
import { buildEvents } from '../support/factories';
import { RpcFault, SecretRpcServer, startSecretRpcServer } from '../support/secret-rpc-server';
import { runCli } from '../verifier/support/run-cli';
import { sharedTestKeyStore } from '../support/key-store';

/** Every fault, first with eth_chainId still answered (the client is connected, its calls fail), then on every call. */
const FAULTS: { fault: RpcFault; exceptChainId: boolean }[] = (['http-500', 'malformed-json', 'rpc-error', 'hang-up'] as RpcFault[])
  .flatMap((fault) => [
    { fault, exceptChainId: true },
    { fault, exceptChainId: false },
  ])
  .concat([{ fault: 'refused', exceptChainId: false }]);

/** Everything written through Nest's Logger, with any object argument (an error and its cause) printed in full. */
class CapturingLogger implements LoggerService {
  readonly lines: string[] = [];
  private capture(level: string, args: unknown[]): void {
    this.lines.push(`${level} ${args.map((a) => (typeof a === 'string' ? a : inspect(a, { depth: 10 }))).join(' ')}`);
  }
  log(...args: unknown[]) {
    this.capture('log', args);
  }
  error(...args: unknown[]) {
    this.capture('error', args);
  }
  warn(...args: unknown[]) {
    this.capture('warn', args);
  }
  debug(...args: unknown[]) {
    this.capture('debug', args);
  }
  verbose(...args: unknown[]) {
    this.capture('verbose', args);
  }
}

describe('an RPC URL that holds an API key never shows in /v1/health, the service log or the audit tools', () => {
  let chain: ChainFixture;
  let rpc: SecretRpcServer;
  let db: TestDatabase;
  let dataSource: DataSource;
  let ledger: Ledger;
  let loop: AnchoringLoop;
  let app: INestApplication;
  let api: string;
  const logger = new CapturingLogger();
  const consoleLines: string[] = [];
  /** Every /v1/health body read while the faults were on, as sent. */
  const healthBodies: string[] = [];

  beforeAll(async () => {
    chain = await startChainFixture();
    rpc = await startSecretRpcServer(chain.node.rpcUrl);
    for (const method of ['log', 'warn', 'error', 'info', 'debug'] as const) {
      jest.spyOn(console, method).mockImplementation((...args: unknown[]) => void consoleLines.push(args.map((a) => inspect(a, { depth: 10 })).join(' ')));
    }
    Logger.overrideLogger(logger);
    db = await createTestDatabase('redaction');
    dataSource = await openDatabase({ url: db.url, entities: API_ENTITIES, migrations: API_MIGRATIONS });
    ledger = new Ledger(dataSource);
    const env = { ANCHORER_PRIVATE_KEY: HARDHAT_DEV_PRIVATE_KEYS[1] };
    const config = loadConfig({ DATABASE_URL: db.url, RPC_URL: rpc.url, CONTRACT_ADDRESS: chain.client.address, ANCHOR_EVERY_ENTRIES: '1', ...env });
    loop = new AnchoringLoop(dataSource, ledger, remoteChainConnector(config.chain, env), {
      everyEntries: 1,
      everySeconds: 3600,
      confirmations: 1,
      replaceAfterSeconds: 3600,
      pollMs: 20,
    });
    app = await createApp({ keyStore: await sharedTestKeyStore(), config, dataSource, ledger, anchoringLoop: loop, healthReporters: [loop], logger });
    await app.listen(0, '127.0.0.1');
    api = `http://127.0.0.1:${(app.getHttpServer().address() as AddressInfo).port}`;
    await ledger.append(buildEvents(0, 3));
    loop.start();
  });

  afterAll(async () => {
    await loop?.stop();
    await app?.close();
    await dataSource?.destroy();
    await db?.drop();
    await rpc?.close();
    await chain?.stop();
    jest.restoreAllMocks();
  });

  async function health(): Promise<{ status: string; anchoring: { state: string; lastError?: string } }> {
    const text = await (await fetch(`${api}/v1/health`)).text();
    healthBodies.push(text);
    return JSON.parse(text);
  }

  async function waitForHealth(what: string, ok: (anchoring: { state: string; lastError?: string }) => boolean): Promise<{ state: string; lastError?: string }> {
    const deadline = Date.now() + 60_000; // a deadline for a loaded machine, not a timing claim
    for (;;) {
      const { anchoring } = await health();
      if (ok(anchoring)) return anchoring;
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; anchoring: ${JSON.stringify(anchoring)}`);
      await new Promise((r) => setTimeout(r, 25));
    }
  }

  function expectNoSecret(text: string, where: string): void {
    for (const secret of rpc.secrets) {
      if (text.includes(secret)) throw new Error(`${where} holds ${secret}:\n${text}`);
    }
  }

  it('the raw ethers errors of this endpoint do hold the secrets (the positive control)', async () => {
    const network = Network.from(31337n);
    for (const fault of ['http-500', 'rpc-error'] as RpcFault[]) {
      await rpc.setFault(fault);
      const provider = new JsonRpcProvider(rpc.url, network, { staticNetwork: network });
      const error = await provider.getBlockNumber().then(
        () => undefined,
        (e: unknown) => e as Error,
      );
      provider.destroy();
      expect(error?.message).toContain('SECRETKEY');
      expect(error?.message).toContain('SECRET2');
    }
    await rpc.setFault(null);
  });

  it('shows every failure in /v1/health and the log, never the secrets', async () => {
    await waitForHealth('the first anchor', (a) => a.state === 'ok');
    const errors: string[] = [];
    let size = 3;
    for (const { fault, exceptChainId } of FAULTS) {
      await waitForHealth('the chain to answer again', (a) => a.state === 'ok');
      let before: string | undefined;
      if (!exceptChainId && fault !== 'refused') {
        // Cut the connection first, so that the engine connects anew into the fault (eth_chainId included).
        await rpc.setFault('refused');
        before = (await waitForHealth('refused', (a) => a.lastError !== undefined)).lastError;
      }
      await ledger.append(buildEvents(size++, 1)); // something to anchor
      await rpc.setFault(fault, { exceptChainId });
      // 'refused' is its own cut: its first error may come from the live connection, the next ones from
      // connecting anew (eth_chainId), which is the one to wait for. (Waiting for an error other than one
      // seen after a first cut, as for the other faults, waited forever whenever that first look came late
      // enough to see the eth_chainId error already: a race with the health polls on a loaded machine.)
      const shows = (lastError: string) => (fault === 'refused' ? lastError.includes('eth_chainId') : lastError !== before);
      const failed = await waitForHealth(`${fault} to show`, (a) => a.lastError !== undefined && shows(a.lastError));
      errors.push(`${fault}${exceptChainId ? ' (eth_chainId answered)' : ''}: ${failed.state}: ${failed.lastError}`);
      await rpc.setFault(null);
    }
    await waitForHealth('the chain to answer again', (a) => a.state === 'ok');
    // Each fault was seen and said something (the report lists them when a secret shows).
    expect(errors).toHaveLength(FAULTS.length);
    expect(logger.lines.some((l) => /chain unavailable|anchoring failed/.test(l))).toBe(true);
    expectNoSecret(errors.join('\n'), 'a lastError');
    expectNoSecret(healthBodies.join('\n'), '/v1/health');
    expectNoSecret(logger.lines.join('\n'), 'the service log');
    expectNoSecret(consoleLines.join('\n'), 'the console');
    // The faults were shown as what they are (the host and port stay, to tell which endpoint failed).
    expect(errors.join('\n')).toContain('127.0.0.1');
  }, 400_000); // many waits in a row, each up to 60 s on a loaded machine

  it("keeps the secrets out of the verifier's reports and lethe-audit's output", async () => {
    for (const fault of ['http-500', 'malformed-json', 'rpc-error', 'hang-up', 'refused'] as RpcFault[]) {
      await rpc.setFault(fault);
      const report = await verifyLog({ apiUrl: api, rpcUrl: rpc.url, timeoutMs: 20_000 });
      expect(report.ok).toBe(false);
      expect(report.failures.map((f) => f.code)).toContain('CHAIN_ERROR');
      expectNoSecret(inspect(report, { depth: 10 }), `verifyLog's report (${fault})`);
    }
    for (const fault of ['http-500', 'rpc-error'] as RpcFault[]) {
      await rpc.setFault(fault, { exceptChainId: true });
      const report = await verifyLog({ apiUrl: api, rpcUrl: rpc.url, timeoutMs: 20_000 });
      expect(report.failures.map((f) => f.code)).toContain('CHAIN_ERROR');
      expectNoSecret(inspect(report, { depth: 10 }), `verifyLog's report (${fault}, eth_chainId answered)`);
      for (const json of [[], ['--json']]) {
        const cli = await runCli(['verify-log', '--api', api, '--rpc', rpc.url, '--timeout', '20000', ...json]);
        expect(cli.code).toBe(1);
        expect(cli.stdout + cli.stderr).toMatch(/CHAIN_ERROR|does not answer|failed/);
        expectNoSecret(cli.stdout + cli.stderr, `lethe-audit verify-log ${json.join(' ')} (${fault})`);
      }
    }
    await rpc.setFault(null);
  }, 400_000); // many waits in a row, each up to 60 s on a loaded machine
});
