import mongoose from 'mongoose';

import type { Asset, AssetVersion, DerivedFrom } from '../../src/model/asset';
import { AssetFileRepository } from '../../src/storage/asset-file-repository';
import { AssetRepository } from '../../src/storage/asset-repository';
import { TestClock } from '../helpers/clock';
import { useTestDatabase } from '../helpers/database';
import { clearCollections, useSecondConnection } from '../helpers/storage';

/** The contract of AssetRepository (asset metadata; the bytes are asset-file-repository.test.ts's), against the real test database. */
const db = useTestDatabase();
const other = useSecondConnection(db);
let assets: AssetRepository;
let clock: TestClock;

beforeAll(() => {
  assets = new AssetRepository(db.connection);
});
beforeEach(async () => {
  clock = new TestClock();
  await clearCollections(db.connection, ['assets']);
});

let counter = 0;
function assetId(): string {
  counter += 1;
  return `asset_${counter.toString(16).padStart(24, '0')}`;
}

function version(versionNumber: number, fields: Partial<AssetVersion> = {}): AssetVersion {
  return {
    versionNumber,
    fileId: new mongoose.Types.ObjectId().toHexString(),
    size: 100 * versionNumber,
    contentType: 'image/png',
    createdAt: clock.now(),
    ...fields,
  };
}

/** An uploaded asset at version 1 (no thumbnails yet). */
function upload(fields: Partial<Asset> = {}): Asset {
  const first = version(1);
  const now = clock.now();
  return {
    assetId: assetId(),
    filename: 'cat.png',
    contentType: first.contentType,
    size: first.size,
    versionNumber: 1,
    versions: [first],
    processed: false,
    thumbnailAssetIds: [],
    derivedFrom: null,
    createdBy: 'user-1',
    createdByRole: 'user',
    tenant: null,
    createdAt: now,
    updatedAt: now,
    ...fields,
  };
}

function thumbnailOf(source: Asset, width: number): Asset {
  const derivedFrom: DerivedFrom = { assetId: source.assetId, versionNumber: source.versionNumber, width };
  return upload({ filename: `thumb-${width}.png`, derivedFrom, createdBy: source.createdBy, createdByRole: source.createdByRole, tenant: source.tenant });
}

async function stored(id: string): Promise<Asset> {
  const asset = await assets.findAsset(id);
  if (!asset) throw new Error(`asset ${id} is gone`);
  return asset;
}

describe('insertAsset / findAsset', () => {
  it('stores an asset and reads it back as the same plain Asset (file ids as hex)', async () => {
    const asset = upload({ tenant: 'acme', filename: null });
    expect(await assets.insertAsset(asset)).toBe(true);
    const found = await assets.findAsset(asset.assetId);
    expect(found).toEqual(asset);
    expect(typeof found!.versions[0]!.fileId).toBe('string');
    expect(found).not.toHaveProperty('derivedKey');
    expect(await assets.findAsset('asset_ffffffffffffffffffffffff')).toBeNull();
  });

  it('refuses a second asset with the same id (false), keeping the first', async () => {
    const asset = upload();
    await assets.insertAsset(asset);
    expect(await assets.insertAsset({ ...upload(), assetId: asset.assetId, filename: 'other.png' })).toBe(false);
    expect((await stored(asset.assetId)).filename).toBe('cat.png');
  });

  it('reads an asset stored before roles and tenants as createdByRole and tenant null', async () => {
    const asset = upload();
    await assets.insertAsset(asset);
    await db.connection.collection('assets').updateOne({ assetId: asset.assetId }, { $unset: { createdByRole: '', tenant: '' } });
    expect(await stored(asset.assetId)).toMatchObject({ createdByRole: null, tenant: null });
  });

  it('lets the schema refuse what no upload can produce (a content type that is not an image)', async () => {
    const asset = upload({ contentType: 'text/html' as Asset['contentType'] });
    await expect(assets.insertAsset(asset)).rejects.toThrow();
    expect(await assets.findAsset(asset.assetId)).toBeNull();
  });
});

describe('derived assets (thumbnails)', () => {
  it('holds at most one thumbnail per (source, version, width); uploads have no key and never conflict', async () => {
    const source = upload();
    await assets.insertAsset(source);
    const small = thumbnailOf(source, 64);
    expect(await assets.insertAsset(small)).toBe(true);
    expect(await assets.insertAsset(thumbnailOf(source, 64))).toBe(false);
    expect(await assets.insertAsset(thumbnailOf(source, 128))).toBe(true);
    expect(await assets.insertAsset(upload())).toBe(true);
    expect(await assets.insertAsset(upload())).toBe(true);

    expect(await assets.findDerivedAsset({ assetId: source.assetId, versionNumber: 1, width: 64 })).toEqual(small);
    expect(await assets.findDerivedAsset({ assetId: source.assetId, versionNumber: 2, width: 64 })).toBeNull();
    expect(await assets.findDerivedAsset({ assetId: source.assetId, versionNumber: 1, width: 32 })).toBeNull();
  });

  it('lets exactly one of racing thumbnail inserts on two connections win', async () => {
    const source = upload();
    await assets.insertAsset(source);
    const theirs = new AssetRepository(other.connection);
    const candidates = Array.from({ length: 6 }, () => thumbnailOf(source, 256));
    const results = await Promise.all(candidates.map((thumb, i) => (i % 2 === 0 ? assets : theirs).insertAsset(thumb)));

    expect(results.filter(Boolean)).toHaveLength(1);
    const winner = candidates[results.indexOf(true)]!;
    expect((await assets.findDerivedAsset({ assetId: source.assetId, versionNumber: 1, width: 256 }))?.assetId).toBe(winner.assetId);
    expect(await db.connection.collection('assets').countDocuments({ 'derivedFrom.assetId': source.assetId })).toBe(1);
  });
});

