import { redactText, rememberRpcUrl } from './redact-text';

describe('redactText', () => {
  it('cuts every URL in a text to scheme, host and port, keeping the punctuation after it', () => {
    const text = 'server response 500 (info={ "requestUrl": "https://eth.example/v2/KEYabc123?x=y", "other": "http://127.0.0.1:8545" }), see wss://a:b@n.example:1/p.';
    expect(redactText(text)).toBe(
      'server response 500 (info={ "requestUrl": "https://eth.example/…", "other": "http://127.0.0.1:8545" }), see wss://n.example:1/….',
    );
  });

  it('cuts the secret parts of remembered RPC URLs wherever they appear, in any words', () => {
    const before = 'invalid project id REMEMBERED-KEY-1 (apikey=Remembered2)';
    expect(redactText(before)).toBe(before); // not remembered yet: an unknown word is left alone
    rememberRpcUrl('https://rpc.example/v3/REMEMBERED-KEY-1?apikey=Remembered2');
    expect(redactText(before)).toBe('invalid project id … (apikey=…)');
    expect(redactText('v3 stays: a word shorter than 6 characters is no key')).toBe('v3 stays: a word shorter than 6 characters is no key');
  });

  it('cuts a remembered secret that contains another one whole', () => {
    rememberRpcUrl('https://rpc.example/abcdef?k=abcdefghij');
    expect(redactText('key abcdefghij')).toBe('key …');
  });
});
