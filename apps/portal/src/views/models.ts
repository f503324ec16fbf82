// Per model version: its lineage (batches, forget requests reflected) and the evidence of forgetting, as charts.
import { describeGuarantee, describePrivacyGuarantee, describeRuntimeEnvelope, guaranteeKind, type JsonValue } from '@lethe/events';
import { groupedBarChart } from '../charts';
import { formatNumber, h, short } from '../dom';
import { EVIDENCE_MEASURES, MEMBERSHIP_CATEGORIES, buildModelVersions, evidenceSeries, membershipView, type ModelVersionView } from '../derive';
import { loadShardTasks, type ShardTaskRow } from '../data';
import { buildLifecycle, type HeldVersion, type Lifecycle } from '../lifecycle';
import { errorText } from '../state';
import type { PortalApp } from './app';

export function renderModels(app: PortalApp): HTMLElement {
  const { snapshot } = app.state;
  const section = h('section', {}, h('h2', {}, 'Models'));
  if (!snapshot) return section;
  const versions = buildModelVersions(snapshot.entries);
  if (versions.length === 0) section.append(h('p', { class: 'muted' }, 'No model is published in the log.'));
  const lifecycle = buildLifecycle(snapshot.entries);
  const byModel = new Map<string, ModelVersionView[]>();
  for (const v of versions) byModel.set(v.modelId, [...(byModel.get(v.modelId) ?? []), v]);
  if (byModel.size > 0) section.append(renderShardTasksForm(app, [...byModel.keys()]));
  const { shardTasks } = app.state;
  for (const [modelId, list] of byModel) {
    section.append(
      h(
        'article',
        { class: 'model', 'data-model': modelId },
        h('h3', {}, `Model ${modelId}`, list[0].datasetId ? h('span', { class: 'muted' }, ` · dataset ${list[0].datasetId}`) : null),
        renderRollbacks(lifecycle, modelId),
        list.map((v) =>
          renderVersion(v, lifecycle.held.get(`${modelId}/${v.modelVersion}`), shardTasks ? (shardTasks.get(modelId)?.get(v.modelVersion) ?? []) : undefined),
        ),
      ),
    );
  }
  section.append(renderDatasetVersions(lifecycle));
  if (lifecycle.problems.length)
    section.append(h('ul', { class: 'problems' }, lifecycle.problems.map((p) => h('li', { class: 'error' }, p))));
  return section;
}

/**
 * Which worker trained which shard is the operator's record, not the log's: read from GET /v1/models/{id} with an
 * ml or auditor key typed here (kept in this page's memory only, sent only to the service that served the portal).
 */
function renderShardTasksForm(app: PortalApp, modelIds: string[]): HTMLElement {
  const { state } = app;
  const input = h('input', { type: 'password', autocomplete: 'off', 'data-testid': 'shard-tasks-key', placeholder: 'ml or auditor API key' });
  const submit = (event: Event) => {
    event.preventDefault();
    const key = input.value.trim();
    if (key === '' || state.loadingShardTasks) return;
    state.loadingShardTasks = true;
    app.render();
    loadShardTasks(state.apiUrl, key, modelIds)
      .then((tasks) => {
        state.shardTasks = tasks;
        state.shardTasksError = null;
      })
      .catch((err: unknown) => {
        state.shardTasksError = errorText(err);
      })
      .finally(() => {
        state.loadingShardTasks = false;
        app.render();
      });
  };
  return h(
    'form',
    { class: 'shard-tasks-form', 'data-testid': 'shard-tasks-form', onsubmit: submit },
    h('label', {}, 'Which worker trained which shard (from the service, with an ml or auditor key, kept in this page only): ', input),
    h('button', { type: 'submit', 'data-testid': 'shard-tasks-show', disabled: state.loadingShardTasks }, state.loadingShardTasks ? 'Reading…' : 'Show'),
    state.shardTasksError ? h('p', { class: 'error', 'data-testid': 'shard-tasks-error' }, state.shardTasksError) : null,
  );
}

