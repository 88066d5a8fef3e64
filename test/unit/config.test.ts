import { ConfigError, loadApiConfig, loadWorkerConfig } from '../../src/config';
import { databaseNameInUri, uriWithDatabase } from '../../src/mongo-uri';

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

describe('database name', () => {
  const worker = { JOBS_API_URL: 'http://localhost:3000', WORKER_TOKEN: 't' };

  it.each([
    ['mongodb://127.0.0.1:27017/', undefined, 'jobs'],
    ['mongodb://127.0.0.1:27017', undefined, 'jobs'],
    ['mongodb://127.0.0.1:27017/?replicaSet=rs0', 'other', 'other'],
    ['mongodb://127.0.0.1:27017/mydb', undefined, 'mydb'],
    ['mongodb://127.0.0.1:27017/mydb', 'other', 'mydb'],
    ['mongodb://u:p%40ss@h1:27017,h2:27018/mydb?replicaSet=rs0&w=majority', 'other', 'mydb'],
    ['mongodb+srv://cluster0.example.net/prod_jobs?retryWrites=true', undefined, 'prod_jobs'],
  ])('MONGODB_URI %s with MONGODB_DB_NAME %s uses database %s (API and worker alike)', (uri, dbName, expected) => {
    const env = { MONGODB_URI: uri, ...(dbName ? { MONGODB_DB_NAME: dbName } : {}) };
    expect(loadApiConfig({ ...valid, ...env }).MONGODB_DB_NAME).toBe(expected);
    expect(loadWorkerConfig({ ...worker, ...env }).MONGODB_DB_NAME).toBe(expected);
  });

  it('refuses a URI whose database name MongoDB would not accept, naming MONGODB_URI', () => {
    const err = errorOf(() => loadApiConfig({ ...valid, MONGODB_URI: 'mongodb://127.0.0.1:27017/my.db' }));
    expect(err.variable).toBe('MONGODB_URI');
    expect(err.message).toContain('names a database');
  });
});

describe('database in a MongoDB URI', () => {
  it.each([
    ['mongodb://127.0.0.1:27017/', 'mydb', 'mongodb://127.0.0.1:27017/mydb'],
    ['mongodb://127.0.0.1:27017', 'mydb', 'mongodb://127.0.0.1:27017/mydb'],
    ['mongodb://h1,h2/old?replicaSet=rs0', 'mydb', 'mongodb://h1,h2/mydb?replicaSet=rs0'],
    ['mongodb://h1?directConnection=true', '', 'mongodb://h1/?directConnection=true'],
    ['mongodb://h1/old', '', 'mongodb://h1/'],
  ])('%s naming %j is %s', (uri, dbName, expected) => {
    expect(uriWithDatabase(uri, dbName)).toBe(expected);
    expect(databaseNameInUri(expected)).toBe(dbName === '' ? undefined : dbName);
  });
});

describe('JOB_POLICY_OVERRIDES', () => {
  it('is parsed into per-type policy overrides, for the API and the worker alike', () => {
    const overrides = { noop: { timeoutSeconds: 5, maxAttempts: 2 }, 'payout.execute': { concurrencyLimit: null } };
    expect(loadApiConfig({ ...valid, JOB_POLICY_OVERRIDES: JSON.stringify(overrides) }).JOB_POLICY_OVERRIDES).toEqual(overrides);
    const worker = loadWorkerConfig({ JOBS_API_URL: 'http://localhost:3000', WORKER_TOKEN: 't', MONGODB_URI: valid.MONGODB_URI, JOB_POLICY_OVERRIDES: JSON.stringify(overrides) });
    expect(worker.JOB_POLICY_OVERRIDES).toEqual(overrides);
    expect(loadApiConfig(valid).JOB_POLICY_OVERRIDES).toEqual({});
  });

  it.each([
    ['{not json', 'is not valid JSON'],
    ['{"noop":{"timeoutSeconds":-1}}', 'at noop.timeoutSeconds'],
    ['{"noop":{"colour":"red"}}', 'at noop'],
    ['{"thumbnail.make":{"maxAttempts":2}}', 'names unknown job type "thumbnail.make"'],
    ['[1,2]', 'at (root)'],
  ])('refuses %s in one line naming the variable', (raw, fragment) => {
    const err = errorOf(() => loadApiConfig({ ...valid, JOB_POLICY_OVERRIDES: raw }));
    expect(err.variable).toBe('JOB_POLICY_OVERRIDES');
    expect(err.message).toContain(fragment);
    expect(err.message).not.toContain('\n');
  });
});
