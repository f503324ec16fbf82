import type { BySide, MembershipAttackFigures, MembershipEvidence, MembershipSide } from '@lethe/events';
import { placeSample } from '../assignment';
import { layerSizesOf } from '../config';
import { selectEvaluationSamples } from '../evidence';
import { sha256Hex } from '../hash';
import { TrainedModel } from '../model';
import { ProgressCallback, ProgressTracker } from '../progress';
import { LabeledExample, Sample } from '../samples';
import { AttackFigures, chanceLevels, flaggedAt1pctFpr, summarizeAttack } from './attack-metrics';
import { makeCanaries } from './canaries';
import { AttackedModel, MembershipEngine } from './engine';
import { fitGaussians, likelihoodRatios, scaledLogit, VarianceKind } from './lira';
import { checkMembershipOptions, MEMBERSHIP_LIMITS, MembershipOptions } from './options';
import { planInclusion, referenceSeed, shadowSeed } from './shadow-plan';

export const MEMBERSHIP_ATTACK =
  'LiRA online (Carlini et al. 2022) per forgotten example, as U-LiRA (Hayes et al. 2024): logit-scaled confidence on the true label, ' +
  'Gaussian fits of shadow models trained IN and OUT of each example, likelihood ratio as the score; on the ensemble and on the shard model that held each example';

export interface MembershipInput {
  /** The model before the forget (it learned the forgotten samples) and the version the forget published. */
  before: TrainedModel;
  after: TrainedModel;
  /** Non-members: held-out samples (at most MEMBERSHIP_LIMITS.maxHeldOut of them, a seeded subset, are used). */
  testSet?: readonly LabeledExample[];
  options: MembershipOptions;
  onProgress?: ProgressCallback;
}

/** Scores of every candidate on one model: from the ensemble's output and from the shard model holding it (NaN if none). */
interface CandidateScores {
  ensemble: Float64Array;
  perMember: Float64Array;
}

/**
 * The membership evidence of a forget: can an attacker tell, from each model, the samples it learned from
 * samples it never saw? For each candidate (the forgotten samples, held-out ones, and canaries), `shadowModels`
 * models with the attacked model's config (architecture, hyperparameters, S, R, schedule) but their own seed
 * train on the retained samples plus the candidates drawn IN for them (each candidate IN for half of them); the
 * scores they give a candidate fit its IN and OUT Gaussians, and a model's likelihood ratio on the candidate is
 * its score. The attacked models are the model before, after, and a reference retrained without the forgotten
 * samples under another seed; each is read on the ensemble and on the shard model that holds (or would hold)
 * each candidate. TPR at 1% / 0.1% FPR and AUC with 95% bootstrap intervals compare members with non-members
 * of one kind: injected canaries with canaries kept out when there are canaries (and then the forgotten samples
 * are read against the held-out ones at 1% FPR: `forgottenAt1pctFpr`), else forgotten with held-out samples.
 * Every draw comes from seeded streams: the same inputs give the same evidence.
 *
 * With canaries, the attacked "before" and "after" are evaluation-only copies: the method trains the model's
 * samples plus the injected canaries with the model's config, then forgets the forgotten samples and the canaries
 * from it; `models.afterIsPublished` says whether that copy is, byte for byte, the version the forget published
 * (it is for an exact method). Canaries reach no published model, no ledger entry and no file.
 *
 * Returns `skipped` (with the reason, before training anything) when the compared members are fewer than 20 or
 * the non-members fewer than 100. Independent of the forget itself: it can run in the forget's pass or later.
 */
