// What the log itself says about retirement, checked while verify-log streams the entries. Versions of a
// model lose samples by forgetting, and get back only a suspended forget request's (FORGET_RESTORED names the
// version that learned them again), so the log alone tells which versions still learned what an unlearning
// forgot. (Online learning also adds samples; the log does not say which: see checkUnlearnedPredecessors.)
import type { LedgerEvent } from '@lethe/events';
import type { VerificationFailure } from './errors';

interface Published {
  index: number;
  onnxSha256: string;
}

interface Batch {
  index: number;
  modelVersion: number;
  key: string;
  checkpoint: string;
}

interface Unlearned {
  index: number;
  modelVersion: number;
  requestIds: string[];
}

interface Retired {
  index: number;
  forgetRequestIds: string[];
}

interface Deletion {
  index: number;
  modelId: string;
  checkpoints: string[];
  forgetRequestIds: string[];
}

/**
 * Checks, over the whole log:
 * - a VERSION_RETIRED retires, once, a version published before it with the same file hash, for forget
 *   requests logged before it (BAD_ENTRY otherwise);
 * - every version published before an UNLEARN_COMPLETED of its model is retired: it learned samples that
 *   unlearning forgot (NOT_RETIRED), unless it lacked every commitment the requests name (an unlearning of
 *   them at or before it that no FORGET_RESTORED at or before it undid);
 * - a version later than a retired one that no UNLEARN_COMPLETED of the same request leads to still learned
 *   that request's samples: it is retired too (NOT_RETIRED);
 * - a MODEL_ROLLED_BACK goes back to a version published before it and not retired before it: a rollback
 *   never brings forgotten data back (BAD_ENTRY);
 * - a BIAS_SCANNED scans a version published before it (BAD_ENTRY);
 * - a CHECKPOINTS_DELETED deletes checkpoints of its model's BATCH_LEARNED entries, for forget requests logged
 *   before it, and none that a version not retired before it uses (BAD_ENTRY).
 * What the log cannot show: a model that learned a sample and was never unlearned nor retired for its
 * request (the log holds batch roots, not their members); a receipt proves a sample's batches, and
 * verify-receipt checks those (see verify-receipt.ts).
 */
export class RetirementAudit {
  private readonly published = new Map<string, Map<number, Published>>();
  private readonly batches = new Map<string, Batch[]>();
  private readonly unlearned = new Map<string, Unlearned[]>();
  /** Versions approximate unlearning made, by model: their weights are in their published file only, no checkpoint. */
  private readonly approximate = new Map<string, Set<number>>();
  private readonly requests = new Map<string, number>();
  /** FORGET_REQUESTED commitments by request (the first entry's). */
  private readonly commitments = new Map<string, string[]>();
  /** FORGET_RESTORED: per request, the versions that learned its samples again. */
  private readonly restoredIn = new Map<string, { modelId: string; modelVersion: number }[]>();
  private readonly retired = new Map<string, Map<number, Retired>>();
  private readonly deletions: Deletion[] = [];
  private readonly failures: VerificationFailure[] = [];

  observe(index: number, event: LedgerEvent): void {
    switch (event.type) {
      case 'MODEL_PUBLISHED':
        entryOf(this.published, event.modelId).set(event.modelVersion, { index, onnxSha256: event.onnxSha256 });
        return;
      case 'BATCH_LEARNED':
        listOf(this.batches, event.modelId).push({ index, modelVersion: event.modelVersion, key: `${event.shard}/${event.slice}`, checkpoint: event.checkpoint });
        return;
      case 'UNLEARN_COMPLETED':
        listOf(this.unlearned, event.modelId).push({ index, modelVersion: event.modelVersion, requestIds: event.requestIds });
        if (event.guarantee?.kind === 'approximate') this.approximate.set(event.modelId, (this.approximate.get(event.modelId) ?? new Set<number>()).add(event.modelVersion));
        return;
      case 'FORGET_REQUESTED':
        if (!this.requests.has(event.requestId)) {
          this.requests.set(event.requestId, index);
          this.commitments.set(event.requestId, event.commitments);
        }
        return;
      case 'FORGET_RESTORED':
        listOf(this.restoredIn, event.requestId).push(...event.modelVersions);
        return;
      case 'VERSION_RETIRED':
        this.observeRetired(index, event);
        return;
      case 'MODEL_ROLLED_BACK':
        this.observeRollback(index, event);
        return;
      case 'BIAS_SCANNED':
        if (!this.published.get(event.modelId)?.has(event.modelVersion))
          this.fail('BAD_ENTRY', `entry ${index} (BIAS_SCANNED of model ${event.modelId} version ${event.modelVersion}) scans a version the log has not published before it`, index);
        return;
      case 'CHECKPOINTS_DELETED':
        this.checkRequestsBefore(index, event.forgetRequestIds, 'CHECKPOINTS_DELETED');
        this.deletions.push({ index, modelId: event.modelId, checkpoints: event.checkpoints, forgetRequestIds: event.forgetRequestIds });
        return;
      default:
        return;
    }
  }

