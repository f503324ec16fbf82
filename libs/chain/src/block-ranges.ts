import { ChainError } from './errors';

/** An inclusive range of blocks, as eth_getLogs takes it. */
export interface BlockRange {
  fromBlock: number;
  toBlock: number;
}

/**
 * The ranges of at most `size` blocks that cover blocks `fromBlock`..`toBlock` (inclusive) once each, oldest
 * first, or newest first with `order: 'descending'` (to find a recent event in one call). Nothing when
 * `fromBlock` > `toBlock`. Hosted JSON-RPC endpoints refuse eth_getLogs over more than a few thousand blocks.
 */
export function* blockRanges(fromBlock: number, toBlock: number, size: number, order: 'ascending' | 'descending' = 'ascending'): Generator<BlockRange> {
  for (const [name, value] of [['fromBlock', fromBlock], ['toBlock', toBlock]] as const) {
    if (!Number.isSafeInteger(value) || value < 0) throw new ChainError('INVALID_ARGUMENT', `${name} must be a non-negative integer, got ${value}`);
  }
  if (!Number.isSafeInteger(size) || size < 1) throw new ChainError('INVALID_ARGUMENT', `a block range must hold at least 1 block, got ${size}`);
  if (order === 'ascending') {
    for (let from = fromBlock; from <= toBlock; from += size) yield { fromBlock: from, toBlock: Math.min(toBlock, from + size - 1) };
  } else {
    for (let to = toBlock; to >= fromBlock; to -= size) yield { fromBlock: Math.max(fromBlock, to - size + 1), toBlock: to };
  }
}