/** The shards workers trained for a version (shard tasks): shard, worker, seconds; undefined while not read. */
function renderShardTasks(tasks: ShardTaskRow[] | undefined): HTMLElement | null {
  if (tasks === undefined) return null;
  if (tasks.length === 0)
    return h('p', { class: 'muted', 'data-testid': 'shard-tasks-none' }, 'Shard tasks: none (one worker trained what this version trained)');
  return h(
    'div',
    {},
    h('h5', {}, 'Shard tasks: which worker trained which shard'),
    h(
      'table',
      { class: 'shard-tasks', 'data-testid': 'shard-tasks' },
      h('thead', {}, h('tr', {}, ['shard', 'worker', 'seconds'].map((t) => h('th', {}, t)))),
      h(
        'tbody',
        {},
        tasks.map((t) =>
          h('tr', { 'data-shard': t.shard }, h('td', {}, t.shard), h('td', {}, t.worker), h('td', {}, t.seconds === null ? '—' : t.seconds.toFixed(2))),
        ),
      ),
    ),
  );
}

/** A model's rollbacks (MODEL_ROLLED_BACK), in log order. */
function renderRollbacks(lifecycle: Lifecycle, modelId: string): HTMLElement | null {
  const rollbacks = lifecycle.rollbacks.filter((r) => r.event.modelId === modelId);
  if (rollbacks.length === 0) return null;
  return h(
    'ul',
    { class: 'rollbacks', 'data-testid': 'rollbacks' },
    rollbacks.map((r) => h('li', {}, `Rolled back from version ${r.event.fromVersion} to version ${r.event.toVersion} (entry #${r.index}, MODEL_ROLLED_BACK)`)),
  );
}

/** Each dataset's versions (DATASET_VERSIONED): the Merkle root and count of its live samples after each change. */
function renderDatasetVersions(lifecycle: Lifecycle): HTMLElement {
  const section = h('div', { class: 'dataset-versions', 'data-testid': 'dataset-versions' }, h('h3', {}, 'Dataset versions'));
  if (lifecycle.datasetVersions.size === 0) section.append(h('p', { class: 'muted' }, 'No dataset version is in the log.'));
  for (const [datasetId, versions] of lifecycle.datasetVersions) {
    section.append(
      h(
        'table',
        { 'data-dataset': datasetId },
        h('caption', {}, `Dataset ${datasetId}`),
        h('thead', {}, h('tr', {}, ['version', 'live samples', 'root of their commitments', 'entry'].map((t) => h('th', {}, t)))),
        h(
          'tbody',
          {},
          versions.map(({ index, event }) =>
            h('tr', {}, h('td', {}, String(event.datasetVersion)), h('td', {}, String(event.size)), h('td', {}, short(event.root, 16)), h('td', {}, `#${index}`)),
          ),
        ),
      ),
    );
  }
  return section;
}

/** The forgetting guard's flag on a version it held: the figures, and whether it was released. */
function renderHeld(held: HeldVersion | undefined): HTMLElement | null {
  if (!held) return null;
  const { testAccuracyBefore, testAccuracyAfter, drop, maxTestAccuracyDrop } = held.event;
  return h(
    'p',
    { class: held.releasedIndex === null ? 'error held' : 'held', 'data-testid': 'held' },
    `Held by the catastrophic-forgetting guard (entry #${held.index}, ${held.event.type}${describeHeldCause(held.event)}): test accuracy ${formatNumber(testAccuracyBefore)} -> ` +
      `${formatNumber(testAccuracyAfter)}, a drop of ${formatNumber(drop)} above the limit ${maxTestAccuracyDrop}. ` +
      (held.releasedIndex === null ? 'Not released: served only when asked for by number.' : `Released in entry #${held.releasedIndex} (VERSION_RELEASED).`),
  );
}

/** A learn's line: which learn batch it appended, how many samples, in which entries. */
function describeLearned(learned: Extract<ModelVersionView['learned'], { kind: 'learned' }>): string {
  if (learned.learnBatches.length === 0) return 'Learned: new samples learned into the version before (online learning; its BATCH_LEARNED entries above)';
  const batches = learned.learnBatches.length === 1 ? `learn batch ${learned.learnBatches[0]}` : `learn batches ${learned.learnBatches.join(', ')}`;
  return (
    `Learned: ${batches}, ${learned.samples} new sample(s) appended as a slice of each shard to the version before (online learning; ` +
    `BATCH_LEARNED entries ${learned.indices.map((i) => `#${i}`).join(', ')})`
  );
}

