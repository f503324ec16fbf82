// The failures of a check as the Verify and "Check my data" pages list them: code, where, message.
import type { VerificationFailure, VerificationWarning } from '@lethe/verifier';
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

/** What verified but is flagged (a RECOVERY: the contracts left and the anchors disregarded), or null. */
export function warningList(warnings: readonly VerificationWarning[]): HTMLElement | null {
  if (warnings.length === 0) return null;
  return h(
    'ul',
    { class: 'warnings', 'data-testid': 'verify-warnings' },
    warnings.map((w) =>
      h(
        'li',
        { class: 'warning', 'data-code': w.code, 'data-contract': w.contract, 'data-vouched-size': w.vouchedSize, 'data-disregarded': w.disregardedSizes.join(',') },
        h('strong', {}, w.code),
        ': ',
        w.message,
      ),
    ),
  );
}
