// Lethe's regulator portal: the log, its anchors, model lineage and evidence, forget-request timing, and a
// Verify button whose checks run in this browser against the chain. Served by the service at /portal.
import './style.css';
import { verifyLog, verifyModel, type VerifyModelReport } from '@lethe/verifier';
import { buildChecks } from './checks';
import { RecordingFetch, loadPortalConfig, loadServerAnchors, loadSnapshot, readChain, toLogEntry, type Snapshot } from './data';
import { buildModelVersions } from './derive';
import { h, replace } from './dom';
import { errorText, initialState } from './state';
import type { PortalApp } from './views/app';
import { renderAnchors } from './views/anchors';
import { renderModels } from './views/models';
import { renderReceipt } from './views/receipt';
import { renderTiming } from './views/timing';
import { renderTimeline } from './views/timeline';
import { renderVerify } from './views/verify';

/** Where the service serves the portal (vite.config.ts `base`). */
const BASE = '/portal/';

const PAGES: { path: string; title: string; render: (app: PortalApp) => HTMLElement }[] = [
  { path: '', title: 'Timeline', render: renderTimeline },
  { path: 'anchors', title: 'Anchors', render: renderAnchors },
  { path: 'models', title: 'Models', render: renderModels },
  { path: 'timing', title: 'Forget timing', render: renderTiming },
  { path: 'verify', title: 'Verify', render: renderVerify },
  { path: 'receipt', title: 'Check my data', render: renderReceipt },
];

const root = document.getElementById('app')!;
const state = initialState(window.location.origin);

function currentPage(): (typeof PAGES)[number] {
  const path = window.location.pathname.startsWith(BASE) ? window.location.pathname.slice(BASE.length).replace(/\/$/, '') : '';
  return PAGES.find((p) => p.path === path) ?? PAGES[0];
}

const app: PortalApp = {
  state,
  render,
  navigate(page: string) {
    window.history.pushState(null, '', BASE + page);
    render();
  },
  reload,
  verify,
};

function render(): void {
  const page = currentPage();
  const rpcInput = h('input', {
    type: 'url',
    size: 40,
    value: state.rpcUrl,
    'data-testid': 'rpc-url',
    placeholder: 'https://… (a JSON-RPC endpoint of the chain)',
  }) as HTMLInputElement;
  const contractInput = h('input', {
    type: 'text',
    size: 44,
    value: state.contract,
    'data-testid': 'contract',
    placeholder: "0x… (blank: from the log's latest ANCHORED entry)",
  }) as HTMLInputElement;
  const apply = () => {
    state.rpcUrl = rpcInput.value.trim();
    state.contract = contractInput.value.trim();
    state.verification = null;
    void reload();
  };
  replace(
    root,
    h(
      'header',
      {},
      h('h1', {}, 'Lethe', h('span', { class: 'muted' }, ' · regulator portal')),
      h(
        'form',
        {
          class: 'settings',
          onsubmit: (e: Event) => {
            e.preventDefault();
            apply();
          },
        },
        h('label', {}, 'Service ', h('code', { 'data-testid': 'api-url' }, state.apiUrl)),
        h('label', {}, 'Chain RPC URL ', rpcInput),
        h('label', {}, 'AuditAnchor ', contractInput),
        h('button', { type: 'submit', 'data-testid': 'apply-settings' }, 'Apply'),
      ),
      h(
        'nav',
        {},
        PAGES.map((p) =>
          h(
            'a',
            {
              href: BASE + p.path,
              class: p === page ? 'active' : '',
              'data-page': p.path || 'timeline',
              onclick: (e: Event) => {
                e.preventDefault();
                app.navigate(p.path);
              },
            },
            p.title,
          ),
        ),
      ),
    ),
    state.configError
      ? h(
          'p',
          { class: 'error', 'data-testid': 'config-error' },
          `The portal's settings could not be read (enter the RPC URL above): ${state.configError}`,
        )
      : null,
    state.loadError ? h('p', { class: 'error', 'data-testid': 'load-error' }, `The log could not be read: ${state.loadError}`) : null,
    state.verification && !state.verification.ok
      ? h(
          'p',
          { class: 'error banner', 'data-testid': 'failed-banner' },
          'The last verification FAILED: what these pages show is not proven (see Verify).',
        )
      : null,
    h('main', {}, page.render(app)),
  );
}

