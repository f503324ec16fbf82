// Forget-request timing: request -> unlearned version -> anchored, timed by the chain's block timestamps.
import { durationUnit, timingHistogramChart } from '../charts';
import { formatDuration, formatTime, h } from '../dom';
import { computeForgetTimings, timingHistogram } from '../derive';
import { applyExtensions, buildLifecycle } from '../lifecycle';
import type { PortalApp } from './app';

export function renderTiming(app: PortalApp): HTMLElement {
  const { snapshot, chain, chainError } = app.state;
  const section = h('section', {}, h('h2', {}, 'Forget-request timing'));
  const deadlineInput = h('input', {
    type: 'number',
    min: '0',
    step: 'any',
    value: String(app.state.deadlineDays),
    'data-testid': 'deadline',
    onchange: (e: Event) => {
      const value = Number((e.target as HTMLInputElement).value);
      if (Number.isFinite(value) && value >= 0) app.state.deadlineDays = value;
      app.render();
    },
  });
  section.append(
    h(
      'p',
      {},
      h('label', {}, 'Deadline (days): ', deadlineInput),
      h('span', { class: 'muted' }, ' (the GDPR allows one month; requests slower than this are flagged)'),
    ),
    h(
      'p',
      { class: 'muted' },
      'Times are attested by the chain: the timestamp of the block of the first anchor covering the FORGET_REQUESTED entry, and of the first covering the ' +
        'UNLEARN_COMPLETED entry that lists the request (the last, when several models unlearned it). A request is at the latest as old as its anchor, ' +
        'so the time shown can be shorter than the real one by up to one anchoring interval. No public route reports server timestamps, so none are shown.',
    ),
  );
  if (!snapshot) return section;
  if (!chain) {
    section.append(
      h('p', { class: 'error' }, `The chain could not be read${chainError ? `: ${chainError}` : ''}; timing needs its block timestamps.`),
    );
    return section;
  }
  const deadline = app.state.deadlineDays * 86_400;
  const now = Date.now() / 1000;
  // An extended request (FORGET_EXTENDED) is judged by its new deadline.
  const timings = applyExtensions(computeForgetTimings(snapshot.entries, chain.checkpoints, deadline, now), buildLifecycle(snapshot.entries).extensions, now);
  const late = timings.filter((t) => t.late);
  const extended = timings.filter((t) => t.extension !== null);
  const done = timings.filter((t) => t.state === 'anchored');
  section.append(
    h(
      'p',
      { 'data-testid': 'timing-summary', class: late.length ? 'error' : '' },
      `${timings.length} forget request(s): ${done.length} unlearned and anchored, ${timings.length - done.length} not yet; ${
        late.length
      } slower than the deadline; ${extended.length} extended (FORGET_EXTENDED).`,
    ),
  );
  if (done.length) {
    const bins = timingHistogram(timings, deadline);
    section.append(timingHistogramChart(bins, deadline, durationUnit(bins.at(-1)!.to)));
  }
  section.append(
    h(
      'table',
      { class: 'timing', 'data-testid': 'timing' },
      h(
        'thead',
        {},
        h(
          'tr',
          {},
          ['request', 'dataset', 'requested (entry, anchor)', 'unlearned (entries)', 'unlearned anchored', 'time', 'state', 'extension'].map((t) =>
            h('th', {}, t),
          ),
        ),
      ),
      h(
        'tbody',
        {},
        timings.map((t) =>
          h(
            'tr',
            { class: t.late ? 'late' : '', 'data-request': t.requestId, 'data-late': String(t.late) },
            h('td', {}, t.requestId),
            h('td', {}, t.datasetId),
            h(
              'td',
              {},
              `#${t.requestIndex}`,
              t.requestAnchor ? `, checkpoint ${t.requestAnchor.number} at ${formatTime(t.requestAnchor.timestamp)}` : ', not anchored',
            ),
            h('td', {}, t.unlearned.map((u) => `#${u.index} (${u.modelId} v${u.modelVersion})`).join(', ') || '—'),
            h('td', {}, t.unlearnAnchor ? `checkpoint ${t.unlearnAnchor.number} at ${formatTime(t.unlearnAnchor.timestamp)}` : '—'),
            h('td', {}, t.seconds === null ? '—' : `${formatDuration(t.seconds)}${t.state === 'anchored' ? '' : ' so far'}`),
            h('td', {}, t.late ? `LATE: ${t.state}` : t.state),
            h(
              'td',
              { 'data-testid': 'extension' },
              t.extension ? `extended to ${t.extension.newDeadline} (entry #${t.extension.index}): ${t.extension.reason}` : '—',
            ),
          ),
        ),
      ),
    ),
  );
  return section;
}
