// Seeded pseudo-random numbers for the benches, so that every run asks for the same work and runs compare.

/** xorshift32: the same seed gives the same sequence of unsigned 32-bit integers (seed 0 counts as 1). */
export function xorshift32(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return x >>> 0;
  };
}

/** xorshift32's numbers as fractions in [0, 1). */
export function seededRandom(seed: number): () => number {
  const next = xorshift32(seed);
  return () => next() / 2 ** 32;
}