describe('appendVersion', () => {
  it('makes the new version current when the current one is the expected one, resetting processed and thumbnails', async () => {
    const asset = upload();
    await assets.insertAsset(asset);
    await assets.recordThumbnails({ assetId: asset.assetId, versionNumber: 1, thumbnailAssetIds: ['asset_t1'], now: clock.now() });
    clock.advance(1_000);
    const second = version(2, { contentType: 'image/webp', size: 777 });

    const updated = await assets.appendVersion({ assetId: asset.assetId, expectedVersionNumber: 1, version: second });
    expect(updated).toEqual({
      ...asset,
      versionNumber: 2,
      contentType: 'image/webp',
      size: 777,
      versions: [asset.versions[0], second],
      processed: false,
      thumbnailAssetIds: [],
      updatedAt: second.createdAt,
    });
    expect(await stored(asset.assetId)).toEqual(updated);
  });

  it('renames only when a filename is given', async () => {
    const asset = upload();
    await assets.insertAsset(asset);
    expect((await assets.appendVersion({ assetId: asset.assetId, expectedVersionNumber: 1, version: version(2) }))?.filename).toBe('cat.png');
    expect((await assets.appendVersion({ assetId: asset.assetId, expectedVersionNumber: 2, version: version(3), filename: 'dog.png' }))?.filename).toBe('dog.png');
  });

  it('misses (null) when the current version is no longer the expected one, changing nothing', async () => {
    const asset = upload();
    await assets.insertAsset(asset);
    await assets.appendVersion({ assetId: asset.assetId, expectedVersionNumber: 1, version: version(2) });
    const before = await stored(asset.assetId);

    expect(await assets.appendVersion({ assetId: asset.assetId, expectedVersionNumber: 1, version: version(2) })).toBeNull();
    expect(await stored(asset.assetId)).toEqual(before);
    expect(await assets.appendVersion({ assetId: 'asset_ffffffffffffffffffffffff', expectedVersionNumber: 1, version: version(2) })).toBeNull();
  });

  it('of racing appends on two connections from the same version, exactly one wins: no version lost or numbered twice', async () => {
    const asset = upload();
    await assets.insertAsset(asset);
    const theirs = new AssetRepository(other.connection);
    const candidates = Array.from({ length: 6 }, () => version(2));
    const results = await Promise.all(candidates.map((v, i) => (i % 2 === 0 ? assets : theirs).appendVersion({ assetId: asset.assetId, expectedVersionNumber: 1, version: v })));

    const winners = results.filter((r) => r !== null);
    expect(winners).toHaveLength(1);
    const after = await stored(asset.assetId);
    expect(after.versions.map((v) => v.versionNumber)).toEqual([1, 2]);
    expect(after.versions[1]!.fileId).toBe(candidates[results.findIndex((r) => r !== null)]!.fileId);
  });
});

describe('recordThumbnails', () => {
  it('marks the current version processed and adds thumbnail ids once each', async () => {
    const asset = upload();
    await assets.insertAsset(asset);
    clock.advance(1_000);
    const now = clock.now();
    expect(await assets.recordThumbnails({ assetId: asset.assetId, versionNumber: 1, thumbnailAssetIds: ['asset_t1', 'asset_t2'], now })).toBe(true);
    // A re-run, or a second job for other widths, never lists an id twice.
    expect(await assets.recordThumbnails({ assetId: asset.assetId, versionNumber: 1, thumbnailAssetIds: ['asset_t2', 'asset_t3'], now })).toBe(true);
    expect(await stored(asset.assetId)).toMatchObject({ processed: true, thumbnailAssetIds: ['asset_t1', 'asset_t2', 'asset_t3'], updatedAt: now });
  });

  it('refuses (false) a version that is no longer current', async () => {
    const asset = upload();
    await assets.insertAsset(asset);
    await assets.appendVersion({ assetId: asset.assetId, expectedVersionNumber: 1, version: version(2) });
    expect(await assets.recordThumbnails({ assetId: asset.assetId, versionNumber: 1, thumbnailAssetIds: ['asset_t1'], now: clock.now() })).toBe(false);
    expect(await stored(asset.assetId)).toMatchObject({ processed: false, thumbnailAssetIds: [] });
  });
});

it('exposes the version bytes through its file repository on the same connection', () => {
  expect(assets.files).toBeInstanceOf(AssetFileRepository);
});