  /** The findings, once every entry was observed. */
  findings(): VerificationFailure[] {
    this.checkUnlearnedPredecessors();
    this.checkLaterVersions();
    this.checkDeletions();
    return this.failures;
  }

  private observeRetired(index: number, event: Extract<LedgerEvent, { type: 'VERSION_RETIRED' }>): void {
    const what = `entry ${index} (VERSION_RETIRED of model ${event.modelId} version ${event.modelVersion})`;
    const published = this.published.get(event.modelId)?.get(event.modelVersion);
    if (!published) this.fail('BAD_ENTRY', `${what} retires a version the log has not published before it`, index);
    else if (published.onnxSha256 !== event.onnxSha256)
      this.fail('BAD_ENTRY', `${what} names file ${event.onnxSha256}, but the version was published as ${published.onnxSha256} (entry ${published.index})`, index);
    this.checkRequestsBefore(index, event.forgetRequestIds, 'VERSION_RETIRED');
    const retired = entryOf(this.retired, event.modelId);
    const earlier = retired.get(event.modelVersion);
    if (earlier) this.fail('BAD_ENTRY', `${what} retires it again (entry ${earlier.index} did)`, index);
    else retired.set(event.modelVersion, { index, forgetRequestIds: event.forgetRequestIds });
  }

  private observeRollback(index: number, event: Extract<LedgerEvent, { type: 'MODEL_ROLLED_BACK' }>): void {
    const what = `entry ${index} (MODEL_ROLLED_BACK of model ${event.modelId} to version ${event.toVersion})`;
    const versions = this.published.get(event.modelId);
    if (!versions?.has(event.toVersion) || !versions.has(event.fromVersion))
      this.fail('BAD_ENTRY', `${what} names a version the log has not published before it`, index);
    const retired = this.retired.get(event.modelId)?.get(event.toVersion);
    if (retired)
      this.fail(
        'BAD_ENTRY',
        `${what} brings back a version retired at entry ${retired.index} for forget request(s) ${retired.forgetRequestIds.join(', ')}`,
        index,
      );
  }

  private checkRequestsBefore(index: number, requestIds: string[], type: string): void {
    for (const requestId of requestIds) {
      const requested = this.requests.get(requestId);
      if (requested === undefined) this.fail('BAD_ENTRY', `entry ${index} (${type}) names forget request ${requestId}, which no FORGET_REQUESTED entry before it names`, index);
    }
  }

  /**
   * Every version before an unlearned one learned what that unlearning forgot, but for one that lacked every
   * commitment of its requests: a version made by unlearning a request and not yet past that request's
   * FORGET_RESTORED (a suspended request's samples, forgotten for real once restored, were never in it).
   */
  private checkUnlearnedPredecessors(): void {
    for (const [modelId, steps] of this.unlearned) {
      const versions = this.published.get(modelId) ?? new Map<number, Published>();
      const retired = this.retired.get(modelId);
      for (const step of steps) {
        const forgotten = step.requestIds.flatMap((id) => this.commitments.get(id) ?? [null]);
        for (const [version, published] of versions) {
          if (version >= step.modelVersion || retired?.has(version)) continue;
          const lacked = this.lackedBy(modelId, version, steps);
          if (forgotten.length > 0 && forgotten.every((c) => c !== null && lacked.has(c))) continue;
          this.fail(
            'NOT_RETIRED',
            `model ${modelId} version ${version} (MODEL_PUBLISHED at entry ${published.index}) learned samples that entry ${step.index} (UNLEARN_COMPLETED, version ${step.modelVersion}) forgot for forget request(s) ${step.requestIds.join(', ')}, but no VERSION_RETIRED entry retires it`,
            step.index,
          );
        }
      }
    }
  }

