import type { UnlearnGuarantee } from './events';

/** Significant digits a guarantee's numbers are shown with. */
const DIGITS = 3;

function short(value: number): string {
  return Number(value.toPrecision(DIGITS)).toString();
}

/**
 * A guarantee as one line for people (the CLI, the portal, receipts): an approximate one is never called
 * forgotten without its qualifier. An UNLEARN_COMPLETED from before guarantees were recorded was exact.
 */
export function describeGuarantee(guarantee: UnlearnGuarantee | null | undefined): string {
  if (!guarantee || guarantee.kind === 'exact') return 'exact: the bytes a training without the samples gives';
  if (guarantee.kind === 'certified') {
    const budget = `residual bound ${short(guarantee.residualBound)}, budget used ${short(guarantee.budgetUsed)} of ${short(guarantee.budget)}`;
    const how = guarantee.retrained ? 'retrained from scratch (the removal would have exceeded the budget), which restarts it' : 'one Newton step';
    return `certified removal, (ε = ${short(guarantee.epsilon)}, δ = ${short(guarantee.delta)}): ${how}; ${budget}`;
  }
  return `approximately forgotten (${guarantee.algorithm}, ${guarantee.steps} steps): no guarantee, only evidence`;
}

/** The guarantee's kind as a word, 'exact' for entries from before guarantees were recorded. */
export function guaranteeKind(guarantee: UnlearnGuarantee | null | undefined): UnlearnGuarantee['kind'] {
  return guarantee?.kind ?? 'exact';
}
