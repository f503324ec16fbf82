import { shiftLeft, shiftRight } from './bits';

/**
 * A perfect subtree: level 0 = leaves; node (level, index) covers leaves [index << level, (index + 1) << level).
 */
export interface NodeId {
  level: number;
  index: number;
}

/** The leaves [begin, end) that a node covers. */
export function nodeCoverage(id: NodeId): [begin: number, end: number] {
  return [shiftLeft(id.index, id.level), shiftLeft(id.index + 1, id.level)];
}

export function parentOf(id: NodeId): NodeId {
  return { level: id.level + 1, index: shiftRight(id.index, 1) };
}

export function siblingOf(id: NodeId): NodeId {
  return { level: id.level, index: id.index % 2 === 0 ? id.index + 1 : id.index - 1 };
}

/**
 * The perfect subtrees that cover leaves [begin, end), left to right: at most two descending runs of
 * levels (like transparency-dev/merkle's compact.RangeNodes). Appends to `out` and returns it.
 */
export function rangeNodes(begin: number, end: number, out: NodeId[] = []): NodeId[] {
  // Left part: grow begin by its lowest set bit while that fits before end.
  while (begin < end) {
    let level = 0;
    // Largest level such that begin is aligned to 2^level and begin + 2^level <= end.
    while (begin % 2 ** (level + 1) === 0 && begin + 2 ** (level + 1) <= end) level++;
    out.push({ level, index: shiftRight(begin, level) });
    begin += 2 ** level;
  }
  return out;
}
