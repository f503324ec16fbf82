import { JsonRpcProvider, Network, makeError } from 'ethers';
import { chainErrorText, MAX_ERROR_TEXT } from './error-text';
import { rememberRpcUrl } from './redact-text';

describe('chainErrorText', () => {
  it("shows ethers' short message, never the info, request and body fields its message lists", () => {
    const err = makeError('server response 500 Internal Server Error', 'SERVER_ERROR', {
      info: { requestUrl: 'https://rpc.example/v3/KEY0000001', responseBody: 'invalid project id KEY0000001' },
    } as never);
    expect(err.message).toContain('KEY0000001'); // ethers does list them
    expect(chainErrorText(err)).toBe('server response 500 Internal Server Error');
  });

  it("adds the node's JSON-RPC error (code and message), redacted", () => {
    rememberRpcUrl('https://rpc.example/v3/KEY0000002');
    const err = makeError('could not coalesce error', 'UNKNOWN_ERROR', {
      error: { code: -32005, message: 'limit exceeded for KEY0000002 at https://rpc.example/v3/KEY0000002' },
      payload: { method: 'eth_getLogs' },
    } as never);
    expect(chainErrorText(err)).toBe('could not coalesce error: JSON-RPC error -32005: limit exceeded for … at https://rpc.example/…');
  });

  it("names a network error's cause code, and shows one line of at most MAX_ERROR_TEXT characters", () => {
    expect(chainErrorText(new TypeError('fetch failed', { cause: Object.assign(new Error('x'), { code: 'ECONNREFUSED' }) }))).toBe(
      'fetch failed (ECONNREFUSED)',
    );
    expect(chainErrorText(new Error('first line\nsecond line'))).toBe('first line');
    expect(chainErrorText(new Error('x'.repeat(1000)))).toHaveLength(MAX_ERROR_TEXT);
    expect(chainErrorText('a string')).toBe('a string');
  });

  it('turns a real ethers failure against an unreachable endpoint into text without its URL', async () => {
    const network = Network.from(1n);
    const provider = new JsonRpcProvider('http://127.0.0.1:9/v3/KEY0000003?apikey=KEY0000004', network, { staticNetwork: network });
    const err = await provider.getBlockNumber().catch((e: unknown) => e);
    provider.destroy();
    expect(chainErrorText(err)).not.toMatch(/KEY000000[34]/);
  });
});
