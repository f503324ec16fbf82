import { ConfigError } from '../config/config';
import { loadJobConfig } from './job.config';

describe('loadJobConfig', () => {
  it('has defaults', () => {
    expect(loadJobConfig({})).toEqual({
      serviceWorker: true,
      shardTasks: true,
      expireSeconds: 3600,
      retryLimit: 3,
      lostAfterSeconds: 30,
      retryDelaySeconds: 5,
      pollSeconds: 2,
      maintenanceSeconds: 30,
      stopTimeoutSeconds: 30,
    });
  });

  it.each([
    ['JOB_EXPIRE_SECONDS', '0'],
    ['JOB_EXPIRE_SECONDS', '1h'],
    ['JOB_RETRY_LIMIT', '-1'],
    ['JOB_POLL_SECONDS', '0'],
    ['SERVICE_WORKER', 'yes'],
    ['SHARD_TASKS', 'maybe'],
  ])('stops on %s=%s, naming it', (name, value) => {
    expect(() => loadJobConfig({ [name]: value })).toThrow(ConfigError);
    expect(() => loadJobConfig({ [name]: value })).toThrow(name);
  });
});