  /** The commitments a version lacks: those of the requests an unlearning at or before it forgot and no restore at or before it learned again. */
  private lackedBy(modelId: string, version: number, steps: Unlearned[]): Set<string> {
    const lacked = new Set<string>();
    for (const step of steps) {
      if (step.modelVersion > version) continue;
      for (const requestId of step.requestIds) {
        const restored = (this.restoredIn.get(requestId) ?? []).some(
          (v) => v.modelId === modelId && v.modelVersion > step.modelVersion && v.modelVersion <= version,
        );
        if (!restored) for (const c of this.commitments.get(requestId) ?? []) lacked.add(c);
      }
    }
    return lacked;
  }

  /** A version later than a retired one still learned the retired one's requests until an unlearning of them. */
  private checkLaterVersions(): void {
    for (const [modelId, retiredVersions] of this.retired) {
      const versions = this.published.get(modelId) ?? new Map<number, Published>();
      const steps = this.unlearned.get(modelId) ?? [];
      for (const [later, published] of versions) {
        if (retiredVersions.has(later)) continue;
        const still = new Set<string>();
        for (const [version, retired] of retiredVersions) {
          if (version >= later) continue;
          for (const requestId of retired.forgetRequestIds) {
            if (!steps.some((s) => s.modelVersion <= later && s.requestIds.includes(requestId))) still.add(requestId);
          }
        }
        if (still.size === 0) continue;
        this.fail(
          'NOT_RETIRED',
          `model ${modelId} version ${later} (MODEL_PUBLISHED at entry ${published.index}) still learned the samples of forget request(s) ${[...still].join(', ')}, for which an earlier version was retired: no UNLEARN_COMPLETED of them leads to it, and no VERSION_RETIRED entry retires it`,
          published.index,
        );
      }
    }
  }

  /** Deleted checkpoints were the model's, and no version that was not retired before the deletion uses one. */
  private checkDeletions(): void {
    if (this.deletions.length === 0) return;
    const deleted = new Set(this.deletions.flatMap((d) => d.checkpoints));
    const users = this.usersOf(deleted);
    for (const deletion of this.deletions) {
      const own = new Set((this.batches.get(deletion.modelId) ?? []).filter((b) => b.index < deletion.index).map((b) => b.checkpoint));
      for (const checkpoint of deletion.checkpoints) {
        if (!own.has(checkpoint)) {
          this.fail('BAD_ENTRY', `entry ${deletion.index} (CHECKPOINTS_DELETED) deletes ${checkpoint}, which no BATCH_LEARNED of model ${deletion.modelId} before it saved`, deletion.index);
        }
        for (const user of users.get(checkpoint) ?? []) {
          // A version that learned the slice again after the deletion (a suspended forget restored) made it anew.
          if (user.learnedAt > deletion.index) continue;
          const retired = this.retired.get(user.modelId)?.get(user.modelVersion);
          if (retired && retired.index < deletion.index) continue;
          this.fail(
            'BAD_ENTRY',
            `entry ${deletion.index} (CHECKPOINTS_DELETED) deletes checkpoint ${checkpoint}, which model ${user.modelId} version ${user.modelVersion} uses and which is not retired before it`,
            deletion.index,
          );
        }
      }
    }
  }

  /**
   * For each of `checkpoints`, the published versions whose weights use it: a version's lineage is, per shard
   * and slice, the latest BATCH_LEARNED of its model at or before it. A version approximate unlearning made uses
   * none (its weights were computed from the version before's, and are read from its own file only).
   */
  private usersOf(checkpoints: Set<string>): Map<string, { modelId: string; modelVersion: number; learnedAt: number }[]> {
    const users = new Map<string, { modelId: string; modelVersion: number; learnedAt: number }[]>();
    for (const [modelId, versions] of this.published) {
      const batches = this.batches.get(modelId) ?? [];
      for (const [modelVersion, published] of versions) {
        if (this.approximate.get(modelId)?.has(modelVersion)) continue;
        const lineage = new Map<string, Batch>();
        for (const b of batches) if (b.modelVersion <= modelVersion && b.index < published.index) lineage.set(b.key, b);
        for (const b of lineage.values())
          if (checkpoints.has(b.checkpoint)) listOf(users, b.checkpoint).push({ modelId, modelVersion, learnedAt: b.index });
      }
    }
    return users;
  }

  private fail(code: VerificationFailure['code'], message: string, index: number): void {
    this.failures.push({ code, message, index });
  }
}

function entryOf<V>(map: Map<string, Map<number, V>>, key: string): Map<number, V> {
  let inner = map.get(key);
  if (!inner) map.set(key, (inner = new Map()));
  return inner;
}

function listOf<V>(map: Map<string, V[]>, key: string): V[] {
  let list = map.get(key);
  if (!list) map.set(key, (list = []));
  return list;
}
