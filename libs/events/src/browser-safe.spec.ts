import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

describe('the events library', () => {
  it('imports nothing a browser lacks: no node: modules, no Buffer, no library index that loads them', () => {
    const sources = readdirSync(__dirname).filter((f) => f.endsWith('.ts') && !f.endsWith('.spec.ts'));
    expect(sources).toEqual(expect.arrayContaining(['canonical.ts', 'errors.ts', 'events.ts', 'index.ts']));
    for (const file of sources) {
      const text = readFileSync(join(__dirname, file), 'utf8');
      const imports = [...text.matchAll(/from '([^']+)'/g)].map((m) => m[1]);
      for (const spec of imports) {
        expect({ file, spec, ok: /^(\.\/|canonicalize$|@lethe\/merkle$)/.test(spec) }).toEqual({ file, spec, ok: true });
      }
      expect({ file, usesBuffer: /\bBuffer\./.test(text) }).toEqual({ file, usesBuffer: false });
    }
  });
});