export async function measureMembership(engine: MembershipEngine, input: MembershipInput): Promise<MembershipEvidence> {
  const options = checkMembershipOptions(input.options);
  const { before, after } = input;
  const config = before.config;
  const kept = new Set(after.samples.map((s) => s.externalId));
  const forgotten = before.samples.filter((s) => !kept.has(s.externalId));
  const learned = new Set(before.samples.map((s) => s.externalId));
  const heldOut = selectEvaluationSamples(
    (input.testSet ?? []).filter((s) => !learned.has(s.externalId)),
    config.seed,
    MEMBERSHIP_LIMITS.maxHeldOut,
  ).map(asSample);
  const canaries = makeCanaries(
    after.samples,
    { injected: options.canaries, keptOut: options.canaries },
    config.numClasses,
    config.seed,
  );
  const groups = new CandidateGroups({ forgotten, injected: canaries.injected, heldOut, keptOut: canaries.keptOut });
  const population = options.canaries > 0 ? 'canaries' : 'forgotten';
  const compared = population === 'canaries' ? { members: 'injected', nonMembers: 'keptOut' } as const : { members: 'forgotten', nonMembers: 'heldOut' } as const;
  const head = {
    attack: MEMBERSHIP_ATTACK,
    shadowModels: options.shadowModels,
    members: { forgotten: forgotten.length, canaries: canaries.injected.length },
    nonMembers: { heldOut: heldOut.length, canaries: canaries.keptOut.length },
  };
  const reason = tooSmall(groups.size(compared.members), groups.size(compared.nonMembers));
  if (reason) return { ...head, skipped: { reason } };

  const progress = new ProgressTracker(options.shadowModels + (options.canaries > 0 ? 3 : 1), input.onProgress, 'membership');
  const attacked = await attackedModels(engine, before, after, canaries.injected, forgotten, progress);
  const shadows = await scoreShadows(engine, after, groups.all, options.shadowModels, progress);
  const observed = {
    before: await scoreCandidates(engine, attacked.before, groups.all),
    after: await scoreCandidates(engine, attacked.after, groups.all),
    reference: await scoreCandidates(engine, attacked.reference, groups.all),
  };
  progress.finish();
  const read = (kind: keyof CandidateScores) => {
    const ratios = likelihoodRatiosOf(kind, shadows, observed);
    const figures = toFigures(
      sides((side) =>
        summarizeAttack(
          groups.pick(ratios[side], compared.members),
          groups.pick(ratios[side], compared.nonMembers),
          `${config.seed}|${kind}`, // one stream for the three sides: models that score alike read alike, intervals included
          options.bootstrap,
        ),
      ),
    );
    if (population === 'canaries' && forgotten.length > 0 && groups.pick(ratios.before, 'heldOut').length >= MEMBERSHIP_LIMITS.minNonMembers)
      figures.forgottenAt1pctFpr = sides((side) => flaggedAt1pctFpr(groups.pick(ratios[side], 'forgotten'), groups.pick(ratios[side], 'heldOut')));
    return { variance: ratios.variance, figures };
  };
  const ensemble = read('ensemble');
  const perMember = read('perMember');
  return {
    ...head,
    population,
    chance: chanceLevels(groups.size(compared.nonMembers)),
    variance: ensemble.variance,
    bootstrap: options.bootstrap,
    models: {
      before: attacked.before.model.onnxSha256,
      after: attacked.after.model.onnxSha256,
      reference: attacked.reference.model.onnxSha256,
      evaluationOnly: options.canaries > 0,
      afterIsPublished: attacked.after.model.onnxSha256 === after.onnxSha256,
    },
    ...ensemble.figures,
    perMember: perMember.figures,
  };
}

type GroupName = 'forgotten' | 'injected' | 'heldOut' | 'keptOut';

/** The candidates in one array (forgotten, injected canaries, held-out, canaries kept out), and which is which. */
class CandidateGroups {
  readonly all: Sample[];
  private readonly groupOf: GroupName[];

  constructor(groups: Record<GroupName, readonly Sample[]>) {
    const names: GroupName[] = ['forgotten', 'injected', 'heldOut', 'keptOut'];
    this.all = names.flatMap((name) => groups[name]);
    this.groupOf = names.flatMap((name) => groups[name].map(() => name));
  }

  size(group: GroupName): number {
    return this.groupOf.filter((g) => g === group).length;
  }

