import { UnlearningError } from './errors';
import { parseExamples } from './parse-examples';

const shape = { numFeatures: 2, numClasses: 3 };

function issuesOf(fn: () => unknown): { code: string; issues: { line?: number; index?: number; message: string }[] } {
  try {
    fn();
  } catch (error) {
    if (error instanceof UnlearningError) return { code: error.code, issues: error.issues };
    throw error;
  }
  throw new Error('no error');
}

describe('parseExamples', () => {
  it('reads a JSON array', () => {
    const text = JSON.stringify([{ externalId: 'a', features: [1, 2], label: 0 }, { externalId: 'b', features: [3, 4.5], label: 2 }]);
    expect(parseExamples(text, 'json', shape)).toEqual([
      { externalId: 'a', features: [1, 2], label: 0 },
      { externalId: 'b', features: [3, 4.5], label: 2 },
    ]);
  });

  it('reads NDJSON and reports every bad line by number', () => {
    const text = ['{"externalId":"a","features":[1,2],"label":0}', '', '{"externalId":"b","features":[1],"label":0}', 'not json', '{"externalId":"c","features":[1,2],"label":7}'].join('\n');
    const { code, issues } = issuesOf(() => parseExamples(text, 'ndjson', shape));
    expect(code).toBe('PARSE_ERROR');
    expect(issues.map((i) => i.line)).toEqual([3, 4, 5]);
    expect(issues[0].message).toBe('features has 1 values, want 2');
    expect(issues[2].message).toBe('label 7 is out of range [0, 2]');
  });

  it('reads CSV with a header, any column order, quoted cells', () => {
    const text = 'label,f1,"externalId",f2\n1,0.5,x1,2\n0,1e3,"x2",-1\n';
    expect(parseExamples(text, 'csv', shape)).toEqual([
      { externalId: 'x1', features: [0.5, 2], label: 1 },
      { externalId: 'x2', features: [1000, -1], label: 0 },
    ]);
  });

  it('reads the learn batch of a sample a learn appended (JSON field or CSV column, not a feature), refusing one that is not an integer >= 0', () => {
    const json = JSON.stringify([{ externalId: 'a', features: [1, 2], label: 0, batch: 2 }, { externalId: 'b', features: [3, 4], label: 1, batch: 0 }]);
    expect(parseExamples(json, 'json', shape)).toEqual([
      { externalId: 'a', features: [1, 2], label: 0, batch: 2 },
      { externalId: 'b', features: [3, 4], label: 1 },
    ]);
    expect(parseExamples('id,f1,batch,f2,label\nx1,0.5,1,2,1\nx2,1,,2,0\n', 'csv', shape)).toEqual([
      { externalId: 'x1', features: [0.5, 2], label: 1, batch: 1 },
      { externalId: 'x2', features: [1, 2], label: 0 },
    ]);
    const bad = JSON.stringify([-1, 1.5, '1'].map((batch, i) => ({ externalId: `e${i}`, features: [1, 2], label: 0, batch })));
    expect(issuesOf(() => parseExamples(bad, 'json', shape)).issues.map((i) => [i.index, i.message])).toEqual([
      [0, 'batch must be an integer >= 0, got -1'],
      [1, 'batch must be an integer >= 0, got 1.5'],
      [2, 'batch must be an integer >= 0, got "1"'],
    ]);
  });

  it('reads a sample\'s commitment when the data gives it (JSON field or CSV column, not a feature), refusing one that is not 32 bytes of lowercase hex', () => {
    const c = 'ab'.repeat(32);
    expect(parseExamples(JSON.stringify([{ externalId: 'a', features: [1, 2], label: 0, commitment: c }, { externalId: 'b', features: [3, 4], label: 1 }]), 'json', shape)).toEqual([
      { externalId: 'a', features: [1, 2], label: 0, commitment: c },
      { externalId: 'b', features: [3, 4], label: 1 },
    ]);
    expect(parseExamples(`id,f1,commitment,f2,label\nx1,0.5,${c},2,1\nx2,1,,2,0\n`, 'csv', shape)).toEqual([
      { externalId: 'x1', features: [0.5, 2], label: 1, commitment: c },
      { externalId: 'x2', features: [1, 2], label: 0 },
    ]);
    const bad = JSON.stringify([c.toUpperCase(), c.slice(2), 7].map((commitment, i) => ({ externalId: `e${i}`, features: [1, 2], label: 0, commitment })));
    expect(issuesOf(() => parseExamples(bad, 'json', shape)).issues.map((i) => [i.index, i.message])).toEqual([
      [0, `commitment must be 32 bytes of lowercase hex, got "${c.toUpperCase()}"`],
      [1, `commitment must be 32 bytes of lowercase hex, got "${c.slice(2)}"`],
      [2, 'commitment must be 32 bytes of lowercase hex, got 7'],
    ]);
  });

  it('reports CSV lines with NaN, Infinity, missing cells or a wrong cell count', () => {
    const text = 'id,a,b,label\nr1,NaN,1,0\nr2,Infinity,1,0\nr3,,1,0\nr4,1,1\nr5,1,2,1';
    const { issues } = issuesOf(() => parseExamples(text, 'csv', shape));
    expect(issues.map((i) => [i.line, i.message])).toEqual([
      [2, 'features[0] is NaN'],
      [3, 'features[0] is Infinity'],
      [4, "cell 'a' is empty"],
      [5, 'has 3 cells, the header has 4'],
    ]);
  });

  it('refuses a CSV header without id or label, invalid JSON, and empty input', () => {
    expect(issuesOf(() => parseExamples('a,b\n1,2', 'csv')).issues[0]).toMatchObject({ line: 1 });
    expect(issuesOf(() => parseExamples('[{', 'json')).code).toBe('PARSE_ERROR');
    expect(issuesOf(() => parseExamples('{"a":1}', 'json')).issues[0].message).toBe('the document must be an array of samples');
    expect(issuesOf(() => parseExamples('\n\n', 'ndjson')).issues[0].message).toBe('the input holds no samples');
  });
});
