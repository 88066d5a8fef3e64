import { ConfigError, loadApiConfig, loadWorkerConfig } from '../../src/config';

const valid = { MONGODB_URI: 'mongodb://127.0.0.1:27017/', JWT_SECRET: 'x'.repeat(32) };

function errorOf(run: () => unknown): ConfigError {
  try {
    run();
  } catch (err) {
    if (err instanceof ConfigError) return err;
    throw err;
  }
  throw new Error('expected a ConfigError');
}

describe('API configuration', () => {
  it('applies defaults to a minimal valid environment and freezes the result', () => {
    const config = loadApiConfig(valid);
    expect(config).toMatchObject({ PORT: 3000, MONGODB_DB_NAME: 'jobs', LOG_LEVEL: 'info', DB_WRITE_CONCERN: 'majority' });
    expect(Object.isFrozen(config)).toBe(true);
  });

  it.each([
    [{ JWT_SECRET: valid.JWT_SECRET }, 'MONGODB_URI', 'is required'],
    [{ MONGODB_URI: valid.MONGODB_URI }, 'JWT_SECRET', 'is required'],
    [{ ...valid, MONGODB_URI: 'postgres://x' }, 'MONGODB_URI', 'mongodb://'],
    [{ ...valid, JWT_SECRET: 'short' }, 'JWT_SECRET', 'at least 32'],
    [{ ...valid, PORT: 'abc' }, 'PORT', 'whole number'],
    [{ ...valid, PORT: '70000' }, 'PORT', ''],
    [{ ...valid, LOG_LEVEL: 'loud' }, 'LOG_LEVEL', ''],
    [{ ...valid, DB_TIMEOUT_MS: '-5' }, 'DB_TIMEOUT_MS', ''],
  ])('rejects %j naming %s in one line', (env, variable, fragment) => {
    const err = errorOf(() => loadApiConfig(env));
    expect(err.variable).toBe(variable);
    expect(err.message).toContain(variable);
    expect(err.message).toContain(fragment);
    expect(err.message).not.toContain('\n');
  });

  it('has slow-client timeouts by default, takes others, and refuses a headers timeout above the request timeout', () => {
    expect(loadApiConfig(valid)).toMatchObject({ HTTP_HEADERS_TIMEOUT_MS: 10_000, HTTP_REQUEST_TIMEOUT_MS: 30_000, HTTP_BODY_IDLE_TIMEOUT_MS: 10_000 });
    expect(loadApiConfig({ ...valid, HTTP_REQUEST_TIMEOUT_MS: '120000', HTTP_BODY_IDLE_TIMEOUT_MS: '5000' })).toMatchObject({ HTTP_REQUEST_TIMEOUT_MS: 120_000, HTTP_BODY_IDLE_TIMEOUT_MS: 5_000 });
    const err = errorOf(() => loadApiConfig({ ...valid, HTTP_HEADERS_TIMEOUT_MS: '40000', HTTP_REQUEST_TIMEOUT_MS: '30000' }));
    expect(err.variable).toBe('HTTP_HEADERS_TIMEOUT_MS');
    expect(err.message).toContain('HTTP_REQUEST_TIMEOUT_MS');
    expect(errorOf(() => loadApiConfig({ ...valid, HTTP_BODY_IDLE_TIMEOUT_MS: '0' })).variable).toBe('HTTP_BODY_IDLE_TIMEOUT_MS');
  });

  it('treats an empty value as unset', () => {
    expect(errorOf(() => loadApiConfig({ ...valid, JWT_SECRET: '' })).message).toBe('invalid configuration: JWT_SECRET is required');
  });
});

describe('worker configuration', () => {
  it('requires the API URL and token and defaults the worker id to host and pid', () => {
    expect(errorOf(() => loadWorkerConfig({ WORKER_TOKEN: 't' })).variable).toBe('JOBS_API_URL');
    expect(errorOf(() => loadWorkerConfig({ JOBS_API_URL: 'http://localhost:3000' })).variable).toBe('WORKER_TOKEN');
    expect(errorOf(() => loadWorkerConfig({ JOBS_API_URL: 'http://localhost:3000', WORKER_TOKEN: 't' })).variable).toBe('MONGODB_URI');
    const config = loadWorkerConfig({ JOBS_API_URL: 'http://localhost:3000', WORKER_TOKEN: 't', MONGODB_URI: valid.MONGODB_URI });
    expect(config.WORKER_ID).toContain(String(process.pid));
    expect(config.WORKER_CONCURRENCY).toBe(4);
  });

  it('rejects a sandbox failure rate outside 0-1', () => {
    const env = { JOBS_API_URL: 'http://x', WORKER_TOKEN: 't', MONGODB_URI: valid.MONGODB_URI };
    expect(loadWorkerConfig({ ...env, SANDBOX_FAILURE_RATE: '0.25' }).SANDBOX_FAILURE_RATE).toBe(0.25);
    expect(errorOf(() => loadWorkerConfig({ ...env, SANDBOX_FAILURE_RATE: '1.5' })).variable).toBe('SANDBOX_FAILURE_RATE');
  });

  it('rejects a worker id outside 5-128 characters and a non-http URL', () => {
    expect(errorOf(() => loadWorkerConfig({ JOBS_API_URL: 'http://x', WORKER_TOKEN: 't', WORKER_ID: 'abc' })).variable).toBe('WORKER_ID');
    expect(errorOf(() => loadWorkerConfig({ JOBS_API_URL: 'ftp://x', WORKER_TOKEN: 't' })).variable).toBe('JOBS_API_URL');
  });
});
