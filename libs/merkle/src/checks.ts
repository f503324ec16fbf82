import { MerkleError } from './errors';

/** Throws INVALID_ARGUMENT unless `value` is a safe integer >= 0. */
export function checkCount(value: unknown, field: string): asserts value is number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
    throw new MerkleError('INVALID_ARGUMENT', `${field} must be a safe integer >= 0, got ${describe(value)}`, {
      field,
    });
  }
}

/** Checks that index and size are safe integers and index < size: `index 9 is beyond size 8`. */
export function checkIndex(index: unknown, size: unknown, indexField = 'index', sizeField = 'size'): void {
  checkCount(index, indexField);
  checkCount(size, sizeField);
  if (index >= size) {
    throw new MerkleError('INVALID_ARGUMENT', `${indexField} ${index} is beyond ${sizeField} ${size}`, {
      field: indexField,
      got: index,
      want: size,
    });
  }
}

/** Checks that size1 <= size2 and both are safe integers: `size1 9 is beyond size2 8`. */
export function checkSizes(size1: unknown, size2: unknown, field1 = 'size1', field2 = 'size2'): void {
  checkCount(size1, field1);
  checkCount(size2, field2);
  if (size1 > size2) {
    throw new MerkleError('INVALID_ARGUMENT', `${field1} ${size1} is beyond ${field2} ${size2}`, {
      field: field1,
      got: size1,
      want: size2,
    });
  }
}

function describe(value: unknown): string {
  if (typeof value === 'number' || typeof value === 'bigint') return String(value);
  if (typeof value === 'string') return JSON.stringify(value);
  return value === null ? 'null' : typeof value;
}