/** Reads the log, the service's anchors and the chain with the settings shown. */
async function reload(): Promise<void> {
  state.loadError = null;
  const [snapshot, anchors] = await Promise.allSettled([loadSnapshot(state.apiUrl), loadServerAnchors(state.apiUrl)]);
  if (snapshot.status === 'fulfilled') {
    state.snapshot = snapshot.value;
    state.snapshotVerified = false;
  } else state.loadError = errorText(snapshot.reason);
  state.anchors = anchors.status === 'fulfilled' ? anchors.value : null;
  state.anchorsError = anchors.status === 'rejected' ? errorText(anchors.reason) : null;
  await refreshChain();
  document.body.dataset.loaded = 'true';
  render();
}

async function refreshChain(): Promise<void> {
  state.chain = null;
  state.chainError = null;
  if (!state.rpcUrl) {
    state.chainError = 'no RPC URL: enter one above';
    return;
  }
  const given = state.contract && state.contract !== state.config?.contract ? 'given' : 'service';
  try {
    state.chain = await readChain(
      state.apiUrl,
      state.rpcUrl,
      state.contract || null,
      given,
      (state.anchors ?? []).map((a) => a.txHash),
    );
  } catch (err) {
    state.chainError = errorText(err);
  }
}

/** Every check, in the browser; the pages then show the entries this run verified. */
async function verify(): Promise<void> {
  state.verifying = true;
  render();
  const started = performance.now();
  const recording = new RecordingFetch();
  const displayed = state.snapshot?.entries ?? null;
  try {
    const contract = state.contract || undefined;
    const log = await verifyLog({ apiUrl: state.apiUrl, rpcUrl: state.rpcUrl, contract, fetch: recording.fetch, timeoutMs: 30_000 });
    const verifiedEntries = [...recording.entries.values()]
      .filter((e) => log.treeSize !== null && e.index < log.treeSize)
      .sort((a, b) => a.index - b.index);
    const verifiedLog = verifiedEntries.map(toLogEntry);
    const verified: Snapshot | null =
      log.treeSize !== null && log.rootHash !== null && verifiedLog.length === log.treeSize
        ? { checkpoint: { treeSize: log.treeSize, rootHash: log.rootHash }, entries: verifiedLog }
        : null;
    // The latest version of each model: its report covers every unlearning step before it.
    const latest = new Map<string, number>();
    for (const v of buildModelVersions(verified?.entries ?? displayed ?? []))
      latest.set(v.modelId, Math.max(latest.get(v.modelId) ?? 0, v.modelVersion));
    const models: VerifyModelReport[] = [];
    if (log.chainId !== null) {
      for (const [modelId, modelVersion] of latest) {
        models.push(
          await verifyModel({
            apiUrl: state.apiUrl,
            rpcUrl: state.rpcUrl,
            contract: log.contract ?? contract,
            modelId,
            modelVersion,
            fetch: recording.fetch,
            timeoutMs: 30_000,
          }),
        );
      }
    }
    const leaves = new Map(verifiedLog.map((e) => [e.index, e.leafHash]));
    const checks = buildChecks(log, models, displayed, leaves);
    state.verification = {
      ok: log.ok && models.every((m) => m.ok) && checks.every((c) => c.status === 'pass'),
      checks,
      warnings: log.warnings,
      startedAt: Date.now(),
      ms: performance.now() - started,
      treeSize: log.treeSize,
      rootHash: log.rootHash,
    };
    if (verified) {
      state.snapshot = verified;
      state.snapshotVerified = true;
    }
    await refreshChain();
  } catch (err) {
    state.verification = {
      ok: false,
      checks: [{ id: 'run', title: 'The verification ran', status: 'fail', detail: errorText(err), failures: [] }],
      warnings: [],
      startedAt: Date.now(),
      ms: performance.now() - started,
      treeSize: null,
      rootHash: null,
    };
  } finally {
    state.verifying = false;
    render();
  }
}

async function start(): Promise<void> {
  window.addEventListener('popstate', render);
  try {
    state.config = await loadPortalConfig(state.apiUrl);
    state.rpcUrl = state.config.rpcUrl ?? '';
    state.contract = state.config.contract ?? '';
  } catch (err) {
    state.configError = errorText(err);
  }
  render();
  await reload();
}

void start();
