import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Interface } from 'ethers';
import { AUDIT_ANCHOR_ABI } from '@lethe/chain';
import { AUDIT_ANCHOR_READ_ABI } from './anchor-reader';

describe('the verifier library', () => {
  it("reads AuditAnchor with a subset of libs/chain's ABI", () => {
    const full = new Interface(AUDIT_ANCHOR_ABI);
    for (const fragment of new Interface(AUDIT_ANCHOR_READ_ABI).fragments) {
      const signature = fragment.format('full');
      expect(full.fragments.map((f) => f.format('full'))).toContain(signature);
    }
  });

  it('imports nothing a browser lacks from its index: no node: modules, no Buffer, no library index that loads them', () => {
    // Every file index.ts reaches (the portal bundles them); replay.ts, the Node-only entry, must not be one.
    const reached = new Set<string>();
    const visit = (file: string): void => {
      if (reached.has(file)) return;
      reached.add(file);
      const text = readFileSync(join(__dirname, file), 'utf8');
      const imports = [...text.matchAll(/from '([^']+)'/g)].map((m) => m[1]);
      for (const spec of imports) {
        expect({ file, spec, ok: /^(\.\/|ethers$|canonicalize$|@lethe\/merkle$|@lethe\/events$|@lethe\/redact$)/.test(spec) }).toEqual({ file, spec, ok: true });
        if (spec.startsWith('./')) visit(`${spec.slice(2)}.ts`);
      }
      expect({ file, usesBuffer: /\bBuffer\./.test(text) }).toEqual({ file, usesBuffer: false });
    };
    visit('index.ts');
    expect(reached).toContain('verify-receipt.ts');
    expect(reached).not.toContain('replay.ts');
  });
});
