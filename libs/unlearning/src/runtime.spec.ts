import { configureHeapForTraining } from './runtime';

describe('configureHeapForTraining', () => {
  it('sets a heap growing percent and refuses values V8 would misread', () => {
    expect(() => configureHeapForTraining()).not.toThrow();
    expect(() => configureHeapForTraining(0)).not.toThrow(); // 0 is V8's default (its own heuristics)
    expect(() => configureHeapForTraining(-1)).toThrow(RangeError);
    expect(() => configureHeapForTraining(1.5)).toThrow('heap growing percent must be an integer in [0, 1000], got 1.5');
  });
});
