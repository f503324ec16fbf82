// A data subject's page: paste a sample commitment (or the receipt JSON the service gave) and see it verified
// in the browser: every entry re-hashed, the commitment proven in its batch, every proof against the chain.
import { COMMITMENT_PATTERN, verifyReceipt, type ReceiptEntryCheck, type VerifyReceiptReport } from '@lethe/verifier';
import { browserFetch } from '../data';
import { formatTime, h, short } from '../dom';
import { errorText } from '../state';
import type { PortalApp } from './app';
import { failureList } from './failures';

let last: { report: VerifyReceiptReport | null; error: string | null; ms: number; pasted: 'commitment' | 'receipt' } | null = null;
let input = '';

/**
 * What the subject pasted: a commitment, or a receipt (GET /v1/receipts/:commitment as JSON), in which case
 * the verifier gets that receipt instead of asking the service (everything else is still read live).
 */
export function parsePasted(text: string): { commitment: string; receipt?: string } {
  const trimmed = text.trim();
  if (COMMITMENT_PATTERN.test(trimmed.toLowerCase())) return { commitment: trimmed.toLowerCase() };
  let parsed: unknown;
  try {
    parsed = JSON.parse(trimmed);
  } catch {
    throw new Error('paste a commitment (64 hexadecimal characters) or a receipt (the JSON of GET /v1/receipts/<commitment>)');
  }
  const commitment = (parsed as { commitment?: unknown })?.commitment;
  if (typeof commitment !== 'string' || !COMMITMENT_PATTERN.test(commitment))
    throw new Error('the receipt has no "commitment" of 64 lowercase hexadecimal characters');
  return { commitment, receipt: trimmed };
}

/** Runs verifyReceipt for what was pasted; resolves with the report and how long it took (ms). */
export async function verifyPasted(
  text: string,
  apiUrl: string,
  rpcUrl: string,
  contract?: string,
): Promise<{ report: VerifyReceiptReport; ms: number; pasted: 'commitment' | 'receipt' }> {
  const { commitment, receipt } = parsePasted(text);
  const base = browserFetch;
  const fetchImpl: typeof fetch = receipt
    ? async (request, init) => {
        const url = new URL(typeof request === 'string' ? request : request instanceof URL ? request.href : request.url);
        if (url.pathname.endsWith(`/v1/receipts/${commitment}`))
          return new Response(receipt, { status: 200, headers: { 'content-type': 'application/json' } });
        return base(request, init);
      }
    : base;
  const started = performance.now();
  const report = await verifyReceipt({ apiUrl, rpcUrl, commitment, contract: contract || undefined, timeoutMs: 30_000, fetch: fetchImpl });
  return { report, ms: performance.now() - started, pasted: receipt ? 'receipt' : 'commitment' };
}

let verifying = false;

export function renderReceipt(app: PortalApp): HTMLElement {
  const textarea = h('textarea', {
    rows: 6,
    'data-testid': 'receipt-input',
    placeholder: 'a commitment (64 hex characters) or a receipt (JSON)',
    oninput: (e: Event) => (input = (e.target as HTMLTextAreaElement).value),
  }) as HTMLTextAreaElement;
  textarea.value = input;
  const result = h('div', { 'data-testid': 'receipt-output' }, verifying ? h('p', { class: 'muted' }, 'Verifying…') : renderResult());
  const button = h('button', { class: 'primary', 'data-testid': 'receipt-verify', disabled: verifying }, 'Verify my receipt');
  button.addEventListener('click', async () => {
    input = textarea.value;
    verifying = true;
    app.render();
    try {
      const { state } = app;
      last = { ...(await verifyPasted(input, state.apiUrl, state.rpcUrl, state.contract)), error: null };
    } catch (err) {
      last = { report: null, error: errorText(err), ms: 0, pasted: 'commitment' };
    } finally {
      verifying = false;
      app.render();
    }
  });
  return h(
    'section',
    {},
    h('h2', {}, 'Check my data'),
    h(
      'p',
      { class: 'muted' },
      'The commitment of your sample is in the receipt the service gave you. Paste it (or the whole receipt) to see where your data was learned and where its forgetting was requested, proven against the chain from this browser.',
    ),
    textarea,
    h('p', {}, button),
    result,
  );
}

function renderResult(): HTMLElement {
  if (!last) return h('div');
  if (last.error)
    return h('p', { class: 'result fail', 'data-testid': 'receipt-result', 'data-ok': 'false' }, `Cannot verify: ${last.error}`);
  const report = last.report!;
  const entry = (label: string, e: ReceiptEntryCheck | null, extra: string) =>
    h(
      'li',
      { class: e?.verified ? 'good' : 'bad', 'data-verified': String(Boolean(e?.verified)) },
      h('strong', {}, `${label}: `),
      e ? `entry ${e.index} (${e.type ?? 'not a valid event'})${extra}` : 'missing',
      e?.anchored
        ? ` · proven against checkpoint ${e.anchored.anchor} (size ${e.anchored.treeSize}) anchored ${formatTime(e.anchored.timestamp)}`
        : ' · not proven against the chain',
      e?.anchored?.txHash ? h('span', {}, ' · tx ', short(e.anchored.txHash, 12), ` in block ${e.anchored.blockNumber}`) : null,
    );
  return h(
    'div',
    {},
    h(
      'p',
      { class: `result ${report.ok ? 'pass' : 'fail'}`, 'data-testid': 'receipt-result', 'data-ok': String(report.ok) },
      report.ok ? 'PASS' : 'FAIL',
      h(
        'span',
        { class: 'muted', 'data-testid': 'receipt-ms' },
        ` · verified in ${last.ms.toFixed(1)} ms in this browser (${last.pasted} pasted) · chain ${report.chainId ?? '?'}, contract ${
          report.contract ?? '?'
        }`,
      ),
    ),
    h(
      'ul',
      { class: 'receipt' },
      entry('learned', report.learned, report.learned ? `, position ${report.learned.position} of ${report.learned.count}` : ''),
      report.forgetRequests.map((r) => entry('forgetting requested', r, `, request ${r.requestId} (${r.state} as the service says)`)),
      report.forgetRequests.length === 0 ? h('li', {}, 'No forget request names this commitment.') : null,
      report.retirement.learnedIn.map((b) =>
        entry('learned by', b, `, model ${b.modelId ?? '?'} version ${b.modelVersion ?? '?'} (shard ${b.shard ?? '?'}, slice ${b.slice ?? '?'})`),
      ),
      report.retirement.models.flatMap((m) =>
        m.versions.map((v) =>
          h(
            'li',
            { class: v.retiredBy === null ? 'bad' : 'good', 'data-retired': String(v.retiredBy !== null) },
            h('strong', {}, `model ${m.modelId} version ${v.modelVersion}: `),
            v.retiredBy === null ? 'learned your data and is not retired' : `retired in entry ${v.retiredBy} (its file deleted, no longer served)`,
          ),
        ),
      ),
      report.retirement.checkpointsDeleted.map((d) =>
        entry('checkpoints deleted', d, `, ${d.checkpoints} of model ${d.modelId ?? '?'} for ${d.forgetRequestIds.join(', ')}`),
      ),
      h(
        'li',
        { class: 'muted' },
        `The service says the sample's data is ${
          report.forgottenClaimed ? 'destroyed (forgotten)' : 'kept'
        }; this cannot be checked from outside once forgotten.`,
      ),
    ),
    failureList(report.failures, { 'data-testid': 'receipt-failures' }),
  );
}
