import { ContractFactory } from 'ethers';
import { loadContractArtifact } from '@lethe/chain';
import { canonicalizeEvent, hashEvent } from '@lethe/events';
import { findFreePort } from '@lethe/postgres';
import { fromHex, toHex } from '@lethe/merkle';
import { VerificationFailure, VerifierError, verifyInclusionAgainstChain, verifyLog, type VerifyLogReport } from '@lethe/verifier';
import { ChainFixture, startChainFixture } from '../contracts/support/chain-fixture';
import { TestDatabase } from '../support/database';
import { buildEvent, hexOf } from '../support/factories';
import { startAlteringProxy, startForkingProxy } from './support/altering-proxy';
import { runCli } from './support/run-cli';
import { HONEST, buildAnchoredLog, recomputeHead, tamper, useTamperedCopies } from './support/anchored-log';

/** code@index/anchor of each failure, for assertions that say which check caught what. */
function where(report: VerifyLogReport): string[] {
  return report.failures.map(
    (f: VerificationFailure) => `${f.code}${f.index !== undefined ? `@${f.index}` : ''}${f.anchor !== undefined ? `#${f.anchor}` : ''}`,
  );
}

describe('verifyLog against the real service and a Hardhat chain', () => {
  let chain: ChainFixture;
  let template: TestDatabase;

  beforeAll(async () => {
    chain = await startChainFixture();
    template = await buildAnchoredLog(chain);
  });

  const copies = useTamperedCopies(() => template);
  const { serve } = copies;

  afterAll(async () => {
    await template?.drop();
    await chain?.stop();
  });

  const verify = (apiUrl: string, extra: { contract?: string; rpcUrl?: string; timeoutMs?: number } = {}) =>
    verifyLog({ apiUrl, rpcUrl: chain.node.rpcUrl, timeoutMs: 10_000, ...extra });

  it('verifies an honest log: every entry, both anchors, both ANCHORED entries, the latest consistency proof', async () => {
    const { url } = await serve();
    const progress: [number, number][] = [];
    const report = await verifyLog({ apiUrl: url, rpcUrl: chain.node.rpcUrl, onProgress: (a, b) => progress.push([a, b]) });
    expect(report.failures).toEqual([]);
    const checkpoint = (await (await fetch(`${url}/v1/ledger/checkpoint`)).json()) as { rootHash: string };
    expect(report).toMatchObject({
      ok: true,
      chainId: '31337',
      contract: chain.client.address.toLowerCase(),
      contractSource: 'log',
      treeSize: HONEST.treeSize,
      entries: HONEST.treeSize,
      rootHash: checkpoint.rootHash,
      anchors: {
        onChain: 2,
        checked: 2,
        latestConsistent: true,
        logged: 2,
        loggedChecked: 2,
        loggedElsewhere: 0,
        latest: { number: 1, treeSize: 14 },
      },
    });
    expect(progress.at(-1)).toEqual([HONEST.treeSize, HONEST.treeSize]);
    // The same with the contract given.
    expect(await verify(url, { contract: chain.client.address })).toMatchObject({ ok: true, contractSource: 'option' });
  });

  it('proves one entry against the on-chain root (latest anchor, or a given anchored size)', async () => {
    const { url } = await serve();
    const latest = await verifyInclusionAgainstChain({ apiUrl: url, rpcUrl: chain.node.rpcUrl, index: 3 });
    expect(latest).toMatchObject({ index: 3, treeSize: 14, anchor: 1, leafHash: toHex(hashEvent(buildEvent(3))), event: buildEvent(3) });
    expect(latest.rootHash).toBe((await chain.client.checkpoint(1)).rootHash);
    const first = await verifyInclusionAgainstChain({
      apiUrl: url,
      rpcUrl: chain.node.rpcUrl,
      index: 6,
      treeSize: 7,
      contract: chain.client.address,
    });
    expect(first).toMatchObject({ anchor: 0, treeSize: 7 });
    await expect(verifyInclusionAgainstChain({ apiUrl: url, rpcUrl: chain.node.rpcUrl, index: 16 })).rejects.toMatchObject({
      code: 'NOT_ANCHORED',
    });
    await expect(verifyInclusionAgainstChain({ apiUrl: url, rpcUrl: chain.node.rpcUrl, index: 2, treeSize: 9 })).rejects.toMatchObject({
      code: 'NOT_ANCHORED',
    });
  });

  it('an entry edited in place (event rewritten, stored leaf hash kept): BAD_ENTRY at that index', async () => {
    const forged = canonicalizeEvent({ ...buildEvent(3), reason: 'changed' } as never);
    const { url } = await serve([`UPDATE ledger_entries SET event = $1 WHERE idx = 3`, [forged]]);
    const report = await verify(url);
    expect(report.ok).toBe(false);
    expect(where(report)).toContain('BAD_ENTRY@3');
    expect(report.failures.find((f) => f.code === 'BAD_ENTRY')!.message).toMatch(
      /entry 3: the event hashes to [0-9a-f]{64}, the server says/,
    );
  });

  it('an entry edited with its leaf hash recomputed: the chain catches it (INCONSISTENT_WITH_CHAIN, both anchors)', async () => {
    const event = { ...buildEvent(3), datasetId: 'ds-forged' } as never;
    const { url } = await serve([
      `UPDATE ledger_entries SET event = $1, leaf_hash = $2 WHERE idx = 3`,
      [canonicalizeEvent(event), Buffer.from(hashEvent(event))],
    ]);
    const report = await verify(url);
    expect(where(report)).toEqual(expect.arrayContaining(['INCONSISTENT_WITH_CHAIN#0', 'INCONSISTENT_WITH_CHAIN#1', 'ROOT_MISMATCH']));
    expect(where(report).filter((w) => w.startsWith('BAD_ENTRY'))).toEqual([]);
  });

  it('a deleted entry: BAD_ENTRY naming the missing index', async () => {
    const { url } = await serve([`DELETE FROM ledger_entries WHERE idx = 5`]);
    const report = await verify(url);
    expect(where(report)).toContain('BAD_ENTRY@5');
    expect(report.failures.find((f) => f.index === 5)!.message).toMatch(/entry 5 is missing: .* sent entry 6 in its place/);
    expect(report.rootHash).toBeNull();
  });

  it('two entries swapped: INCONSISTENT_WITH_CHAIN from the first anchor on, no BAD_ENTRY', async () => {
    const { url } = await serve(
      [`UPDATE ledger_entries SET idx = 1000 WHERE idx = 2`],
      [`UPDATE ledger_entries SET idx = 2 WHERE idx = 3`],
      [`UPDATE ledger_entries SET idx = 3 WHERE idx = 1000`],
    );
    const report = await verify(url);
    expect(where(report)).toEqual(expect.arrayContaining(['INCONSISTENT_WITH_CHAIN#0', 'INCONSISTENT_WITH_CHAIN#1', 'ROOT_MISMATCH']));
    expect(where(report).filter((w) => w.startsWith('BAD_ENTRY'))).toEqual([]);
  });

  it('an entry inserted, with the head rewritten to the new root by a careful forger: INCONSISTENT_WITH_CHAIN', async () => {
    const inserted = buildEvent(500);
    const { url, db } = await serve(
      [`UPDATE ledger_entries SET idx = idx + 1000 WHERE idx >= 4`],
      [`UPDATE ledger_entries SET idx = idx - 999 WHERE idx >= 1000`],
      [
        `INSERT INTO ledger_entries (idx, leaf_hash, type, event) VALUES (4, $1, $2, $3)`,
        [Buffer.from(hashEvent(inserted)), inserted.type, canonicalizeEvent(inserted)],
      ],
      [`UPDATE anchors SET ledger_index = ledger_index + 1 WHERE ledger_index >= 4`],
    );
    // The forger recomputes the head from the new sequence, so the service agrees with itself.
    await recomputeHead(db);
    const report = await verify(url);
    expect(report.treeSize).toBe(HONEST.treeSize + 1);
    expect(where(report)).toEqual(expect.arrayContaining(['INCONSISTENT_WITH_CHAIN#0', 'INCONSISTENT_WITH_CHAIN#1']));
    expect(where(report)).not.toContain('ROOT_MISMATCH');
  });

  it('an entry inserted, anchor records left as they were: BAD_ENTRY where the latest ANCHORED entry was, and the chain still checked', async () => {
    const inserted = buildEvent(500);
    const { url } = await serve(
      [`UPDATE ledger_entries SET idx = idx + 1000 WHERE idx >= 4`],
      [`UPDATE ledger_entries SET idx = idx - 999 WHERE idx >= 1000`],
      [
        `INSERT INTO ledger_entries (idx, leaf_hash, type, event) VALUES (4, $1, $2, $3)`,
        [Buffer.from(hashEvent(inserted)), inserted.type, canonicalizeEvent(inserted)],
      ],
    );
    const report = await verify(url);
    expect(where(report)).toEqual(expect.arrayContaining(['BAD_ENTRY@14', 'INCONSISTENT_WITH_CHAIN#0', 'INCONSISTENT_WITH_CHAIN#1']));
    expect(report.contract).toBe(chain.client.address.toLowerCase());
  });

  it("the head's root rewritten: ROOT_MISMATCH, and the latest anchor's consistency proof fails", async () => {
    const { url } = await serve([`UPDATE ledger_head SET root_hash = $1`, [Buffer.from(fromHex(hexOf('forged root')))]]);
    const report = await verify(url);
    expect(where(report)).toEqual(expect.arrayContaining(['ROOT_MISMATCH', 'INCONSISTENT_WITH_CHAIN#1']));
    expect(report.anchors.latestConsistent).toBe(false);
  });

  it('a stored interior node rewritten: the consistency proof from the latest anchor fails; inclusion proofs through it too', async () => {
    // Node [0, 8) is in the consistency proof from 14 and in the inclusion proof of entry 9.
    const { url } = await serve([
      `UPDATE ledger_nodes SET hash = $1 WHERE level = 3 AND idx = 0`,
      [Buffer.from(fromHex(hexOf('forged node')))],
    ]);
    const report = await verify(url);
    expect(where(report)).toEqual(['INCONSISTENT_WITH_CHAIN#1']);
    const error = await verifyInclusionAgainstChain({ apiUrl: url, rpcUrl: chain.node.rpcUrl, index: 9 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(VerifierError);
    expect(error).toMatchObject({ code: 'BAD_PROOF', index: 9, anchor: 1 });
  });

  it('an ANCHORED entry rewritten to another transaction, leaf hash and head recomputed: NOT_ANCHORED at its index', async () => {
    const { url, db } = await serve();
    const original = JSON.parse((await (await fetch(`${url}/v1/ledger/entries?start=14&limit=1`)).json())[0].event);
    const forged = { ...original, txHash: `0x${hexOf('no such tx')}`, blockNumber: original.blockNumber + 5 };
    await tamper(db, [
      `UPDATE ledger_entries SET event = $1, leaf_hash = $2 WHERE idx = 14`,
      [canonicalizeEvent(forged), Buffer.from(hashEvent(forged))],
    ]);
    const report = await verify(url);
    expect(where(report)).toContain('NOT_ANCHORED@14#1');
    expect(report.failures.find((f) => f.code === 'NOT_ANCHORED')!.message).toMatch(/the transaction is not on chain 31337/);
  });

  it('a service that answers a forked history (entry 1 replaced, its checkpoint recomputed): INCONSISTENT_WITH_CHAIN', async () => {
    const { url } = await serve();
    const forkedEvent = buildEvent(1001);
    const forkedEntry = { index: 1, leafHash: toHex(hashEvent(forkedEvent)), event: canonicalizeEvent(forkedEvent) };
    const proxy = await startForkingProxy(url, forkedEntry);
    copies.track(proxy);
    const report = await verify(proxy.url);
    expect(where(report)).toEqual(expect.arrayContaining(['INCONSISTENT_WITH_CHAIN#0', 'INCONSISTENT_WITH_CHAIN#1']));
    expect(where(report).filter((w) => /^(BAD_ENTRY|ROOT_MISMATCH)/.test(w))).toEqual([]);
    expect(report.anchors.latestConsistent).toBe(false);
  });

  it('a contract address that is not AuditAnchor (an account, another contract): NOT_AUDIT_ANCHOR', async () => {
    const { url } = await serve();
    const account = await verify(url, { contract: chain.stranger.address });
    expect(where(account)).toEqual(['NOT_AUDIT_ANCHOR']);
    expect(account.failures[0].message).toMatch(/no contract at 0x[0-9a-f]{40} on chain 31337/);
    const artifact = await loadContractArtifact('contracts/bench/EventOnly.sol', 'EventOnly');
    const other = await new ContractFactory(artifact.abi, artifact.bytecode, chain.admin).deploy();
    await other.waitForDeployment();
    const report = await verify(url, { contract: await other.getAddress() });
    expect(where(report)).toEqual(['NOT_AUDIT_ANCHOR']);
    expect(report.failures[0].message).toMatch(/does not answer as AuditAnchor/);
  });

  it.each([
    ['the checkpoint is HTML', '/v1/ledger/checkpoint', '<html>maintenance</html>', /not JSON/],
    ['the checkpoint has a short root', '/v1/ledger/checkpoint', JSON.stringify({ treeSize: 18, rootHash: 'abc' }), /rootHash is "abc"/],
    ['entries are not an array', '/v1/ledger/entries', JSON.stringify({ entries: [] }), /want an array of entries/],
    [
      'an entry index is a string',
      '/v1/ledger/entries',
      JSON.stringify([{ index: '0', leafHash: 'a'.repeat(64), event: '{}' }]),
      /\[0\]\.index is "0"/,
    ],
  ])('a service whose answers are garbage (%s): SERVER_ERROR naming the field', async (_, route, body, message) => {
    const { url } = await serve();
    const proxy = await startAlteringProxy(url, (path) => (path.startsWith(route) ? body : undefined));
    copies.track(proxy);
    const report = await verify(proxy.url);
    expect(where(report)).toEqual(['SERVER_ERROR']);
    expect(report.failures[0].message).toMatch(message);
  });

  it('a service that stops answering: SERVER_ERROR after the timeout', async () => {
    const { url } = await serve();
    const proxy = await startAlteringProxy(url, (path) => (path.startsWith('/v1/ledger/entries?start=0&limit=18') ? 'hang' : undefined));
    copies.track(proxy);
    const report = await verify(proxy.url, { timeoutMs: 500 });
    expect(where(report)).toEqual(['SERVER_ERROR']);
    expect(report.failures[0].message).toMatch(/no answer within 500 ms/);
  });

  it('a service or an RPC endpoint that is down: SERVER_ERROR, CHAIN_ERROR', async () => {
    const { url } = await serve();
    const port = await findFreePort();
    const down = await verify(`http://127.0.0.1:${port}`, { contract: chain.client.address });
    expect(where(down)).toEqual(['SERVER_ERROR']);
    expect(down.failures[0].message).toMatch(/cannot reach the service \(ECONNREFUSED\)/);
    const noChain = await verify(url, { rpcUrl: `http://127.0.0.1:${port}` });
    expect(where(noChain)).toEqual(['CHAIN_ERROR']);
    expect(noChain.failures[0].message).toMatch(/does not answer eth_chainId: ECONNREFUSED/);
  });
  describe('lethe-audit verify-log, run as a child process', () => {
    it('exits 0 with a report on an honest log, as text and as JSON', async () => {
      const { url } = await serve();
      const text = await runCli(['verify-log', '--api', url, '--rpc', chain.node.rpcUrl]);
      expect(text).toMatchObject({ code: 0, stderr: '' });
      expect(text.stdout).toMatch(/^ok: 18 entries re-hashed; root [0-9a-f]{64} at size 18 matches the service's checkpoint\n/);
      expect(text.stdout).toMatch(/2 of 2 checkpoints match/);
      const json = await runCli(['verify-log', '--api', url, '--rpc', chain.node.rpcUrl, '--contract', chain.client.address, '--json']);
      expect(json.code).toBe(0);
      expect(JSON.parse(json.stdout)).toMatchObject({ ok: true, entries: 18, failures: [] });
    });

    it('exits 1 naming the failure on a tampered log, and on a contract that is not AuditAnchor, without a stack trace', async () => {
      const { url } = await serve(
        [`UPDATE ledger_entries SET idx = 1000 WHERE idx = 2`],
        [`UPDATE ledger_entries SET idx = 2 WHERE idx = 3`],
        [`UPDATE ledger_entries SET idx = 3 WHERE idx = 1000`],
      );
      const tampered = await runCli(['verify-log', '--api', url, '--rpc', chain.node.rpcUrl]);
      expect(tampered.code).toBe(1);
      expect(tampered.stdout).toMatch(/^FAILED: \d+ problems/);
      expect(tampered.stdout).toMatch(/INCONSISTENT_WITH_CHAIN \(anchor 0\): checkpoint 0 on chain has root/);
      const wrong = await runCli(['verify-log', '--api', url, '--rpc', chain.node.rpcUrl, '--contract', chain.stranger.address]);
      expect(wrong.code).toBe(1);
      expect(wrong.stdout).toMatch(/NOT_AUDIT_ANCHOR: no contract at/);
      for (const out of [tampered, wrong]) expect(out.stdout + out.stderr).not.toMatch(/\n\s+at /);
    });

    it('exits 2 on bad usage with a one-line message', async () => {
      const missing = await runCli(['verify-log', '--api', 'http://127.0.0.1:1']);
      expect(missing.code).toBe(2);
      expect(missing.stderr).toMatch(/required option '--rpc <url>' not specified/);
      const badUrl = await runCli(['verify-log', '--api', 'not a url', '--rpc', chain.node.rpcUrl]);
      expect(badUrl).toMatchObject({ code: 2, stderr: 'lethe-audit verify-log: API URL "not a url" is not a URL\n' });
    });
  });
});
