import fc from 'fast-check';
import canonicalize from 'canonicalize';
import { isCanonicalJson } from './canonical-check';

describe('isCanonicalJson', () => {
  it('agrees with the canonicalize package on random JSON, as encoded canonically and as plain JSON.stringify', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (value) => {
        for (const text of [canonicalize(value) as string, JSON.stringify(value)]) {
          const parsed: unknown = JSON.parse(text);
          expect(isCanonicalJson(parsed, text)).toBe(canonicalize(parsed) === text);
        }
      }),
      { numRuns: 2000 },
    );
  });

  it('takes integer-like keys, -0, exponents, whitespace and duplicate keys as RFC 8785 does', () => {
    const check = (text: string) => isCanonicalJson(JSON.parse(text), text);
    expect(check('{"10":1,"9":2}')).toBe(true); // code-unit order, which JSON.stringify does not keep
    expect(check('{"9":2,"10":1}')).toBe(false);
    expect(check('{"a":-0}')).toBe(false);
    expect(check('{"a":1e3}')).toBe(false);
    expect(check('{"a":1000}')).toBe(true);
    expect(check('{"a": 1}')).toBe(false);
    expect(check('{"a":1,"a":2}')).toBe(false);
    expect(check('{"b":{"d":1,"c":2},"a":[{"y":1,"x":2}]}')).toBe(false);
    expect(check('{"a":[{"x":2,"y":1}],"b":{"c":2,"d":1}}')).toBe(true);
    expect(check('"\\u00e9"')).toBe(false);
    expect(check('"é"')).toBe(true);
  });
});