  /** The values of a group's candidates, skipping NaN (a candidate some model could not score). */
  pick(values: Float64Array, group: GroupName): number[] {
    return Array.from(values).filter((v, j) => this.groupOf[j] === group && !Number.isNaN(v));
  }
}

function sides<T>(of: (side: MembershipSide) => T): BySide<T> {
  return { before: of('before'), after: of('after'), reference: of('reference') };
}

function tooSmall(members: number, nonMembers: number): string | undefined {
  const { minMembers, minNonMembers } = MEMBERSHIP_LIMITS;
  if (members < minMembers)
    return `${members} forgotten sample(s) are fewer than the ${minMembers} members the attack's bootstrap intervals need; ask for canaries (evaluation.membership.canaries)`;
  if (nonMembers < minNonMembers)
    return `${nonMembers} held-out sample(s) are fewer than the ${minNonMembers} non-members a TPR at 1% FPR needs; hold out more samples (evaluation.holdoutFraction) or ask for canaries`;
  return undefined;
}

/** A held-out example as a sample the shadow models can train on (a commitment of its own when it has none). */
function asSample(example: LabeledExample): Sample {
  const commitment = (example as Partial<Sample>).commitment;
  return typeof commitment === 'string' ? (example as Sample) : { ...example, commitment: sha256Hex('lethe-lira-heldout|', example.externalId) };
}

/**
 * Fresh sample objects for a training under another seed: the engine memoizes each sample's placement key per
 * seed on the sample object, and the model's own samples live on after the evaluation (keys of 16 seeds over
 * 10,000 samples would hold on to some 15 MB).
 */
function copies(samples: readonly Sample[]): Sample[] {
  return samples.map((s) => ({ ...s }));
}

/** The before, after and reference models the attack reads: the given ones, or evaluation copies with canaries. */
async function attackedModels(
  engine: MembershipEngine,
  before: TrainedModel,
  after: TrainedModel,
  canaries: readonly Sample[],
  forgotten: readonly Sample[],
  progress: ProgressTracker,
): Promise<BySide<AttackedModel>> {
  let attackedBefore: AttackedModel;
  let attackedAfter: AttackedModel;
  if (canaries.length > 0) {
    attackedBefore = await engine.train(before.config, [...before.samples, ...canaries], { forgettable: true });
    progress.advance();
    attackedAfter = await engine.forget(attackedBefore, [...forgotten, ...canaries]);
    progress.advance();
  } else {
    attackedBefore = await engine.attackable(before);
    attackedAfter = await engine.attackable(after);
  }
  const reference = await engine.train({ ...after.config, seed: referenceSeed(after.config.seed) }, copies(after.samples));
  progress.advance();
  return { before: attackedBefore, after: attackedAfter, reference };
}

/** Every shadow model's scores of every candidate (row k: shadow k), and which candidates each trained on. */
async function scoreShadows(
  engine: MembershipEngine,
  after: TrainedModel,
  candidates: readonly Sample[],
  count: number,
  progress: ProgressTracker,
): Promise<{ scores: CandidateScores; inclusion: Uint8Array; count: number }> {
  const inclusion = planInclusion(candidates, count, after.config.seed);
  const m = candidates.length;
  const scores = { ensemble: new Float64Array(count * m), perMember: new Float64Array(count * m) };
  for (let k = 0; k < count; k++) {
    const drawn = candidates.filter((_, j) => inclusion[k * m + j] === 1);
    const shadow = await engine.train({ ...after.config, seed: shadowSeed(after.config.seed, k) }, copies([...after.samples, ...drawn]));
    const scored = await scoreCandidates(engine, shadow, candidates);
    scores.ensemble.set(scored.ensemble, k * m);
    scores.perMember.set(scored.perMember, k * m);
    progress.advance();
  }
  return { scores, inclusion, count };
}

/**
 * The scaled logit each candidate gets from a model's ensemble output (the published file's bits) and from the
 * softmax of the shard model that holds it, or would hold it, under the model's seed (NaN when that shard is empty).
 */
