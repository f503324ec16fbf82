// The RFC 9162 vectors of transparency-dev/merkle (../shared/testdata/rfc9162), checked on-chain and, for the
// same verdict, in libs/merkle.
//
// Skipped, because they cannot be expressed to the contract: vectors whose roots, leaf hash or proof hashes are
// not 32 bytes (e.g. "don't care" roots, empty roots, wrong-length hashes) cannot be passed as bytes32, the ABI
// type of the contract, so they never reach it; and inclusion vectors of tree size 0 (no checkpoint can have
// size 0), and inclusion vectors whose leafIdx wrapped below zero (2^64 - 1 in the JSON, which JavaScript numbers
// cannot hold and Lethe's sizes, safe integers, never reach). Their names are printed by the first test below.
import { MerkleError, verifyConsistency, verifyInclusion } from '@lethe/merkle';
import { expectChainError, findTestdata, fromBase64, readVectors, useChainFixture } from './support/chain-fixture';
import type { ConsistencyVector, InclusionVector } from '../../libs/merkle/src/testing/vectors';

const consistencyDir = findTestdata('rfc9162', 'consistency');
const inclusionDir = findTestdata('rfc9162', 'inclusion');
const describeWithVectors = consistencyDir && inclusionDir ? describe : describe.skip;
if (!consistencyDir || !inclusionDir) {
  // Straight to stderr: jest drops the console output of a file whose tests are all skipped.
  process.stderr.write('skipping the RFC 9162 vector suite: ../shared/testdata/rfc9162 is absent (it lives beside the repo)\n');
}

function all32Bytes(...hashes: Uint8Array[]): boolean {
  return hashes.every((h) => h.length === 32);
}

function merkleAccepts(check: () => void): boolean {
  try {
    check();
    return true;
  } catch (err) {
    if (err instanceof MerkleError) return false;
    throw err;
  }
}

describeWithVectors('AuditAnchor against the RFC 9162 vectors', () => {
  const f = useChainFixture();
  const consistency = consistencyDir ? readVectors<ConsistencyVector>(consistencyDir) : [];
  const inclusion = inclusionDir ? readVectors<InclusionVector>(inclusionDir) : [];
  const skipped: string[] = [];

  const consistencyCases = consistency.flatMap(([name, v]) => {
    const root1 = fromBase64(v.root1);
    const root2 = fromBase64(v.root2);
    const proof = (v.proof ?? []).map(fromBase64);
    if (!all32Bytes(root1, root2, ...proof)) {
      skipped.push(`consistency/${name}`);
      return [];
    }
    return [{ name, v, root1, root2, proof }];
  });
  const inclusionCases = inclusion.flatMap(([name, v]) => {
    const root = fromBase64(v.root);
    const leafHash = fromBase64(v.leafHash);
    const proof = (v.proof ?? []).map(fromBase64);
    if (!all32Bytes(root, leafHash, ...proof) || v.treeSize === 0 || !Number.isSafeInteger(v.leafIdx)) {
      skipped.push(`inclusion/${name}`);
      return [];
    }
    return [{ name, v, root, leafHash, proof }];
  });

  it('has vectors of both kinds, happy paths and failures, and lists the skipped ones', () => {
    expect(consistencyCases.filter((c) => !c.v.wantErr).length).toBeGreaterThanOrEqual(5);
    expect(consistencyCases.filter((c) => c.v.wantErr).length).toBeGreaterThanOrEqual(50);
    expect(inclusionCases.filter((c) => !c.v.wantErr).length).toBeGreaterThanOrEqual(5);
    // Every skipped vector is an error case: no accepted vector is left out.
    for (const name of skipped) {
      const [kind, ...rest] = name.split('/');
      const list = kind === 'consistency' ? consistency : inclusion;
      const vector = list.find(([n]) => n === rest.join('/'))![1];
      if (!vector.wantErr) expect(`${name} (${vector.desc})`).toMatch(/sizes are equal \(one\) and proof is empty/);
    }
    console.log(`skipped (a hash that is not 32 bytes, tree size 0, or leafIdx beyond 2^53): ${skipped.join(', ')}`);
  });

  it('verifyConsistency accepts every happy path and rejects every wantErr vector, as libs/merkle does', async () => {
    for (const { name, v, root1, root2, proof } of consistencyCases) {
      const onChain = await f.client.verifyConsistency(v.size1, v.size2, root1, root2, proof);
      const inMerkle = merkleAccepts(() => verifyConsistency(v.size1, v.size2, proof, root1, root2));
      expect({ name, onChain, inMerkle }).toEqual({ name, onChain: !v.wantErr, inMerkle: !v.wantErr });
    }
  });

  it('anchor accepts every vector extending a stored checkpoint (size1 >= 1, size2 > size1) and refuses the wantErr ones', async () => {
    const cases = consistencyCases.filter(({ v }) => v.size1 >= 1 && v.size2 > v.size1);
    expect(cases.length).toBeGreaterThan(30);
    for (const { name, v, root1, root2, proof } of cases) {
      await f.reset();
      await f.client.waitForAnchor(await f.client.anchor(0, v.size1, root1, []));
      const attempt = f.client.anchor(v.size1, v.size2, root2, proof);
      if (v.wantErr) {
        await expectChainError(attempt, 'INCONSISTENT_ROOT', 'AuditAnchorInconsistentRoot');
        expect(await f.client.checkpointCount()).toBe(1);
      } else {
        const receipt = await f.client.waitForAnchor(await attempt);
        expect({ name, checkpoint: receipt.checkpoint }).toMatchObject({ name, checkpoint: { number: 1, treeSize: v.size2 } });
      }
    }
  });

  it('verifyInclusion accepts every happy path and rejects every wantErr vector against the anchored root, as libs/merkle does', async () => {
    for (const { name, v, root, leafHash, proof } of inclusionCases) {
      await f.reset();
      await f.client.waitForAnchor(await f.client.anchor(0, v.treeSize, root, []));
      const onChain = await f.client.verifyInclusion(leafHash, v.leafIdx, v.treeSize, proof);
      const inMerkle = merkleAccepts(() => verifyInclusion(v.leafIdx, v.treeSize, leafHash, proof, root));
      expect({ name, onChain, inMerkle }).toEqual({ name, onChain: !v.wantErr, inMerkle: !v.wantErr });
    }
  });
});
