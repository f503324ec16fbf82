// Chain faults: the service as `npm start` runs it (a child process, embedded PostgreSQL, RPC_URL through a
// fault-injecting JSON-RPC proxy in front of a local node: Hardhat's, and Foundry's anvil), anchoring every
// second while a client keeps uploading, goes through:
//   - the RPC down (connections refused) for --rpc-down-seconds;
//   - a reorg of depth 3 that removes a logged anchor (evm_snapshot before it, evm_revert and 3 new blocks after);
//   - a stuck nonce: the anchor transaction sits in the mempool (automine off) past ANCHOR_REPLACE_AFTER_SECONDS,
//     is replaced with the same nonce and higher fees, then mined;
//   - transactions dropped: the RPC accepts the anchor transaction and loses it;
//   - fees x100: the base fee jumps a hundredfold (hardhat_ / anvil_setNextBlockBaseFeePerGas);
//   - the chain restarted: the node stopped and started again on its port (anvil keeps its chain in a state
//     file; Hardhat's starts empty, and AuditAnchor is deployed again at its address: meanwhile health says
//     reconnecting, never error);
// and, apart, the service's own local Hardhat node killed under it. After each: the log kept appending
// (uploads acknowledged during the fault), /v1/health said what happened (the states it showed are listed),
// anchors land again, and once: every checkpoint on the chain in use has one ANCHORED entry, no ANCHORED
// entry is logged twice, and fsck is clean.
import { JsonRpcProvider, Wallet } from 'ethers';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { AnchorClient, HARDHAT_DEV_PRIVATE_KEYS, connectProvider, deployAuditAnchor, startHardhatNode } from '@lethe/chain';
import { findFreePort } from '@lethe/postgres';
import { defineFlags, type BenchOptions } from '../bench/lib/args';
import { LocalNode, startAnvilNode } from '../test/support/anvil-node';
import { FaultRpcProxy, startFaultRpcProxy } from '../test/support/capped-rpc-proxy';
import { LogEntry, downloadLog, findDuplicateEntries, fsckProblem } from './lib/log-checks';
import { Part, PartReport, progress, sleep } from './lib/part';
import { CLASSES, FEATURES, TrialService, makeDataDir, serviceEnv, startTrialService, stopTrialService } from './lib/service';

const flags = defineFlags({
  chains: { type: 'choice', choices: ['both', 'hardhat', 'anvil'], default: 'both', help: 'the JSON-RPC implementations to run the faults on' },
  rpcDownSeconds: { type: 'integer', min: 1, default: 60, help: 'how long the RPC is down' },
  stuckSeconds: { type: 'integer', min: 1, default: 30, help: 'how long an anchor transaction sits in the mempool, or is dropped' },
  faults: {
    type: 'choice',
    choices: ['all', 'quick'],
    default: 'all',
    help: "quick: only the RPC down and the reorg (CI's small size; test/anchoring/local-chain.e2e-spec.ts covers the service's own node killed)",
  },
});

export type ChainFaultOptions = BenchOptions<typeof flags>;
type Kind = 'hardhat' | 'anvil';

/** One fault's outcome: what health showed during it, how long until anchors caught up after it. */
interface FaultResult {
  fault: string;
  /** anchoring.state values health showed, in order, each once. */
  states: string[];
  /** Other things health said (lastError, a pending transaction), a few. */
  said: string[];
  uploadsDuring: number;
  recoverySeconds: number;
  failures: string[];
}

/** How many faults runOn injects on one implementation: all of them, or the quick ones (the RPC down, the reorg). */
const FULL_FAULTS = 6;
const QUICK_FAULTS = 2;

const ADMIN = HARDHAT_DEV_PRIVATE_KEYS[0];
const ANCHORER = HARDHAT_DEV_PRIVATE_KEYS[1];

/** A client that uploads a few samples every 300 ms and counts what is acknowledged (and any 5xx). */
class Writer {
  acknowledged = 0;
  readonly serverErrors: string[] = [];
  private running = true;
  private readonly done: Promise<void>;
  private n = 0;

