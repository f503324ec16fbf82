// What a receipt says forgetting did to the models that learned a sample, checked on the auditor's side.
// The service's lists are not trusted: which versions learned the commitment comes from BATCH_LEARNED
// entries whose batch root the commitment is proven in, and only proven VERSION_RETIRED entries count.
import { MerkleError, fromHex, hashLeaf, verifyInclusion } from '@lethe/merkle';
import type { VerificationFailure } from './errors';
import { collector } from './failure-list';
import type { ServerSampleReceipt } from './receipt-data';
import type { CheckedEntry, ReceiptEntryCheck } from './verify-receipt';

type Identified<T> = ReceiptEntryCheck & T;

export interface ReceiptRetirement {
  /** BATCH_LEARNED entries whose batch holds the commitment (proven in its batch root): the versions that learned it. */
  learnedIn: Identified<{ modelId: string | null; modelVersion: number | null; shard: number | null; slice: number | null; position: number }>[];
  /** UNLEARN_COMPLETED entries serving one of its forget requests (per model, the version that no longer learned it). */
  unlearnedIn: Identified<{ modelId: string | null; modelVersion: number | null; requestIds: string[] }>[];
  /**
   * VERSION_RETIRED entries of a model that learned it (for whichever request: a version retired earlier for another
   * subject's request is retired too), or naming one of its forget requests, logged after it.
   */
  retiredVersions: Identified<{ modelId: string | null; modelVersion: number | null; forgetRequestIds: string[] }>[];
  /** CHECKPOINTS_DELETED entries naming one of its forget requests. */
  checkpointsDeleted: Identified<{ modelId: string | null; checkpoints: number; forgetRequestIds: string[] }>[];
  /**
   * Per model that learned it: the versions that held it, from the first that learned it (a proven
   * BATCH_LEARNED) up to the one before the version that forgot it last (or the latest the receipt shows),
   * leaving out those between an unlearning and a learning again (a suspended request restored), each with
   * the index of the proven VERSION_RETIRED that retired it (null: none).
   */
  models: { modelId: string; unlearnedVersion: number | null; versions: { modelVersion: number; retiredBy: number | null }[] }[];
}

export interface CheckedRetirementEntries {
  learnedIn: CheckedEntry[];
  unlearnedIn: CheckedEntry[];
  retiredVersions: CheckedEntry[];
  checkpointsDeleted: CheckedEntry[];
}

/**
 * Checks the receipt's learning and forgetting entries (each already re-hashed and proven against the chain
 * in `checked`): the commitment's proof in each BATCH_LEARNED batch root (BAD_PROOF), each other entry of its
 * type and naming one of the commitment's proven forget requests (BAD_ENTRY; a VERSION_RETIRED must come after
 * the request, or retire a version of a model with a proven batch holding the commitment: a version retired
 * earlier for another subject's request stays retired). Then, once the service says the commitment is forgotten (`forgotten`, or a request
 * `completed`), every version that learned it must be retired (NOT_RETIRED): a model that learned it at version
 * v still had it in every version until the one an UNLEARN_COMPLETED of its request published, and again from a
 * version that learned it anew (a suspended request restored: a proven BATCH_LEARNED of that version) until the
 * next UNLEARN_COMPLETED; the versions in between never held it.
 *
 * What a lying service can still hide here: a model's learning of the commitment (by leaving its
 * BATCH_LEARNED out of the receipt). verify-log closes that for any model it unlearned or retired for the
 * request (every version before an UNLEARN_COMPLETED, and after a retired one until the request is
 * unlearned, must be retired); a model it never unlearned nor retired for it is found only by replaying the
 * batches with the data (lethe-audit replay).
 */
