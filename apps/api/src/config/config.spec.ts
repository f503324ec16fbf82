import { ConfigError, loadConfig } from './config';

describe('loadConfig', () => {
  it('uses the embedded defaults when nothing is set', () => {
    const config = loadConfig({});
    expect(config.port).toBe(3000);
    expect(config.host).toBe('127.0.0.1');
    expect(config.databaseUrl).toBeUndefined();
    expect(config.dataDir).toMatch(/data$/);
    expect(config.chain.rpcUrl).toBeUndefined();
    expect(config.chain.chainPort).toBe(8545);
    expect(config.rateLimitPerMinute).toBe(6000);
  });

  it('reads RATE_LIMIT_PER_MINUTE, 0 turning the limit off', () => {
    expect(loadConfig({ RATE_LIMIT_PER_MINUTE: '30' }).rateLimitPerMinute).toBe(30);
    expect(loadConfig({ RATE_LIMIT_PER_MINUTE: '0' }).rateLimitPerMinute).toBe(0);
  });

  it('reads ANCHOR_LOG_RANGE_BLOCKS (10,000 unless set) and CONTRACT_DEPLOYMENT_BLOCK (0 unless set)', () => {
    expect(loadConfig({}).chain).toMatchObject({ anchorLogRangeBlocks: 10_000, contractDeploymentBlock: 0 });
    expect(loadConfig({ ANCHOR_LOG_RANGE_BLOCKS: '2000', CONTRACT_DEPLOYMENT_BLOCK: '19000000' }).chain).toMatchObject({
      anchorLogRangeBlocks: 2000,
      contractDeploymentBlock: 19_000_000,
    });
  });

  it('keeps artifacts in files without DATABASE_URL and in PostgreSQL with it, unless ARTIFACT_STORE says otherwise', () => {
    expect(loadConfig({}).artifacts).toEqual({ store: 'files', vacuum: 'plain' });
    expect(loadConfig({ DATABASE_URL: 'postgres://db/lethe' }).artifacts).toEqual({ store: 'postgres', vacuum: 'plain' });
    expect(loadConfig({ DATABASE_URL: 'postgres://db/lethe', ARTIFACT_STORE: 'files' }).artifacts.store).toBe('files');
    expect(loadConfig({ ARTIFACT_STORE: 'postgres', ARTIFACT_VACUUM: 'full' }).artifacts).toEqual({ store: 'postgres', vacuum: 'full' });
    expect(loadConfig({ ARTIFACT_DATABASE_URL: 'postgres://artifacts/lethe' }).artifacts).toEqual({
      store: 'postgres',
      vacuum: 'plain',
      databaseUrl: 'postgres://artifacts/lethe',
    });
  });

  it.each([
    ['ARTIFACT_STORE', 's3'],
    ['ARTIFACT_VACUUM', 'sometimes'],
    ['ARTIFACT_DATABASE_URL', 'mysql://x'],
    ['PORT', 'abc'],
    ['PORT', '70000'],
    ['PORT', '-1'],
    ['DATABASE_URL', 'mysql://x'],
    ['DATABASE_URL', 'not a url'],
    ['LOG_LEVEL', 'loud'],
    ['ANCHOR_EVERY_ENTRIES', '0'],
    ['ANCHOR_LOG_RANGE_BLOCKS', '0'],
    ['ANCHOR_LOG_RANGE_BLOCKS', 'all'],
    ['CONTRACT_DEPLOYMENT_BLOCK', '-3'],
    ['CONTRACT_ADDRESS', '0x123'],
    ['ANCHORING', 'maybe'],
    ['RATE_LIMIT_PER_MINUTE', 'lots'],
    ['RATE_LIMIT_PER_MINUTE', '-5'],
    ['RATE_LIMIT_PER_MINUTE', '1.5'],
    ['HEADERS_TIMEOUT_SECONDS', '0'],
    ['BODY_TIMEOUT_SECONDS', 'soon'],
    ['UPLOAD_TIMEOUT_SECONDS', '10'],
    ['TRUST_PROXY', 'true'],
    ['TRUST_PROXY', '0'],
    ['TRUST_PROXY', '10.0.0.0/33'],
    ['TRUST_PROXY', 'loopback, proxy.example'],
    ['IDEMPOTENCY_TTL_HOURS', '0'],
    ['IDEMPOTENCY_TTL_HOURS', 'a day'],
    ['LETHE_MASTER_KEY', 'too-short'],
    ['LETHE_MASTER_KEY', '0'.repeat(64)],
  ])('stops on a bad %s (%s) with a message naming it', (name, value) => {
    expect(() => loadConfig({ [name]: value })).toThrow(ConfigError);
    expect(() => loadConfig({ [name]: value })).toThrow(new RegExp(`^${name}:`));
  });

  it('reads TRUST_PROXY as Express takes it: off, a number of proxies, or their addresses and subnets', () => {
    expect(loadConfig({}).trustProxy).toBe(false);
    expect(loadConfig({ TRUST_PROXY: 'off' }).trustProxy).toBe(false);
    expect(loadConfig({ TRUST_PROXY: '2' }).trustProxy).toBe(2);
    expect(loadConfig({ TRUST_PROXY: 'loopback, 10.0.0.0/8,fd00::/8, 192.0.2.7' }).trustProxy).toEqual(['loopback', '10.0.0.0/8', 'fd00::/8', '192.0.2.7']);
  });

  it('reads IDEMPOTENCY_TTL_HOURS, 24 by default', () => {
    expect(loadConfig({}).idempotencyTtlHours).toBe(24);
    expect(loadConfig({ IDEMPOTENCY_TTL_HOURS: '2' }).idempotencyTtlHours).toBe(2);
  });

  it('checks the form of LETHE_MASTER_KEY without keeping it or showing it', () => {
    const key = 'ab'.repeat(32);
    expect(JSON.stringify(loadConfig({ LETHE_MASTER_KEY: key }))).not.toContain(key);
    const secret = `${'cd'.repeat(31)}zz`;
    expect(() => loadConfig({ LETHE_MASTER_KEY: secret })).toThrow(/^LETHE_MASTER_KEY: must be 64 hex characters or the base64 of 32 bytes; got 64 characters/);
    try {
      loadConfig({ LETHE_MASTER_KEY: secret });
    } catch (error) {
      expect((error as Error).message).not.toContain(secret);
    }
  });

  it('requires a contract and a key with RPC_URL, and never shows the key', () => {
    expect(() => loadConfig({ RPC_URL: 'http://127.0.0.1:8545' })).toThrow(/^CONTRACT_ADDRESS:/);
    const secret = 'ab'.repeat(31);
    try {
      loadConfig({ ANCHORER_PRIVATE_KEY: secret });
      throw new Error('accepted a short key');
    } catch (error) {
      expect((error as Error).message).toMatch(/^ANCHORER_PRIVATE_KEY:/);
      expect((error as Error).message).not.toContain(secret);
    }
  });
});