async function scoreCandidates(engine: MembershipEngine, attacked: AttackedModel, candidates: readonly Sample[]): Promise<CandidateScores> {
  const { config } = attacked.model;
  const layers = layerSizesOf(config);
  const classes = config.numClasses;
  const inGraphOrder = attacked.model.members.map((shard) => attacked.members.get(shard)!);
  const probabilities = await engine.evaluator.predict(layers, config.aggregation, inGraphOrder, candidates);
  const ensemble = Float64Array.from(candidates, (c, j) => scaledLogit(probabilities, j, classes, c.label));
  const perMember = new Float64Array(candidates.length).fill(NaN);
  const byShard = new Map<number, number[]>();
  candidates.forEach((c, j) => {
    const { shard } = placeSample(config.seed, c.externalId, config.shards, config.slices);
    byShard.set(shard, [...(byShard.get(shard) ?? []), j]);
  });
  for (const [shard, indexes] of byShard) {
    const member = attacked.members.get(shard);
    if (!member) continue;
    // A one-member 'mean' ensemble is the member's softmax (the graph outputs it as is).
    const own = await engine.evaluator.predict(layers, 'mean', [member], indexes.map((j) => candidates[j]));
    indexes.forEach((j, i) => (perMember[j] = scaledLogit(own, i, classes, candidates[j].label)));
  }
  return { ensemble, perMember };
}

/**
 * One attack's likelihood ratios (ensemble or per member) on the three models: Gaussians fitted on the shadow
 * scores of the candidates every model scored, each model's scores put to them. NaN for a candidate some model
 * could not score (its shard is empty there).
 */
function likelihoodRatiosOf(
  kind: keyof CandidateScores,
  shadows: { scores: CandidateScores; inclusion: Uint8Array; count: number },
  observed: BySide<CandidateScores>,
): BySide<Float64Array> & { variance: VarianceKind } {
  const m = observed.before[kind].length;
  const usable: number[] = [];
  for (let j = 0; j < m; j++) {
    let finite = Number.isFinite(observed.before[kind][j]) && Number.isFinite(observed.after[kind][j]) && Number.isFinite(observed.reference[kind][j]);
    for (let k = 0; k < shadows.count && finite; k++) finite = Number.isFinite(shadows.scores[kind][k * m + j]);
    if (finite) usable.push(j);
  }
  const pick = <T extends Float64Array | Uint8Array>(rows: T, count: number): T => {
    const out = new (rows.constructor as new (n: number) => T)(count * usable.length);
    for (let k = 0; k < count; k++) usable.forEach((j, u) => (out[k * usable.length + u] = rows[k * m + j]));
    return out;
  };
  const fits = fitGaussians(pick(shadows.scores[kind], shadows.count), pick(shadows.inclusion, shadows.count), shadows.count, usable.length);
  const ratiosOf = (side: MembershipSide) => {
    const out = new Float64Array(m).fill(NaN);
    likelihoodRatios(pick(observed[side][kind], 1), fits).forEach((ratio, u) => (out[usable[u]] = ratio));
    return out;
  };
  return { ...sides(ratiosOf), variance: fits.variance };
}

/** Per-side figures as the evidence lays them out: by measure, then by side. */
function toFigures(bySide: BySide<AttackFigures>): MembershipAttackFigures {
  const of = <T>(get: (f: AttackFigures) => T): BySide<T> => sides((side) => get(bySide[side]));
  return {
    tprAt1pctFpr: of((f) => f.tprAt1pctFpr),
    tprAt01pctFpr: of((f) => f.tprAt01pctFpr),
    auc: of((f) => f.auc),
    ci95: { tprAt1pctFpr: of((f) => f.ci95.tprAt1pctFpr), tprAt01pctFpr: of((f) => f.ci95.tprAt01pctFpr), auc: of((f) => f.ci95.auc) },
  };
}
