import { redactRpcUrl } from './redact-url';

describe('redactRpcUrl', () => {
  it('keeps scheme, host and port, and hides paths, queries and credentials that may hold an API key', () => {
    expect(redactRpcUrl('http://127.0.0.1:8545')).toBe('http://127.0.0.1:8545');
    expect(redactRpcUrl('http://127.0.0.1:8545/')).toBe('http://127.0.0.1:8545');
    expect(redactRpcUrl('https://mainnet.infura.io/v3/0123456789abcdef')).toBe('https://mainnet.infura.io/…');
    expect(redactRpcUrl('https://rpc.example?apikey=secret')).toBe('https://rpc.example/…');
    expect(redactRpcUrl('wss://user:pass@node.example:8546')).toBe('wss://node.example:8546/…');
    expect(redactRpcUrl('not a url with secret')).not.toContain('secret');
  });
});
