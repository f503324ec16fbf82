import { LabeledExample, MNIST_CLASSES, MNIST_FEATURES, loadMnist } from '@lethe/unlearning';
import { DemoError } from './errors';

export { MNIST_CLASSES, MNIST_FEATURES };

/** Digits each subject owns: the demo's data subjects are people who each gave a few handwritten digits. */
export const DIGITS_PER_SUBJECT = 3;

export interface DemoSample extends LabeledExample {
  subjectId: string;
}

/**
 * The first `count` MNIST digits (read by index through @lethe/unlearning's loadMnist, never the package's
 * set(), which shuffles with Math.random), taken round-robin over the ten classes so that any count is
 * balanced: the 1st 0, the 1st 1, ..., the 1st 9, the 2nd 0, ... Every DIGITS_PER_SUBJECT consecutive
 * digits belong to one subject, `subject-<n>` from 1.
 */
export function buildDemoSamples(count: number): DemoSample[] {
  const all = loadMnist();
  if (count > all.length) throw new DemoError(`--samples: at most ${all.length} (the digits the mnist package holds), got ${count}`);
  const byClass: LabeledExample[][] = Array.from({ length: MNIST_CLASSES }, () => []);
  for (const example of all) byClass[example.label].push(example);
  const ordered: LabeledExample[] = [];
  for (let rank = 0; ordered.length < count; rank++) {
    for (const examples of byClass) if (rank < examples.length && ordered.length < count) ordered.push(examples[rank]);
  }
  return ordered.map((example, position) => ({ ...example, subjectId: `subject-${Math.floor(position / DIGITS_PER_SUBJECT) + 1}` }));
}
