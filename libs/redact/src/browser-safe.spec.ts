import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

describe('the redact library', () => {
  it('imports nothing at all (the verifier and the portal bundle it for browsers)', () => {
    const sources = readdirSync(__dirname).filter((f) => f.endsWith('.ts') && !f.endsWith('.spec.ts'));
    expect(sources.length).toBeGreaterThan(0);
    for (const file of sources) {
      const text = readFileSync(join(__dirname, file), 'utf8');
      const imports = [...text.matchAll(/from '([^']+)'/g)].map((m) => m[1]);
      expect({ file, imports: imports.filter((spec) => !spec.startsWith('./')) }).toEqual({ file, imports: [] });
      expect({ file, usesBuffer: /\bBuffer\./.test(text) }).toEqual({ file, usesBuffer: false });
    }
  });
});
