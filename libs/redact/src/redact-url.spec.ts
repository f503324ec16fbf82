import { redactRpcUrl, secretPartsOf } from './redact-url';

describe('redactRpcUrl', () => {
  it('keeps scheme, host and port, and hides paths, queries and credentials that may hold an API key', () => {
    expect(redactRpcUrl('http://127.0.0.1:8545')).toBe('http://127.0.0.1:8545');
    expect(redactRpcUrl('http://127.0.0.1:8545/')).toBe('http://127.0.0.1:8545');
    expect(redactRpcUrl('https://mainnet.infura.io/v3/0123456789abcdef')).toBe('https://mainnet.infura.io/…');
    expect(redactRpcUrl('https://rpc.example?apikey=secret')).toBe('https://rpc.example/…');
    expect(redactRpcUrl('wss://user:pass@node.example:8546')).toBe('wss://node.example:8546/…');
    expect(redactRpcUrl('not a url with secret')).not.toContain('secret');
  });

  it('gives the same text when applied to its own output', () => {
    for (const url of ['https://mainnet.infura.io/v3/0123456789abcdef', 'http://127.0.0.1:8545', 'wss://u:p@h.example:1/x']) {
      expect(redactRpcUrl(redactRpcUrl(url))).toBe(redactRpcUrl(url));
    }
  });
});

describe('secretPartsOf', () => {
  it('lists credentials, path segments, query values and the fragment, raw and decoded, of 6 characters or more', () => {
    const parts = secretPartsOf('https://alice:hunter22@rpc.example/v3/0123456789abcdef?apikey=sec%2Fret9&x=1#fragment7');
    expect(parts.sort()).toEqual(['0123456789abcdef', 'fragment7', 'hunter22', 'sec%2Fret9', 'sec/ret9'].sort());
  });

  it('lists nothing for a URL without secrets or one that does not parse', () => {
    expect(secretPartsOf('http://127.0.0.1:8545')).toEqual([]);
    expect(secretPartsOf('not a url')).toEqual([]);
  });
});