/** What made a version the guard held, when it was not an unlearning: a learn's batch, or a restore, from which version. */
function describeHeldCause(event: HeldVersion['event']): string {
  if (event.type !== 'LEARN_HELD') return '';
  return event.cause === 'learn' ? `, learn batch ${event.learnBatch} on version ${event.fromVersion}` : `, restore on version ${event.fromVersion}`;
}

function renderVersion(v: ModelVersionView, held?: HeldVersion, tasks?: ShardTaskRow[]): HTMLElement {
  const isHeld = !v.retired && held !== undefined && held.releasedIndex === null;
  return h(
    'div',
    { class: v.retired ? 'version retired' : 'version', 'data-version': v.modelVersion, 'data-state': v.retired ? 'retired' : isHeld ? 'held' : 'live' },
    h(
      'h4',
      {},
      `Version ${v.modelVersion}`,
      v.retired ? h('span', { class: 'badge retired' }, 'retired') : null,
      isHeld ? h('span', { class: 'badge held' }, 'held') : null,
      h('span', { class: 'muted' }, ` · MODEL_PUBLISHED entry #${v.index} · ONNX `),
      short(v.onnxSha256, 16),
    ),
    h(
      'p',
      { class: 'muted', 'data-testid': 'runtime' },
      v.runtime ? `Trained under ${describeRuntimeEnvelope(v.runtime)}` : 'Runtime envelope not recorded (published before envelopes were)',
    ),
    h(
      'p',
      { class: v.privacy ? 'privacy' : 'muted', 'data-testid': 'privacy' },
      v.privacy ? `Privacy: ${describePrivacyGuarantee(v.privacy)}` : 'Privacy: none recorded (trained without differential privacy)',
    ),
    renderRetirement(v),
    v.learned
      ? h(
          'p',
          { class: 'learned', 'data-testid': 'learned', ...(v.learned.kind === 'learned' ? { 'data-learn-batches': v.learned.learnBatches.join(',') } : {}) },
          v.learned.kind === 'restored'
            ? `Restored: forget request ${v.learned.requestId} was suspended and is undone; its samples are learned again (FORGET_RESTORED entry #${v.learned.index})`
            : describeLearned(v.learned),
        )
      : null,
    renderHeld(held),
    v.problems.length
      ? h(
          'ul',
          { class: 'problems' },
          v.problems.map((p) => h('li', { class: 'error' }, p)),
        )
      : null,
    v.unlearn ? renderGuarantee(v.unlearn) : null,
    h('div', { class: 'columns' }, renderLineage(v), renderPublishedMetrics(v)),
    renderShardTasks(tasks),
    v.unlearn ? renderEvidence(v, v.unlearn) : null,
  );
}

/**
 * What the version promises about the samples it forgot (its UNLEARN_COMPLETED.guarantee): exact, certified with
 * its budget, or approximately forgotten, which the portal never calls forgotten without the qualifier.
 */
function renderGuarantee(unlearn: NonNullable<ModelVersionView['unlearn']>): HTMLElement {
  const kind = guaranteeKind(unlearn.guarantee);
  return h(
    'p',
    { class: `guarantee guarantee-${kind}`, 'data-testid': 'guarantee', 'data-guarantee': kind },
    h('strong', {}, `Guarantee (${kind}): `),
    describeGuarantee(unlearn.guarantee),
    unlearn.guarantee ? null : h('span', { class: 'muted' }, ' (recorded before guarantees were; exact)'),
  );
}

