// SHA-256 in Node: node:crypto. Browser bundles replace this module with digest.browser.ts (the portal's
// Vite config redirects it), so nothing else in libs/merkle imports a Node-only module.
import * as nodeCrypto from 'node:crypto';

// node:crypto's one-shot `hash` (Node >= 20.12) is several times faster than createHash for small inputs,
// and asking it for a latin1 string (one char per byte) avoids allocating a Buffer per digest.
type OneShot = (algorithm: string, data: Uint8Array, outputEncoding: 'latin1') => string;
const oneShot: OneShot | undefined = (nodeCrypto as unknown as { hash?: OneShot }).hash;

/** SHA-256 of `data` as a latin1 string (one char per byte). */
export function digestLatin1(data: Uint8Array): string {
  if (oneShot) return oneShot('sha256', data, 'latin1');
  return nodeCrypto.createHash('sha256').update(data).digest('binary'); // 'binary' is latin1
}