  constructor(service: TrialService, datasetId: string) {
    this.done = (async () => {
      while (this.running) {
        const samples = Array.from({ length: 3 }, (_, i) => ({ externalId: `w${this.n}-${i}`, features: [this.n % 7, i, 1, 2], label: i % CLASSES }));
        this.n++;
        try {
          const answer = await service.ml.call('POST', `/v1/datasets/${datasetId}/samples`, samples);
          if (answer.status === 200) this.acknowledged++;
          else if (answer.status >= 500) this.serverErrors.push(`upload: ${answer.status} ${JSON.stringify(answer.body).slice(0, 200)}`);
        } catch (error) {
          this.serverErrors.push(`upload: no answer (${(error as Error).message})`);
        }
        await sleep(300);
      }
    })();
  }

  async stop(): Promise<void> {
    this.running = false;
    await this.done;
  }
}

/** Health, sampled every second while a fault lasts. */
class HealthWatch {
  readonly states: string[] = [];
  readonly said = new Set<string>();
  private readonly startedAt = new Date().toISOString();
  private running = true;
  private readonly done: Promise<void>;

  constructor(private readonly service: TrialService) {
    this.done = (async () => {
      while (this.running) {
        await this.sample();
        await sleep(1000);
      }
    })();
  }

  async sample(): Promise<any> {
    const health = (await this.service.anon.call('GET', '/v1/health').catch(() => undefined))?.body;
    const a = health?.anchoring;
    if (!a) return health;
    if (this.states.at(-1) !== a.state) this.states.push(a.state);
    if (a.lastError) this.said.add(`lastError: ${String(a.lastError).slice(0, 160)}`);
    if (a.pendingTxHash) this.said.add('pendingTxHash shown');
    if (a.pendingTransactions > 1) this.said.add(`replaced: ${a.pendingTransactions} transactions for the pending anchor`);
    if (a.lastReorg && a.lastReorg.detectedAt >= this.startedAt) this.said.add(`lastReorg: the anchor of tree size ${a.lastReorg.treeSize} removed`);
    return health;
  }

  async stop(): Promise<void> {
    this.running = false;
    await this.done;
  }
}

/** Waits until anchoring is ok with no pending anchor and the anchors cover every entry logged so far but anchor records; seconds taken. */
async function waitAnchored(service: TrialService, timeoutMs: number): Promise<number> {
  const t0 = performance.now();
  const { treeSize } = await service.anon.ok('GET', '/v1/ledger/checkpoint');
  for (const deadline = Date.now() + timeoutMs; Date.now() < deadline; await sleep(500)) {
    const a = (await service.anon.call('GET', '/v1/health')).body?.anchoring;
    if (a?.state === 'ok' && a.pendingTreeSize === undefined && a.anchoredTreeSize >= treeSize) return (performance.now() - t0) / 1000;
  }
  throw new Error(`anchors did not reach tree size ${treeSize} in ${timeoutMs / 1000} s: ${JSON.stringify((await service.anon.call('GET', '/v1/health')).body?.anchoring)}`);
}

/** Polls health's `anchoring` until `pick` returns a value (that value), or undefined after `timeoutMs`. */
async function waitHealth<T>(service: TrialService, timeoutMs: number, pick: (anchoring: any) => T | undefined): Promise<T | undefined> {
  for (const deadline = Date.now() + timeoutMs; Date.now() < deadline; await sleep(250)) {
    const a = (await service.anon.call('GET', '/v1/health')).body?.anchoring;
    const value = a ? pick(a) : undefined;
    if (value !== undefined) return value;
  }
  return undefined;
}

/** The chain in use: each checkpoint on the contract has one ANCHORED entry (size and root), and no ANCHORED fact is logged twice. */
async function checkAnchors(provider: JsonRpcProvider, contract: string, log: LogEntry[]): Promise<string[]> {
  const failures = findDuplicateEntries(log).filter((f) => f.startsWith('ANCHORED'));
  const client = await AnchorClient.connect(contract, provider);
  const count = await client.checkpointCount();
  const onChain = await Promise.all(Array.from({ length: count }, (_, n) => client.checkpoint(n)));
  const current: string[] = [];
  for (const e of log.filter((x) => x.event.type === 'ANCHORED' && x.event.contract === contract.toLowerCase())) {
    if (await provider.getTransaction(e.event.txHash)) current.push(`${e.event.treeSize}:${e.event.rootHash}`);
  }
  const anchored = onChain.map((c) => `${c.treeSize}:${c.rootHash}`);
  if (JSON.stringify(current) !== JSON.stringify(anchored))
    failures.push(`the chain's checkpoints ${JSON.stringify(anchored)} are not the ANCHORED entries of this chain ${JSON.stringify(current)}`);
  return failures;
}