export function checkRetirements(
  receipt: ServerSampleReceipt,
  checked: CheckedRetirementEntries,
  requests: (ReceiptEntryCheck & { requestId: string; state: string })[],
  failures: VerificationFailure[],
): ReceiptRetirement {
  const fail = collector(failures);
  // The commitment's forget requests, proven and naming it: their FORGET_REQUESTED indices.
  const requested = new Map(requests.filter((r) => r.verified && r.type === 'FORGET_REQUESTED').map((r) => [r.requestId, r.index]));
  const ofCommitment = (ids: string[]) => ids.filter((id) => requested.has(id));
  const out: ReceiptRetirement = { learnedIn: [], unlearnedIn: [], retiredVersions: [], checkpointsDeleted: [], models: [] };
  /** Adds an entry's own failures and runs `judge` on its event; verified when neither found anything. */
  const each = <T>(list: CheckedEntry[], judge: (event: NonNullable<CheckedEntry['event']>, index: number, i: number) => T, empty: T) =>
    list.map((entry, i) => {
      const before = failures.length;
      failures.push(...entry.failures);
      const fields = entry.event ? judge(entry.event, entry.check.index, i) : empty;
      return { ...entry.check, ...fields, verified: entry.check.verified && failures.length === before };
    });

  out.learnedIn = each(
    checked.learnedIn,
    (event, index, i) => {
      const position = receipt.learnedIn[i].position;
      if (event.type !== 'BATCH_LEARNED') {
        fail('BAD_ENTRY', `entry ${index}, given as a batch that learned the commitment, is ${event.type}, not BATCH_LEARNED`, index);
        return { modelId: null, modelVersion: null, shard: null, slice: null, position };
      }
      try {
        verifyInclusion(position, event.count, hashLeaf(fromHex(receipt.commitment)), receipt.learnedIn[i].batchProof.map((h) => fromHex(h)), fromHex(event.batchRoot));
      } catch (err) {
        if (!(err instanceof MerkleError)) throw err;
        fail('BAD_PROOF', `the proof of commitment ${receipt.commitment} at position ${position} does not lead to the batchRoot of entry ${index}: ${err.message}`, index);
      }
      return { modelId: event.modelId, modelVersion: event.modelVersion, shard: event.shard, slice: event.slice, position };
    },
    { modelId: null, modelVersion: null, shard: null, slice: null, position: 0 },
  );
  out.unlearnedIn = each(
    checked.unlearnedIn,
    (event, index) => {
      if (event.type !== 'UNLEARN_COMPLETED' || ofCommitment(event.requestIds).length === 0) {
        fail('BAD_ENTRY', `entry ${index} (${event.type}), given as an unlearning of the commitment, is no UNLEARN_COMPLETED serving one of its forget requests`, index);
        return { modelId: null, modelVersion: null, requestIds: [] };
      }
      return { modelId: event.modelId, modelVersion: event.modelVersion, requestIds: event.requestIds };
    },
    { modelId: null, modelVersion: null, requestIds: [] },
  );
  // A version retired earlier, for another subject's forget request, is retired all the same: a VERSION_RETIRED of a
  // version of a model with a proven batch holding the commitment counts whatever request it names.
  const learnedModels = new Set(out.learnedIn.filter((l) => l.verified && l.modelId !== null).map((l) => l.modelId!));
  out.retiredVersions = each(
    checked.retiredVersions,
    (event, index) => {
      const retires =
        event.type === 'VERSION_RETIRED' &&
        (learnedModels.has(event.modelId) || ofCommitment(event.forgetRequestIds).some((id) => requested.get(id)! < index));
      if (!retires) {
        fail(
          'BAD_ENTRY',
          `entry ${index} (${event.type}), given as a retirement, is no VERSION_RETIRED of a model that learned the commitment nor naming one of its forget requests logged before it`,
          index,
        );
        return { modelId: null, modelVersion: null, forgetRequestIds: [] };
      }
      return { modelId: event.modelId, modelVersion: event.modelVersion, forgetRequestIds: event.forgetRequestIds };
    },
    { modelId: null, modelVersion: null, forgetRequestIds: [] },
  );
  out.checkpointsDeleted = each(
    checked.checkpointsDeleted,
    (event, index) => {
      if (event.type !== 'CHECKPOINTS_DELETED' || ofCommitment(event.forgetRequestIds).length === 0) {
        fail('BAD_ENTRY', `entry ${index} (${event.type}), given as a deletion of checkpoints, is no CHECKPOINTS_DELETED naming one of the commitment's forget requests`, index);
        return { modelId: null, checkpoints: 0, forgetRequestIds: [] };
      }
      return { modelId: event.modelId, checkpoints: event.checkpoints.length, forgetRequestIds: event.forgetRequestIds };
    },
    { modelId: null, checkpoints: 0, forgetRequestIds: [] },
  );

  out.models = versionsThatLearned(out);
  // The service's word that the commitment is forgotten: only a proven request of it counts.
  const forgotten = receipt.forgotten || requests.some((r) => r.verified && r.state === 'completed');
  if (forgotten) {
    for (const model of out.models) {
      const first = out.learnedIn.find((l) => l.verified && l.modelId === model.modelId)!;
      for (const { modelVersion, retiredBy } of model.versions) {
        if (retiredBy !== null) continue;
        fail(
          'NOT_RETIRED',
          `model ${model.modelId} version ${modelVersion} learned commitment ${receipt.commitment} (BATCH_LEARNED at entry ${first.index}, version ${first.modelVersion}), ` +
            `and the service says its forgetting is done, but no VERSION_RETIRED entry retires that version`,
          first.index,
        );
      }
    }
  }
  return out;
}

/** Per model with a proven batch holding the commitment: the versions that learned it and what retired each. */
function versionsThatLearned(r: Omit<ReceiptRetirement, 'models'>): ReceiptRetirement['models'] {
  const models: ReceiptRetirement['models'] = [];
  const proven = <T extends { verified: boolean; modelId: string | null; modelVersion: number | null }>(list: T[], modelId: string) =>
    list.filter((e) => e.verified && e.modelId === modelId).map((e) => e.modelVersion!);
  for (const modelId of new Set(r.learnedIn.filter((l) => l.verified && l.modelId !== null).map((l) => l.modelId!))) {
    const learned = proven(r.learnedIn, modelId);
    const unlearned = proven(r.unlearnedIn, modelId);
    const unlearnedVersion = unlearned.length > 0 ? Math.min(...unlearned) : null;
    const last = Math.max(...learned, ...proven(r.retiredVersions, modelId), unlearned.length > 0 ? Math.max(...unlearned) - 1 : 0);
    // A version holds the commitment when its model's latest step at or before it learned it (a proven batch)
    // rather than forgot it: a suspended request's versions do not (its UNLEARN_COMPLETED), until a restore
    // learns it again (a new proven batch, FORGET_RESTORED) and a later request forgets it for real.
    const latest = (versions: number[], at: number) => Math.max(0, ...versions.filter((v) => v <= at));
    const versions = [];
    for (let modelVersion = Math.min(...learned); modelVersion <= last; modelVersion++) {
      if (latest(unlearned, modelVersion) > latest(learned, modelVersion)) continue;
      const retired = r.retiredVersions.find((e) => e.verified && e.modelId === modelId && e.modelVersion === modelVersion);
      versions.push({ modelVersion, retiredBy: retired ? retired.index : null });
    }
    models.push({ modelId, unlearnedVersion, versions });
  }
  return models;
}
