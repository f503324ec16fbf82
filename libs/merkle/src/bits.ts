// Bit arithmetic on safe integers (< 2^53). JavaScript's bitwise operators work on 32 bits, so each value
// is split into a high and a low 32-bit half.
const TWO_32 = 0x1_0000_0000;

function hi(x: number): number {
  return Math.floor(x / TWO_32);
}

function lo(x: number): number {
  return x % TWO_32 >>> 0;
}

/** Number of bits needed to write x (0 for 0): Go's bits.Len64. */
export function bitLength(x: number): number {
  const h = hi(x);
  return h !== 0 ? 64 - Math.clz32(h) : 32 - Math.clz32(lo(x));
}

/** Number of set bits. */
export function popCount(x: number): number {
  return popCount32(hi(x)) + popCount32(lo(x));
}

function popCount32(v: number): number {
  v = v - ((v >>> 1) & 0x55555555);
  v = (v & 0x33333333) + ((v >>> 2) & 0x33333333);
  return (Math.imul((v + (v >>> 4)) & 0x0f0f0f0f, 0x01010101) >>> 24) & 0xff;
}

/** Number of trailing zero bits; 64 for 0. */
export function trailingZeros(x: number): number {
  const l = lo(x);
  if (l !== 0) return 31 - Math.clz32(l & -l);
  const h = hi(x);
  return h !== 0 ? 32 + 31 - Math.clz32(h & -h) : 64;
}

export function xor(a: number, b: number): number {
  return ((hi(a) ^ hi(b)) >>> 0) * TWO_32 + ((lo(a) ^ lo(b)) >>> 0);
}

/** x >> n for safe integers. */
export function shiftRight(x: number, n: number): number {
  return Math.floor(x / 2 ** n);
}

/** x << n for results that are safe integers. */
export function shiftLeft(x: number, n: number): number {
  return x * 2 ** n;
}

/** Whether bit n of x is set. */
export function bitIsSet(x: number, n: number): boolean {
  return shiftRight(x, n) % 2 === 1;
}
