// pure-rand 8 publishes its generators only through package "exports", which this tsconfig's
// node10 module resolution cannot see; the runtime require resolves them.
// eslint-disable-next-line @typescript-eslint/no-var-requires
const { xoroshiro128plusFromState } = require('pure-rand/generator/xoroshiro128plus') as {
  xoroshiro128plusFromState(state: readonly number[]): { next(): number };
};
import { sha256 } from './hash';

/**
 * A seeded stream of uniform floats and Gaussians (xoroshiro128+ from pure-rand); never Math.random.
 * The whole 128-bit state comes from SHA-256 of a label such as `init|<hyperparamsHash>|shard 3`.
 */
export class SeededRandom {
  private readonly generator: { next(): number };
  private spare: number | undefined;

  constructor(label: string) {
    const digest = sha256('lethe-prng|', label);
    const state = [digest.readInt32LE(0), digest.readInt32LE(4), digest.readInt32LE(8), digest.readInt32LE(12) | 1];
    this.generator = xoroshiro128plusFromState(state);
  }

  /** Uniform in [0, 1) with 53 random bits. */
  nextFloat(): number {
    const hi = (this.generator.next() >>> 0) >>> 5; // 27 bits
    const lo = (this.generator.next() >>> 0) >>> 6; // 26 bits
    return (hi * 67108864 + lo) / 9007199254740992;
  }

  /**
   * True with probability exactly k / 2^53 (k an integer in [0, 2^53]): the 53-bit uniform of nextFloat
   * compared with k, its low 26 bits drawn only when the high 27 bits tie (once in 2^27 draws).
   */
  nextBernoulli53(k: number): boolean {
    const kHi = Math.floor(k / 67108864);
    const hi = (this.generator.next() >>> 0) >>> 5;
    if (hi !== kHi) return hi < kHi;
    const lo = (this.generator.next() >>> 0) >>> 6;
    return lo < k - kHi * 67108864;
  }

  /** Fills `out` with standard normals (the values nextGaussian would give, in order). */
  fillGaussian(out: Float32Array): void {
    for (let i = 0; i < out.length; i++) out[i] = this.nextGaussian();
  }

  /** Standard normal by Box-Muller (both values used). */
  nextGaussian(): number {
    if (this.spare !== undefined) {
      const s = this.spare;
      this.spare = undefined;
      return s;
    }
    let u = 0;
    while (u === 0) u = this.nextFloat();
    const v = this.nextFloat();
    const r = Math.sqrt(-2 * Math.log(u));
    this.spare = r * Math.sin(2 * Math.PI * v);
    return r * Math.cos(2 * Math.PI * v);
  }
}