/** What the version learned (its batches) and the forget requests it reflects. */
function renderLineage(v: ModelVersionView): HTMLElement {
  return h(
    'div',
    {},
    h('h5', {}, 'Lineage: batches learned'),
    h(
      'table',
      { class: 'lineage', 'data-testid': 'lineage-batches' },
      h(
        'thead',
        {},
        h(
          'tr',
          {},
          ['shard', 'slice', 'learn batch', 'samples', 'trained in version', 'entry', 'batch root'].map((t) => h('th', {}, t)),
        ),
      ),
      h(
        'tbody',
        {},
        v.batches.map((b) =>
          h(
            'tr',
            {},
            h('td', {}, b.shard),
            h('td', {}, b.slice),
            h('td', { 'data-learn-batch': b.learnBatch ?? '' }, b.learnBatch === null ? '—' : b.learnBatch),
            h('td', {}, b.count),
            h('td', {}, b.modelVersion),
            h('td', {}, `#${b.index}`),
            h('td', {}, short(b.batchRoot)),
          ),
        ),
      ),
    ),
    h('h5', {}, 'Forget requests it reflects'),
    v.forgetRequests.length === 0
      ? h('p', { class: 'muted' }, 'none')
      : h(
          'ul',
          { 'data-testid': 'lineage-requests' },
          v.forgetRequests.map((r) =>
            h(
              'li',
              { 'data-request': r.requestId },
              `${r.requestId}: ${r.commitments} commitment(s), requested in entry ${
                r.index === null ? '(missing)' : `#${r.index}`
              }, ${guaranteeKind(r.guarantee) === 'approximate' ? 'approximately unlearned' : 'unlearned'} in entry #${r.unlearnIndex} (version ${
                r.unlearnVersion
              }, ${guaranteeKind(r.guarantee)})`,
            ),
          ),
        ),
  );
}

/** The metrics of MODEL_PUBLISHED: the accuracies and AUCs as a chart, every number as text. */
function renderPublishedMetrics(v: ModelVersionView): HTMLElement {
  const metrics = Object.entries(v.metrics).filter(([, value]) => typeof value === 'number');
  const accuracies = metrics.filter(([key, value]) => /(accuracy|auc)$/i.test(key) && (value as number) <= 1);
  return h(
    'div',
    {},
    h('h5', {}, 'Published metrics'),
    accuracies.length
      ? groupedBarChart({
          title: `version ${v.modelVersion} metrics`,
          categories: accuracies.map(([k]) => k),
          series: [{ name: 'value', values: accuracies.map(([, value]) => value as number) }],
        })
      : null,
    h('p', { class: 'muted' }, metrics.map(([k, value]) => `${k} ${formatNumber(value)}`).join(' · ')),
    isFairness(v.metrics.fairness) ? h('p', { 'data-testid': 'fairness' }, `Fairness on the holdout: ${describeFairness(v.metrics.fairness)}`) : null,
  );
}

type Fairness = { [key: string]: JsonValue };

function isFairness(value: JsonValue | undefined): value is Fairness {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && typeof value.demographicParityDifference === 'number';
}

/** Per-group accuracy, demographic parity and equalized odds differences, as one line. */
function describeFairness(f: Fairness): string {
  const groups = Array.isArray(f.groups)
    ? f.groups.map((g) => (typeof g === 'object' && g !== null && !Array.isArray(g) ? `group ${String(g.group)} accuracy ${formatNumber(g.accuracy)} (${String(g.count)})` : '')).join(', ')
    : '';
  return `protected column ${String(f.protectedFeature)}: ${groups}; demographic parity difference ${formatNumber(f.demographicParityDifference)}, equalized odds difference ${formatNumber(f.equalizedOddsDifference)}`;
}

/**
 * The evidence of the UNLEARN_COMPLETED that made the version (in that entry, or in the EVIDENCE_RECORDED that
 * followed a version published first): before and after forgetting (and the reference), as a chart.
 */
function renderEvidence(v: ModelVersionView, unlearn: NonNullable<ModelVersionView['unlearn']>): HTMLElement {
  const series = evidenceSeries(unlearn.evidence);
  const evidence = unlearn.evidence ?? {};
  const source = unlearn.evidenceIndex === null ? '' : `, measured after publication: EVIDENCE_RECORDED entry #${unlearn.evidenceIndex}`;
  const approximately = guaranteeKind(unlearn.guarantee) === 'approximate' ? 'approximately ' : '';
  return h(
    'div',
    { class: 'evidence', 'data-testid': 'evidence' },
    h(
      'h5',
      {},
      `Evidence of ${approximately}forgetting (UNLEARN_COMPLETED entry #${unlearn.index}${source}): ${formatNumber(
        evidence.forgottenCount,
      )} ${approximately}forgotten, ${formatNumber(evidence.retainCount)} retained`,
    ),
    unlearn.evidencePending
      ? h('p', { class: 'muted', 'data-testid': 'evidence-pending' }, 'Published before its evidence: no EVIDENCE_RECORDED entry yet.')
      : null,
    unlearn.features
      ? h(
          'p',
          { 'data-testid': 'forgotten-features' },
          `Feature-level unlearning: the version no longer reads column(s) ${unlearn.features.join(', ')}` +
            describeImportance(evidence),
        )
      : null,
    unlearn.fairness
      ? h(
          'p',
          { 'data-testid': 'fairness-change' },
          `Fairness before: ${describeFairness(unlearn.fairness.before)}. After: ${describeFairness(unlearn.fairness.after)}.`,
        )
      : null,
    renderMembership(v, evidence),
    series
      ? groupedBarChart({
          title: `version ${v.modelVersion}: before and after forgetting`,
          categories: EVIDENCE_MEASURES.map((m) => m.label),
          series,
        })
      : h('p', { class: 'muted' }, 'The entry carries no before/after evaluation.'),
    series && !series.some((s) => s.name === 'reference') ? h('p', { class: 'muted' }, 'No retrained reference in this evidence.') : null,
    typeof evidence.membershipAttack === 'string'
      ? h('p', { class: 'muted' }, `Loss-threshold membership inference (secondary): ${evidence.membershipAttack}`)
      : null,
    unlearn.affected.length
      ? h('p', { class: 'muted' }, `Retrained: ${unlearn.affected.map((a) => `shard ${a.shard} from slice ${a.fromSlice}`).join(', ')}`)
      : null,
  );
}

/** The permutation importance of the forgotten columns before and after, from a feature forget's evidence. */
function describeImportance(evidence: { [key: string]: JsonValue }): string {
  const of = (side: JsonValue | undefined) => {
    const list = typeof side === 'object' && side !== null && !Array.isArray(side) ? side.permutationImportance : undefined;
    return Array.isArray(list) ? list.map((c) => (typeof c === 'object' && c !== null && !Array.isArray(c) ? `column ${String(c.column)} ${formatNumber(c.importance)}` : '')).join(', ') : null;
  };
  const before = of(evidence.before);
  const after = of(evidence.after);
  return before && after ? `; permutation importance before: ${before}, after: ${after}` : '';
}

/**
 * The membership attack of the evidence, when it has one: TPR at 1% and 0.1% FPR and AUC of before, after and
 * the reference with their 95% intervals, chance marked, for the ensemble and per shard model; or why it was skipped.
 */
function renderMembership(v: ModelVersionView, evidence: NonNullable<ModelVersionView['unlearn']>['evidence']): HTMLElement | null {
  const view = membershipView(evidence);
  if (view === null) return null;
  if ('problem' in view) return h('p', { class: 'error', 'data-testid': 'membership' }, `Membership attack: malformed evidence (${view.problem})`);
  return h(
    'div',
    { class: 'membership', 'data-testid': 'membership' },
    h('h5', {}, 'Membership attack'),
    h('p', { class: 'muted' }, view.summary),
    view.skipped ? h('p', { 'data-testid': 'membership-skipped' }, `Skipped: ${view.skipped}`) : null,
    view.charts.map((chart) =>
      h(
        'div',
        { 'data-attack': chart.attack },
        groupedBarChart({
          title: `version ${v.modelVersion}: membership attack on the ${chart.attack === 'ensemble' ? 'ensemble' : 'shard model that held each sample'}`,
          categories: MEMBERSHIP_CATEGORIES.map((m) => `${m.label} (${chart.attack})`),
          series: chart.series,
          marks: { label: 'chance', values: view.chance },
          nullLabel: 'n/a: too few non-members',
        }),
        chart.forgottenFlagged ? h('p', { class: 'muted' }, chart.forgottenFlagged) : null,
      ),
    ),
  );
}

/** Why a retired version's file and checkpoints are gone: the entries that say so. */
function renderRetirement(v: ModelVersionView): HTMLElement | null {
  if (!v.retired && v.checkpointsDeleted.length === 0) return null;
  const deleted = v.checkpointsDeleted.map((d) => `${d.count} checkpoint(s) of its lineage deleted in entry #${d.index} (CHECKPOINTS_DELETED)`);
  return h(
    'p',
    { class: 'retirement', 'data-testid': 'retirement' },
    v.retired
      ? `Retired in entry #${v.retired.index} (VERSION_RETIRED) by forget request(s) ${v.retired.forgetRequestIds.join(', ')}: it learned their samples, so its file is deleted and it is no longer served.`
      : null,
    deleted.length ? ` ${deleted.join('; ')}.` : null,
  );
}
