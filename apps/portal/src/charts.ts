// Charts as hand-written SVG: grouped bars (evidence with intervals and chance levels, metrics) and a histogram with a deadline line.
import { s } from './dom';
import type { HistogramBin } from './derive';

const SERIES_COLOURS: Record<string, string> = { before: '#8a94a6', after: '#2b6cb0', reference: '#38a169', value: '#2b6cb0' };

export interface GroupedBars {
  title: string;
  categories: string[];
  /** `intervals`: a 95% interval per value, drawn as a whisker over its bar. */
  series: { name: string; values: (number | null)[]; intervals?: ([number, number] | null)[] }[];
  /** Values are in [0, 1] (accuracies, AUC). */
  max?: number;
  /** A level per category drawn as a dashed line across its group (e.g. what chance scores), with its label. */
  marks?: { label: string; values: (number | null)[] };
  /** Written in a category whose every value is null (e.g. "n/a: too few non-members"). */
  nullLabel?: string;
}

/** Bars grouped by category, one colour per series, values printed above the bars, a legend below. */
export function groupedBarChart(chart: GroupedBars): SVGElement {
  const width = 560;
  const height = 240;
  const left = 40;
  const bottom = 200;
  const top = 24;
  const max = chart.max ?? 1;
  const groupWidth = (width - left - 10) / chart.categories.length;
  const barWidth = Math.min(36, (groupWidth - 16) / chart.series.length);
  const y = (v: number) => bottom - ((bottom - top) * Math.max(0, Math.min(v, max))) / max;
  const svg = s('svg', { viewBox: `0 0 ${width} ${height + 20}`, class: 'chart', role: 'img', 'aria-label': chart.title });
  svg.append(s('title', {}, chart.title));
  for (const tick of [0, 0.25, 0.5, 0.75, 1]) {
    const v = tick * max;
    svg.append(
      s('line', { x1: left, x2: width - 10, y1: y(v), y2: y(v), class: 'grid' }),
      s('text', { x: left - 6, y: y(v) + 4, class: 'axis', 'text-anchor': 'end' }, v.toFixed(2)),
    );
  }
  chart.categories.forEach((category, c) => {
    const x0 = left + c * groupWidth + (groupWidth - barWidth * chart.series.length) / 2;
    chart.series.forEach((series, k) => {
      const value = series.values[c];
      if (value === null || value === undefined) return;
      const x = x0 + k * barWidth;
      svg.append(
        s(
          'rect',
          {
            x: x + 1,
            y: y(value),
            width: barWidth - 2,
            height: bottom - y(value),
            fill: SERIES_COLOURS[series.name] ?? '#4a5568',
            'data-series': series.name,
            'data-category': category,
          },
          s('title', {}, `${category}, ${series.name}: ${value.toFixed(4)}`),
        ),
        s('text', { x: x + barWidth / 2, y: y(value) - 3, class: 'value', 'text-anchor': 'middle' }, value.toFixed(2)),
      );
      const interval = series.intervals?.[c];
      if (interval) svg.append(whisker(x + barWidth / 2, y(interval[0]), y(interval[1]), `${category}, ${series.name}: 95% interval ${interval[0].toFixed(4)}–${interval[1].toFixed(4)}`, series.name, category));
    });
    if (chart.nullLabel && chart.series.every((series) => series.values[c] === null || series.values[c] === undefined)) {
      svg.append(s('text', { x: left + c * groupWidth + groupWidth / 2, y: bottom - 6, class: 'axis', 'text-anchor': 'middle' }, chart.nullLabel));
    }
    const mark = chart.marks?.values[c];
    if (mark !== null && mark !== undefined) {
      const from = left + c * groupWidth + 4;
      svg.append(
        s(
          'line',
          { x1: from, x2: from + groupWidth - 8, y1: y(mark), y2: y(mark), class: 'mark', 'data-category': category },
          s('title', {}, `${category}: ${chart.marks!.label} ${mark.toFixed(4)}`),
        ),
      );
    }
    svg.append(s('text', { x: left + c * groupWidth + groupWidth / 2, y: bottom + 16, class: 'axis', 'text-anchor': 'middle' }, category));
  });
  chart.series.forEach((series, k) => {
    const x = left + k * 120;
    svg.append(
      s('rect', { x, y: height, width: 12, height: 12, fill: SERIES_COLOURS[series.name] ?? '#4a5568' }),
      s('text', { x: x + 16, y: height + 10, class: 'axis' }, series.name),
    );
  });
  if (chart.marks) {
    const x = left + chart.series.length * 120;
    svg.append(
      s('line', { x1: x, x2: x + 14, y1: height + 6, y2: height + 6, class: 'mark' }),
      s('text', { x: x + 18, y: height + 10, class: 'axis' }, chart.marks.label),
    );
  }
  return svg;
}

