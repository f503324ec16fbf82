// SHA-256 for browsers, from @noble/hashes (the audited implementation ethers already bundles): WebCrypto's
// digest is asynchronous, and every proof and tree function in libs/merkle is synchronous. Same export as
// digest.ts, which a browser bundle replaces with this file; digest.spec.ts checks both against each other
// and the FIPS examples.
import { sha256 } from '@noble/hashes/sha256';

/** SHA-256 of `data` as a latin1 string (one char per byte), like digest.ts. */
export function digestLatin1(data: Uint8Array): string {
  return String.fromCharCode(...sha256(data));
}
