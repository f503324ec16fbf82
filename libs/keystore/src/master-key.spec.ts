import { parseMasterKey } from './index';
import { thrown } from './testing/thrown';

const bytes = Buffer.from('a7'.repeat(16) + '0f'.repeat(16), 'hex');

describe('parseMasterKey', () => {
  it.each([
    ['lowercase hex', bytes.toString('hex')],
    ['uppercase hex', bytes.toString('hex').toUpperCase()],
    ['base64', bytes.toString('base64')],
    ['base64url without padding', bytes.toString('base64url')],
    ['hex with a trailing newline', `${bytes.toString('hex')}\n`],
  ])('reads %s', (_, text) => {
    expect(parseMasterKey(text).equals(bytes)).toBe(true);
  });

  it.each([
    ['empty', ''],
    ['63 hex characters', bytes.toString('hex').slice(1)],
    ['65 hex characters', `${bytes.toString('hex')}0`],
    ['a non-hex character', `g${bytes.toString('hex').slice(1)}`],
    ['base64 of 31 bytes', bytes.subarray(1).toString('base64')],
    ['base64 of 33 bytes', Buffer.concat([bytes, Buffer.of(1)]).toString('base64')],
    ['a passphrase', 'correct horse battery staple'],
  ])('refuses %s, naming LETHE_MASTER_KEY and never its value', (_, text) => {
    const error = thrown(() => parseMasterKey(text));
    expect(error).toMatchObject({ code: 'MALFORMED_MASTER_KEY', variable: 'LETHE_MASTER_KEY', got: text.trim().length });
    expect(error.message).toBe(
      `LETHE_MASTER_KEY must be 64 hex characters or the base64 of 32 bytes; got ${text.trim().length} characters (the value is not shown)`,
    );
    if (text !== '') expect(error.message).not.toContain(text.trim());
  });

  it('refuses 32 zero bytes as a placeholder', () => {
    expect(thrown(() => parseMasterKey('0'.repeat(64)))).toMatchObject({ code: 'MALFORMED_MASTER_KEY', variable: 'LETHE_MASTER_KEY' });
  });

  it('names the file a key was read from', () => {
    const error = thrown(() => parseMasterKey('nope', { path: '/data/keys/master.key' }));
    expect(error).toMatchObject({ code: 'MALFORMED_MASTER_KEY', path: '/data/keys/master.key' });
    expect(error.message).toMatch(/^\/data\/keys\/master.key must be 64 hex characters/);
  });
});
