// The log as a timeline of learn, forget and anchor events, filterable by model, dataset and type.
import { formatTime, h, short } from '../dom';
import { LEDGER_EVENT_TYPES } from '@lethe/events';
import { buildTimeline, filterTimeline, firstCovering, type TimelineFilter } from '../derive';
import type { PortalApp } from './app';

const filter: TimelineFilter = {};

export function renderTimeline(app: PortalApp): HTMLElement {
  const { snapshot, chain } = app.state;
  if (!snapshot) return h('p', { class: 'muted' }, 'The log is not loaded.');
  const items = buildTimeline(snapshot.entries);
  const models = [...new Set(items.map((i) => i.modelId).filter((m): m is string => m !== null))].sort();
  const datasets = [...new Set(items.map((i) => i.datasetId).filter((d): d is string => d !== null))].sort();
  const select = (name: keyof TimelineFilter, label: string, options: string[]) =>
    h(
      'label',
      {},
      `${label} `,
      h(
        'select',
        {
          name,
          'data-testid': `filter-${name}`,
          onchange: (e: Event) => {
            filter[name] = (e.target as HTMLSelectElement).value || undefined;
            app.render();
          },
        },
        h('option', { value: '' }, 'all'),
        options.map((o) => h('option', { value: o, selected: filter[name] === o }, o)),
      ),
    );
  const shown = filterTimeline(items, filter);
  const byIndex = new Map(snapshot.entries.map((e) => [e.index, e]));
  return h(
    'section',
    {},
    h('h2', {}, 'Timeline'),
    h(
      'p',
      { class: 'muted' },
      `${snapshot.entries.length} entries (service checkpoint ${snapshot.checkpoint.treeSize}, root `,
      short(snapshot.checkpoint.rootHash, 16),
      `). ${app.state.snapshotVerified ? 'These are the entries the last verification read.' : 'Not verified yet: press Verify.'}`,
    ),
    h(
      'div',
      { class: 'filters' },
      select('modelId', 'Model', models),
      select('datasetId', 'Dataset', datasets),
      select('type', 'Type', ['learn', 'forget', 'anchor', ...LEDGER_EVENT_TYPES]),
      h('span', { class: 'muted', 'data-testid': 'timeline-count' }, `${shown.length} shown`),
    ),
    h(
      'ol',
      { class: 'timeline', 'data-testid': 'timeline' },
      shown.map((item) => {
        const anchor = chain ? firstCovering(chain.checkpoints, item.index) : null;
        return h(
          'li',
          { class: `event ${item.kind}`, 'data-index': item.index, 'data-type': item.type },
          h('span', { class: 'index' }, `#${item.index}`),
          h('span', { class: `badge ${item.kind}` }, item.type),
          h('span', { class: 'summary' }, item.summary),
          h(
            'span',
            { class: 'meta' },
            item.modelId ? `model ${item.modelId}` : null,
            item.datasetId ? ` · dataset ${item.datasetId}` : null,
            ' · leaf ',
            short(byIndex.get(item.index)?.leafHash ?? '', 8),
            anchor ? ` · anchored in checkpoint ${anchor.number} at ${formatTime(anchor.timestamp)}` : chain ? ' · not anchored yet' : '',
          ),
        );
      }),
    ),
  );
}