/** A vertical interval from y `low` to y `high` with caps, over a bar centred at x. */
function whisker(x: number, low: number, high: number, title: string, series: string, category: string): SVGElement {
  const cap = 4;
  return s(
    'g',
    { class: 'interval', 'data-series': series, 'data-category': category },
    s('title', {}, title),
    s('line', { x1: x, x2: x, y1: low, y2: high }),
    s('line', { x1: x - cap, x2: x + cap, y1: low, y2: low }),
    s('line', { x1: x - cap, x2: x + cap, y1: high, y2: high }),
  );
}

/** A histogram of durations: on-time counts, late counts stacked in red, the deadline as a dashed line. */
export function timingHistogramChart(bins: HistogramBin[], deadlineSeconds: number, unit: { seconds: number; label: string }): SVGElement {
  const width = 640;
  const height = 240;
  const left = 40;
  const bottom = 200;
  const top = 20;
  const maxCount = Math.max(1, ...bins.map((b) => b.onTime + b.late));
  const span = bins.length ? bins[bins.length - 1].to : 1;
  const x = (seconds: number) => left + ((width - left - 40) * seconds) / span;
  const y = (count: number) => bottom - ((bottom - top) * count) / maxCount;
  const svg = s('svg', {
    viewBox: `0 0 ${width} ${height}`,
    class: 'chart',
    role: 'img',
    'aria-label': 'distribution of forget-request durations',
  });
  svg.append(s('title', {}, 'Forget request -> unlearned version anchored: distribution'));
  for (let c = 0; c <= maxCount; c += Math.max(1, Math.ceil(maxCount / 5))) {
    svg.append(
      s('line', { x1: left, x2: width - 10, y1: y(c), y2: y(c), class: 'grid' }),
      s('text', { x: left - 6, y: y(c) + 4, class: 'axis', 'text-anchor': 'end' }, c),
    );
  }
  for (const bin of bins) {
    const x0 = x(bin.from) + 1;
    const w = Math.max(1, x(bin.to) - x(bin.from) - 2);
    const label = `${(bin.from / unit.seconds).toFixed(1)}–${(bin.to / unit.seconds).toFixed(1)} ${unit.label}`;
    if (bin.onTime)
      svg.append(
        s(
          'rect',
          { x: x0, y: y(bin.onTime), width: w, height: bottom - y(bin.onTime), class: 'on-time' },
          s('title', {}, `${label}: ${bin.onTime} on time`),
        ),
      );
    if (bin.late) {
      svg.append(
        s(
          'rect',
          { x: x0, y: y(bin.onTime + bin.late), width: w, height: y(bin.onTime) - y(bin.onTime + bin.late), class: 'late' },
          s('title', {}, `${label}: ${bin.late} late`),
        ),
      );
    }
  }
  for (let i = 0; i <= 4; i++) {
    const seconds = (span * i) / 4;
    svg.append(
      s(
        'text',
        { x: x(seconds), y: bottom + 16, class: 'axis', 'text-anchor': 'middle' },
        `${(seconds / unit.seconds).toFixed(1)} ${unit.label}`,
      ),
    );
  }
  svg.append(
    s('line', { x1: x(deadlineSeconds), x2: x(deadlineSeconds), y1: top - 10, y2: bottom, class: 'deadline' }),
    s('text', { x: x(deadlineSeconds) + 4, y: top, class: 'deadline-label' }, 'deadline'),
  );
  return svg;
}

/** The unit that reads best for durations up to `seconds`. */
export function durationUnit(seconds: number): { seconds: number; label: string } {
  if (seconds >= 2 * 86_400) return { seconds: 86_400, label: 'days' };
  if (seconds >= 2 * 3600) return { seconds: 3600, label: 'h' };
  if (seconds >= 120) return { seconds: 60, label: 'min' };
  return { seconds: 1, label: 's' };
}
