// The failures of a check as the Verify and "Check my data" pages list them: code, where, message.
import type { VerificationFailure } from '@lethe/verifier';
import { describeWhere } from '../checks';
import { h } from '../dom';

/** A list of failures (null when there are none); `attributes` go on the list element. */
export function failureList(failures: readonly VerificationFailure[], attributes: Record<string, string> = {}): HTMLElement | null {
  if (failures.length === 0) return null;
  return h(
    'ul',
    { class: 'failures', ...attributes },
    failures.map((f) =>
      h(
        'li',
        { class: 'failure', 'data-code': f.code, 'data-index': f.index ?? '', 'data-anchor': f.anchor ?? '' },
        h('strong', {}, f.code),
        describeWhere(f) ? ` at ${describeWhere(f)}: ` : ': ',
        f.message,
      ),
    ),
  );
}
