import { TypeSettingsRepository } from '../../src/storage/type-settings-repository';
import { useTestDatabase } from '../helpers/database';
import { clearCollections } from '../helpers/storage';

/** The contract of TypeSettingsRepository: run-time settings of job types, against the real test database. */
const db = useTestDatabase();
let settings: TypeSettingsRepository;
const now = new Date('2030-01-01T00:00:00Z');

beforeAll(() => {
  settings = new TypeSettingsRepository(db.connection);
});
beforeEach(async () => {
  await clearCollections(db.connection, ['job_types']);
});

describe('TypeSettingsRepository', () => {
  it('sets fields, leaves the others, removes those given as null, and reads them all back', async () => {
    expect(await settings.findAll()).toEqual(new Map());
    expect(await settings.update({ type: 'noop', change: { paused: true, rateLimit: { jobs: 5, perSeconds: 3 } }, now })).toEqual({ paused: true, rateLimit: { jobs: 5, perSeconds: 3 } });
    expect(await settings.update({ type: 'noop', change: { keyConcurrencyLimit: 2 }, now })).toEqual({ paused: true, keyConcurrencyLimit: 2, rateLimit: { jobs: 5, perSeconds: 3 } });
    expect(await settings.update({ type: 'noop', change: { paused: null, rateLimit: null }, now })).toEqual({ keyConcurrencyLimit: 2 });
    await settings.update({ type: 'payout.execute', change: { concurrencyLimit: 9 }, now });
    expect(await settings.findAll()).toEqual(new Map([['noop', { keyConcurrencyLimit: 2 }], ['payout.execute', { concurrencyLimit: 9 }]]));
  });
});