const rpc = (provider: JsonRpcProvider, method: string, params: unknown[] = []) => provider.send(method, params);

/** Runs the faults on one JSON-RPC implementation. */
async function runOn(kind: Kind, options: ChainFaultOptions): Promise<{ results: FaultResult[]; failures: string[] }> {
  const dataDir = makeDataDir(`lethe-chain-${kind}-`);
  const stateFile = join(dataDir, 'anvil-state.json');
  const port = await findFreePort();
  const startNode = (): Promise<LocalNode> => (kind === 'anvil' ? startAnvilNode({ port, stateFile }) : startHardhatNode({ port }));
  let node = await startNode();
  let provider = await connectProvider(node.rpcUrl, { pollingIntervalMs: 100 });
  const deploy = async () => (await deployAuditAnchor(new Wallet(ADMIN, provider), new Wallet(ADMIN).address, new Wallet(ANCHORER).address, {})).address;
  const contract = await deploy();
  const proxy: FaultRpcProxy = await startFaultRpcProxy(node.rpcUrl);
  const env = await serviceEnv(dataDir, {
    RPC_URL: proxy.url,
    CONTRACT_ADDRESS: contract,
    ANCHORER_PRIVATE_KEY: ANCHORER,
    ANCHOR_EVERY_SECONDS: '1',
    ANCHOR_REPLACE_AFTER_SECONDS: '5',
    SERVICE_WORKER: 'off',
  });
  const results: FaultResult[] = [];
  const failures: string[] = [];
  let service: TrialService | undefined;
  try {
    service = await startTrialService(env);
    const datasetId = (await service.ml.ok('POST', '/v1/datasets', { name: 'chain-faults', features: FEATURES, classes: CLASSES })).id;
    const writer = new Writer(service, datasetId);
    const s = service;
    await waitAnchored(s, 120_000);

    /** Runs `fault` (which undoes itself before it returns) with health watched and uploads counted, then waits for the anchors. */
    const run = async (name: string, fault: (watch: HealthWatch) => Promise<string[]>, expect: (watch: HealthWatch) => string[]) => {
      progress(`chain faults on ${kind}: ${name}`);
      const watch = new HealthWatch(s);
      const before = writer.acknowledged;
      const { treeSize: sizeBefore } = await s.anon.ok('GET', '/v1/ledger/checkpoint');
      const result: FaultResult = { fault: name, states: watch.states, said: [], uploadsDuring: 0, recoverySeconds: Number.NaN, failures: [] };
      try {
        result.failures.push(...(await fault(watch)));
        result.uploadsDuring = writer.acknowledged - before;
        const { treeSize: sizeAfter } = await s.anon.ok('GET', '/v1/ledger/checkpoint');
        if (result.uploadsDuring === 0 || sizeAfter <= sizeBefore) result.failures.push(`the log did not keep appending (${result.uploadsDuring} uploads acknowledged, size ${sizeBefore} -> ${sizeAfter})`);
        result.recoverySeconds = await waitAnchored(s, 240_000);
      } catch (error) {
        result.failures.push(`stopped: ${(error as Error).message}`);
      } finally {
        await watch.stop();
        await watch.sample();
      }
      result.said = [...watch.said].slice(0, 4);
      result.failures.push(...expect(watch));
      results.push(result);
      progress(`  ${name}: health showed ${watch.states.join(' -> ')}; ${result.failures.length === 0 ? 'ok' : result.failures.join('; ')}`);
    };
    const showed = (watch: HealthWatch, state: string) => (watch.states.includes(state) ? [] : [`health never said ${state} (it said ${watch.states.join(', ')})`]);

    await run(
      `RPC down ${options.rpcDownSeconds} s`,
      async () => {
        await proxy.down();
        await sleep(options.rpcDownSeconds * 1000);
        await proxy.up();
        return [];
      },
      (w) => showed(w, 'chain-unavailable'),
    );

    await run(
      'reorg of depth 3 removing a logged anchor',
      async () => {
        // Blocks are mined by hand from here: the anchor the service sends next waits in the mempool.
        await rpc(provider, 'evm_setAutomine', [false]);
        try {
          const base = await provider.getBlockNumber();
          const baseHash = (await provider.getBlock(base))!.hash;
          const snapshot = await rpc(provider, 'evm_snapshot');
          const pendingSize = await waitHealth(s, 60_000, (a) => (a.pendingTxHash ? a.pendingTreeSize : undefined));
          if (pendingSize === undefined) return ['no anchor was sent to be reorged'];
          for (let i = 0; i < 3; i++) await rpc(provider, 'evm_mine');
          const oldTip = (await provider.getBlock(base + 3))!.hash;
          const anchorTxs = (await Promise.all([1, 2, 3].map((i) => provider.getBlock(base + i)))).flatMap((b) => b?.transactions ?? []);
          // The anchor is confirmed and logged (health's anchored size reaches it only once its ANCHORED entry is appended).
          if ((await waitHealth(s, 60_000, (a) => (a.anchoredTreeSize >= pendingSize ? true : undefined))) === undefined)
            return [`the anchor of tree size ${pendingSize} in block ${base + 1} was not logged`];
          // Three blocks replaced by three others, without the anchor: the chain is as long as before.
          if (!(await rpc(provider, 'evm_revert', [snapshot]))) return ['evm_revert failed'];
          const pool = ((await rpc(provider, 'eth_getBlockByNumber', ['pending', false])) as { transactions: string[] }).transactions;
          for (const hash of new Set([...anchorTxs, ...pool])) await rpc(provider, `${kind === 'anvil' ? 'anvil' : 'hardhat'}_dropTransaction`, [hash]);
          for (let i = 0; i < 3; i++) await rpc(provider, 'evm_mine');
          const out: string[] = [];
          if ((await provider.getBlock(base))!.hash !== baseHash) out.push(`block ${base} changed too: the reorg was deeper than 3`);
          const newTip = await provider.getBlock(base + 3);
          if (!newTip || newTip.hash === oldTip || (await provider.getBlockNumber()) !== base + 3) out.push(`the chain is not 3 other blocks on ${base}`);
          for (const hash of anchorTxs) if (await provider.getTransaction(hash)) out.push(`anchor transaction ${hash} is still on the chain`);
          return out;
        } finally {
          await rpc(provider, 'evm_setAutomine', [true]);
        }
      },
      (w) => ([...w.said].some((x) => x.startsWith('lastReorg')) ? [] : ['health never named the anchor the reorg removed (lastReorg)']),
    );

    if (options.faults === 'all') {
      // The faults that take minutes; CI's quick size leaves them to the full run.
      await run(
        `stuck nonce (${options.stuckSeconds} s in the mempool)`,
        async () => {
          await rpc(provider, 'evm_setAutomine', [false]);
          try {
            await sleep(options.stuckSeconds * 1000);
          } finally {
            await rpc(provider, 'evm_setAutomine', [true]);
            await rpc(provider, 'evm_mine');
          }
          return [];
        },
        // Replaced once (the node's fees do not move while it mines nothing), and no error meanwhile.
        (w) => [
          ...(w.said.has('pendingTxHash shown') ? [] : ['health never showed the pending anchor transaction']),
          ...(w.said.has('replaced: 2 transactions for the pending anchor') ? [] : [`health never showed the anchor replaced once (it said ${[...w.said].join('; ')})`]),
          ...[...w.said].filter((x) => /^replaced: ([3-9]|\d\d+) /.test(x)).map((x) => `the stuck anchor was replaced more than once: ${x}`),
          ...(w.states.includes('error') ? [`health said error while the anchor was stuck (it said ${w.states.join(', ')})`] : []),
        ],
      );

      await run(
        `anchor transactions dropped for ${Math.max(options.stuckSeconds, 35)} s`,
        async () => {
          proxy.faults.dropTransactions = true;
          await sleep(Math.max(options.stuckSeconds, 35) * 1000);
          proxy.faults.dropTransactions = false;
          return proxy.dropped.length === 0 ? ['no anchor transaction was sent while they were dropped'] : [];
        },
        (w) => (w.said.has('pendingTxHash shown') ? [] : ['health never showed the pending anchor transaction']),
      );

      let paid = '';
      await run(
        'fees x100',
        async () => {
          const base = (await provider.getBlock('latest'))!.baseFeePerGas!;
          const spiked = base * 100n;
          await rpc(provider, kind === 'anvil' ? 'anvil_setNextBlockBaseFeePerGas' : 'hardhat_setNextBlockBaseFeePerGas', [`0x${spiked.toString(16)}`]);
          await rpc(provider, 'evm_mine');
          const from = await provider.getBlockNumber();
          const { treeSize } = await s.anon.ok('GET', '/v1/ledger/checkpoint');
          for (const deadline = Date.now() + 120_000; ; await sleep(500)) {
            const a = (await s.anon.call('GET', '/v1/health')).body?.anchoring;
            if (a?.anchoredTreeSize >= treeSize) break;
            if (Date.now() > deadline) return [`no anchor landed in 120 s at ${spiked} wei base fee`];
          }
          for (let b = from + 1; b <= (await provider.getBlockNumber()); b++) {
            const block = await provider.getBlock(b, true);
            for (const tx of block?.prefetchedTransactions ?? []) {
              const receipt = await provider.getTransactionReceipt(tx.hash);
              if (receipt) paid = `an anchor paid ${(Number(receipt.gasPrice) / Number(base)).toFixed(0)}x the base fee before the spike`;
            }
          }
          return [];
        },
        () => [],
      );
      if (paid) results.at(-1)!.said.push(paid);

      await run(
        `${kind} restarted`,
        async () => {
          provider.destroy();
          await node.stop();
          await sleep(5000);
          node = await startNode();
          provider = await connectProvider(node.rpcUrl, { pollingIntervalMs: 100 });
          const out: string[] = [];
          if (kind === 'hardhat') {
            // A new, empty chain: AuditAnchor again, at the address the same deployer's first transaction gives.
            await sleep(5000);
            const again = await deploy();
            if (again.toLowerCase() !== contract.toLowerCase()) out.push(`AuditAnchor was deployed at ${again}, not ${contract}`);
          }
          return out;
        },
        // Down, then back without the contract until it is deployed again (Hardhat's): never an anchoring error.
        (w) => [...showed(w, 'chain-unavailable'), ...(w.states.includes('error') ? [`health said error (it said ${w.states.join(', ')})`] : [])],
      );
    }

    await writer.stop();
    failures.push(...writer.serverErrors.map((e) => `5xx during the faults: ${e}`));
    const log = await downloadLog(s.anon);
    failures.push(...(await checkAnchors(provider, contract, log)));
    const fsck = await fsckProblem(dataDir);
    if (fsck) failures.push(fsck);
  } catch (error) {
    failures.push(`the run on ${kind} stopped: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
  } finally {
    if (service) await stopTrialService(service.process);
    await proxy.close();
    provider.destroy();
    await node.stop();
  }
  failures.push(...results.flatMap((r) => r.failures.map((f) => `${r.fault}: ${f}`)));
  if (failures.length === 0) rmSync(dataDir, { recursive: true, force: true });
  else failures.push(`DATA_DIR kept: ${dataDir}; the service's last output:\n${service?.process.output().slice(-3000) ?? ''}`);
  return { results, failures: failures.map((f) => `${kind}: ${f}`) };
}

/** The service's own local Hardhat node (no RPC_URL) killed under it: health says so, and anchoring goes on on a new one. */
async function runOwnChainKilled(): Promise<{ result: FaultResult; failures: string[] }> {
  progress('chain faults: the service own local Hardhat node killed');
  const dataDir = makeDataDir('lethe-chain-own-');
  const env = await serviceEnv(dataDir, { CHAIN_PORT: String(await findFreePort()), ANCHOR_EVERY_SECONDS: '1', SERVICE_WORKER: 'off' });
  const result: FaultResult = { fault: "the service's own Hardhat node killed", states: [], said: [], uploadsDuring: 0, recoverySeconds: Number.NaN, failures: [] };
  let service: TrialService | undefined;
  try {
    service = await startTrialService(env);
    const datasetId = (await service.ml.ok('POST', '/v1/datasets', { name: 'own-chain', features: FEATURES, classes: CLASSES })).id;
    const writer = new Writer(service, datasetId);
    await waitAnchored(service, 120_000);
    const watch = new HealthWatch(service);
    const { pid } = JSON.parse(readFileSync(join(dataDir, 'hardhat-node.pid'), 'utf8')) as { pid: number };
    process.kill(-pid, 'SIGKILL');
    const before = writer.acknowledged;
    try {
      result.recoverySeconds = await waitAnchored(service, 120_000);
    } catch (error) {
      result.failures.push((error as Error).message);
    }
    result.uploadsDuring = writer.acknowledged - before;
    await watch.stop();
    await watch.sample();
    await writer.stop();
    result.states.push(...watch.states);
    result.said.push(...[...watch.said].slice(0, 3));
    if (!watch.states.includes('chain-unavailable')) result.failures.push(`health never said chain-unavailable (it said ${watch.states.join(', ')})`);
    if (result.uploadsDuring === 0) result.failures.push('the log did not keep appending');
    result.failures.push(...writer.serverErrors);
  } catch (error) {
    result.failures.push(`stopped: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
  } finally {
    if (service) await stopTrialService(service.process);
  }
  if (result.failures.length === 0) rmSync(dataDir, { recursive: true, force: true });
  progress(`  health showed ${result.states.join(' -> ')}; ${result.failures.length === 0 ? 'ok' : result.failures.join('; ')}`);
  return { result, failures: result.failures.map((f) => `${result.fault}: ${f}`) };
}

export async function runChainFaults(options: ChainFaultOptions): Promise<PartReport> {
  const kinds: Kind[] = options.chains === 'both' ? ['hardhat', 'anvil'] : [options.chains];
  const failures: string[] = [];
  const summary: string[] = [];
  const all: FaultResult[] = [];
  const line = (kind: string, r: FaultResult) =>
    `${kind.padEnd(8)} ${r.fault}: health ${r.states.join(' -> ') || '(no change)'}${r.said.length ? ` (${r.said.join('; ')})` : ''}; ` +
    `${r.uploadsDuring} uploads acknowledged meanwhile; anchors caught up ${r.recoverySeconds.toFixed(1)} s after; ${r.failures.length === 0 ? 'ok' : 'FAILED'}`;
  for (const kind of kinds) {
    const { results, failures: found } = await runOn(kind, options);
    failures.push(...found);
    summary.push(...results.map((r) => line(kind, r)));
    all.push(...results);
  }
  if (options.faults === 'all') {
    const own = await runOwnChainKilled();
    failures.push(...own.failures);
    summary.push(line('service', own.result));
    all.push(own.result);
  }
  const counts = {
    faultsInjected: all.length,
    faultsPassed: all.filter((r) => r.failures.length === 0).length,
    uploadsDuringFaults: all.reduce((n, r) => n + r.uploadsDuring, 0),
  };
  return { part: 'chain', failures, summary, counts };
}

export const part: Part<typeof flags> = {
  summary: 'RPC down, a reorg of depth 3, a stuck nonce, dropped transactions, fees x100, a restarted chain, on Hardhat and anvil',
  flags,
  run: runChainFaults,
  // Each fault of each implementation (and, in full, the service's own node killed) was injected; uploads went on during them.
  least: (o) => {
    const faults = o.faults === 'all' ? (o.chains === 'both' ? 2 : 1) * FULL_FAULTS + 1 : (o.chains === 'both' ? 2 : 1) * QUICK_FAULTS;
    return { faultsInjected: faults, uploadsDuringFaults: faults };
  },
};
