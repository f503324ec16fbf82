// The Verify button: every check runs here, in the browser, against the chain's JSON-RPC directly.
import { h } from '../dom';
import type { PortalApp } from './app';
import { failureList, warningList } from './failures';

export function renderVerify(app: PortalApp): HTMLElement {
  const { verification, verifying } = app.state;
  const section = h(
    'section',
    {},
    h('h2', {}, 'Verify'),
    h(
      'p',
      { class: 'muted' },
      'Downloads every entry from the service, re-hashes it, recomputes the root, and compares it with the checkpoints AuditAnchor holds, read from the chain ' +
        'through the RPC URL above (edit it, or the contract, to check against another endpoint). Nothing here trusts the service.',
    ),
    h(
      'button',
      { class: 'primary', 'data-testid': 'verify', disabled: verifying, onclick: () => void app.verify() },
      verifying ? 'Verifying…' : 'Verify',
    ),
  );
  if (!verification) return section;
  const result = h(
    'p',
    { class: `result ${verification.ok ? 'pass' : 'fail'}`, 'data-testid': 'verify-result', 'data-ok': String(verification.ok) },
    verification.ok ? 'PASS' : 'FAIL',
    h(
      'span',
      { class: 'muted' },
      ` · ${verification.checks.filter((c) => c.status === 'pass').length} of ${verification.checks.length} checks passed in ${Math.round(
        verification.ms,
      )} ms` + (verification.treeSize !== null ? ` · ${verification.treeSize} entries` : ''),
    ),
  );
  const checks = h(
    'ol',
    { class: 'checks', 'data-testid': 'checks' },
    verification.checks.map((check) =>
      h(
        'li',
        { class: `check ${check.status.replace(' ', '-')}`, 'data-check': check.id, 'data-status': check.status },
        h('span', { class: 'status' }, check.status === 'pass' ? 'PASS' : check.status === 'fail' ? 'FAIL' : 'NOT RUN'),
        h('span', { class: 'title' }, check.title),
        h('span', { class: 'detail muted' }, check.detail),
        failureList(check.failures),
      ),
    ),
  );
  // A RECOVERY is shown between the verdict and the checks, PASS or FAIL.
  section.append(result, warningList(verification.warnings) ?? '', checks);
  return section;
}
