// Anchors: what the service reports (GET /v1/anchors) beside what the chain holds, read from the browser.
import { formatTime, h, short } from '../dom';
import type { PortalApp } from './app';

export function renderAnchors(app: PortalApp): HTMLElement {
  const { anchors, anchorsError, chain, chainError } = app.state;
  const section = h('section', {}, h('h2', {}, 'Anchors'));
  if (chain) {
    section.append(
      h(
        'p',
        { class: 'muted' },
        `Chain ${chain.chainId} at ${chain.rpcUrl}, AuditAnchor ${chain.contract} (${
          chain.contractSource === 'log'
            ? "from the log's latest ANCHORED entry"
            : chain.contractSource === 'given'
            ? 'as entered'
            : "the service's suggestion"
        }): ${chain.checkpoints.length} checkpoint(s), latest block ${chain.blockNumber}.`,
      ),
    );
    if (chain.predecessor) {
      const p = chain.predecessor;
      section.append(
        h(
          'p',
          { class: 'warning', 'data-testid': 'recovery', 'data-predecessor': p.address, 'data-vouched-size': p.vouchedSize },
          h('strong', {}, 'RECOVERY'),
          `: this AuditAnchor succeeds ${p.address}, whose anchorer key was replaced. It goes on from that contract's checkpoint of size ` +
            `${p.vouchedSize} (root ${short(p.vouchedRoot)}), which the operator vouched for; anchors on ${p.address} beyond it are ` +
            'disregarded (Verify lists them).',
        ),
      );
    }
  } else if (chainError) {
    section.append(h('p', { class: 'error', 'data-testid': 'chain-error' }, `The chain could not be read: ${chainError}`));
  }
  if (anchorsError) section.append(h('p', { class: 'error' }, `GET /v1/anchors failed: ${anchorsError}`));
  if (!anchors) return section;
  const bySize = new Map((chain?.checkpoints ?? []).map((c) => [c.treeSize, c]));
  section.append(
    h(
      'table',
      { class: 'anchors', 'data-testid': 'anchors' },
      h(
        'thead',
        {},
        h(
          'tr',
          {},
          [
            'checkpoint',
            'tree size',
            'root',
            'transaction',
            'block',
            'block time',
            'confirmations (chain)',
            'confirmations (service)',
            'ANCHORED entry',
            'on chain',
          ].map((t) => h('th', {}, t)),
        ),
      ),
      h(
        'tbody',
        {},
        anchors.map((a) => {
          const onChain = bySize.get(a.treeSize);
          const tx = chain?.transactions.get(a.txHash);
          const here = chain && a.chainId === chain.chainId && a.contract === chain.contract;
          let verdict: string;
          let ok: boolean | null = null;
          if (!chain) verdict = 'chain not read';
          else if (!here && a.chainId === chain.chainId && a.contract === chain.predecessor?.address)
            verdict = `on the predecessor ${a.contract}, before the recovery (Verify checks it there)`;
          else if (!here) verdict = `on chain ${a.chainId}, contract ${a.contract}: not this chain`;
          else if (!onChain) (verdict = 'no checkpoint of this size on chain'), (ok = false);
          else if (onChain.rootHash !== a.rootHash) (verdict = `chain root ${onChain.rootHash.slice(0, 10)}… differs`), (ok = false);
          else if (tx === undefined) verdict = 'root matches (transaction not read)';
          else if (tx === null) (verdict = 'transaction not on chain'), (ok = false);
          else if (!tx.succeeded || tx.blockNumber !== a.blockNumber || !tx.anchoredSizes.includes(a.treeSize))
            (verdict = 'transaction does not anchor this'), (ok = false);
          else (verdict = 'root and transaction match'), (ok = true);
          const confirmations = chain && here ? Math.max(0, chain.blockNumber - a.blockNumber + 1) : null;
          return h(
            'tr',
            { class: ok === false ? 'bad' : ok ? 'good' : '', 'data-tree-size': a.treeSize },
            h('td', {}, onChain ? `#${onChain.number}` : '—'),
            h('td', {}, a.treeSize),
            h('td', {}, short(a.rootHash)),
            h('td', {}, short(a.txHash, 12)),
            h('td', {}, a.blockNumber),
            h('td', {}, onChain ? formatTime(onChain.timestamp) : '—'),
            h('td', {}, confirmations ?? '—'),
            h('td', {}, a.confirmations ?? '—'),
            h('td', {}, `#${a.ledgerIndex}`),
            h('td', { class: 'verdict' }, verdict),
          );
        }),
      ),
    ),
  );
  if (anchors.length === 0) section.append(h('p', { class: 'muted' }, 'The service reports no confirmed anchor yet.'));
  return section;
}
