import { randomBytes } from 'node:crypto';
import { crc32 } from 'node:zlib';

import sharp from 'sharp';

import type { Asset, ImageContentType } from '../../src/model/asset';
import { createAssetService, type AssetService } from '../../src/assets/asset-service';
import type { Principal } from '../../src/model/principal';
import type { ThumbnailPayload } from '../../src/jobs/job-types';
import { ASSET_BUCKET } from '../../src/storage/asset-file-repository';
import { assetModel, ensureAssetIndexes } from '../../src/storage/asset-model';
import { AssetRepository } from '../../src/storage/asset-repository';
import { PermanentJobError, type JobContext } from '../../src/worker/handler';
import { DEFAULT_THUMBNAIL_LIMITS, createThumbnailHandler, type ThumbnailHandlerDeps } from '../../src/worker/handlers/thumbnail-create';
import { makeImage } from '../fixtures/images';
import { silentLogger } from '../helpers/app';
import { useTestDatabase } from '../helpers/database';

const db = useTestDatabase();
let assets: AssetService;
/** The service that uploads the source images; thumbnails belong to it too. */
const OWNER: Principal = { sub: 'service-1', role: 'service' };

beforeAll(async () => {
  await ensureAssetIndexes(db.connection);
  assets = createAssetService(db.connection);
});

interface FakeRun {
  context: JobContext<ThumbnailPayload>;
  progress: number[];
  controller: AbortController;
}

/** A job context as the runner would build it, with a signal the test controls. */
function fakeRun(payload: ThumbnailPayload, onProgress?: (percent: number, controller: AbortController) => void): FakeRun {
  const controller = new AbortController();
  const progress: number[] = [];
  const context: JobContext<ThumbnailPayload> = {
    jobId: `job_${randomBytes(12).toString('hex')}`,
    type: 'thumbnail.create',
    payload,
    attempt: 1,
    signal: controller.signal,
    pointOfNoReturn: async () => undefined,
    checkpoint: null,
    saveCheckpoint: async () => undefined,
    uploadFile: () => Promise.reject(new Error('this handler uploads no files')),
    reportProgress: (percent) => {
      progress.push(percent);
      onProgress?.(percent, controller);
    },
    logger: silentLogger,
  };
  return { context, progress, controller };
}

async function uploadImage(contentType: ImageContentType, width: number, height: number): Promise<string> {
  const receipt = await assets.createAsset({ principal: OWNER, content: await makeImage({ contentType, width, height }), contentType });
  return receipt.assetId;
}

/** The asset as its owner reads it. */
function getAsset(assetId: string): Promise<Asset> {
  return assets.getAsset({ principal: OWNER, assetId });
}

async function readContent(assetId: string): Promise<Buffer> {
  const content = await assets.openContent({ principal: OWNER, assetId });
  const parts: Buffer[] = [];
  for await (const part of content.stream) parts.push(part as Buffer);
  return Buffer.concat(parts);
}

function countThumbnails(assetId: string): Promise<number> {
  return assetModel(db.connection).countDocuments({ 'derivedFrom.assetId': assetId });
}

/** GridFS files written for thumbnails of the asset: more than the thumbnails means orphaned bytes. */
function countThumbnailFiles(assetId: string): Promise<number> {
  return db.connection.db!.collection(`${ASSET_BUCKET}.files`).countDocuments({ 'metadata.derivedFrom.assetId': assetId });
}

async function expectPermanentFailure(run: Promise<unknown>, code: string): Promise<void> {
  const err: unknown = await run.then(
    () => new Error('the handler succeeded'),
    (rawErr: unknown) => rawErr,
  );
  expect(err).toBeInstanceOf(PermanentJobError);
  expect((err as PermanentJobError).code).toBe(code);
}

describe('thumbnail.create handler', () => {
  const handler = (): ReturnType<typeof createThumbnailHandler> => createThumbnailHandler({ assets });

  it('makes one 320-pixel-wide PNG thumbnail by default and marks the source processed', async () => {
    const assetId = await uploadImage('image/png', 800, 600);
    const run = fakeRun({ assetId, versionNumber: 1 });

    const result = await handler()(run.context);

    expect(result).toEqual({ assetId, versionNumber: 1, thumbnailAssetIds: [expect.stringMatching(/^asset_/)], widths: [320], thumbnailWidths: [320], pixels: 320 * 240 });
    const thumbnailId = result.thumbnailAssetIds[0]!;
    const image = await sharp(await readContent(thumbnailId)).metadata();
    expect(image).toMatchObject({ format: 'png', width: 320, height: 240 });

    const source = await getAsset(assetId);
    expect(source.processed).toBe(true);
    expect(source.thumbnailAssetIds).toEqual([thumbnailId]);
    const thumbnail = await getAsset(thumbnailId);
    // A thumbnail belongs to its source's owner, who can thus read it.
    expect(thumbnail).toMatchObject({ contentType: 'image/png', derivedFrom: { assetId, versionNumber: 1, width: 320 }, createdBy: 'service-1', createdByRole: 'service', tenant: null });

    expect(run.progress.at(-1)).toBe(100);
    expect([...run.progress].sort((a, b) => a - b)).toEqual(run.progress);
  });

  it.each<[ImageContentType, string]>([
    ['image/jpeg', 'jpeg'],
    ['image/webp', 'webp'],
    ['image/png', 'png'],
  ])('makes a %s thumbnail per requested width, in the source format, keeping the aspect ratio', async (contentType, format) => {
    const assetId = await uploadImage(contentType, 400, 300);

    const result = await handler()(fakeRun({ assetId, versionNumber: 1, sizes: [64, 200, 64, 1000] }).context);

    // A repeated width is made once; a width above the source's gets the source's width (never enlarged).
    expect(result.widths).toEqual([64, 200, 1000]);
    expect(result.thumbnailWidths).toEqual([64, 200, 400]);
    expect(result.pixels).toBe(64 * 48 + 200 * 150 + 400 * 300);
    expect(new Set(result.thumbnailAssetIds).size).toBe(3);
    for (const [i, width] of result.thumbnailWidths.entries()) {
      const image = await sharp(await readContent(result.thumbnailAssetIds[i]!)).metadata();
      expect(image).toMatchObject({ format, width, height: (width * 3) / 4 });
    }
    expect((await getAsset(assetId)).thumbnailAssetIds).toEqual(result.thumbnailAssetIds);
  });

  it('fails permanently for a version that is not the current one, and makes nothing', async () => {
    const assetId = await uploadImage('image/png', 50, 50);
    await assets.addVersion({ assetId, content: await makeImage({ contentType: 'image/png', width: 60, height: 60 }), contentType: 'image/png', principal: OWNER });

    await expectPermanentFailure(handler()(fakeRun({ assetId, versionNumber: 1 }).context), 'asset_version_mismatch');
    await expectPermanentFailure(handler()(fakeRun({ assetId, versionNumber: 3 }).context), 'asset_version_mismatch');
    expect(await countThumbnails(assetId)).toBe(0);
  });

  it.each([
    ['an unknown asset id', `asset_${'f'.repeat(24)}`],
    ['a malformed asset id', 'no-such-thing'],
  ])('fails permanently for %s', async (_name, assetId) => {
    await expectPermanentFailure(handler()(fakeRun({ assetId, versionNumber: 1 }).context), 'asset_not_found');
  });

  it('fails permanently when the stored bytes are not an image', async () => {
    // Straight into the store: the upload path would refuse these bytes.
    const store = new AssetRepository(db.connection);
    const assetId = `asset_${randomBytes(12).toString('hex')}`;
    const bytes = Buffer.from('this is text pretending to be a png');
    const fileId = await store.files.upload({ bytes, filename: 'fake.png', metadata: { assetId } });
    const now = new Date();
    const asset: Asset = {
      assetId,
      filename: 'fake.png',
      contentType: 'image/png',
      size: bytes.length,
      versionNumber: 1,
      versions: [{ versionNumber: 1, fileId, size: bytes.length, contentType: 'image/png', createdAt: now }],
      processed: false,
      thumbnailAssetIds: [],
      derivedFrom: null,
      createdBy: OWNER.sub,
      createdByRole: 'service',
      tenant: null,
      createdAt: now,
      updatedAt: now,
    };
    expect(await store.insertAsset(asset)).toBe(true);

    await expectPermanentFailure(handler()(fakeRun({ assetId, versionNumber: 1 }).context), 'image_undecodable');
    expect((await getAsset(assetId)).processed).toBe(false);
  });

  it('fails permanently for an image whose header is fine but whose pixels are cut off', async () => {
    const png = await makeImage({ contentType: 'image/png', width: 300, height: 300 });
    const receipt = await assets.createAsset({ principal: OWNER, content: png.subarray(0, 200), contentType: 'image/png' });

    await expectPermanentFailure(handler()(fakeRun({ assetId: receipt.assetId, versionNumber: 1 }).context), 'image_undecodable');
    expect(await countThumbnails(receipt.assetId)).toBe(0);
  });

  it('creates no duplicates when the same job runs twice', async () => {
    const assetId = await uploadImage('image/jpeg', 300, 200);
    const payload = { assetId, versionNumber: 1, sizes: [100, 150] };

    const first = await handler()(fakeRun(payload).context);
    const second = await handler()(fakeRun(payload).context);

    expect(second).toEqual(first);
    expect(await countThumbnails(assetId)).toBe(2);
    expect(await countThumbnailFiles(assetId)).toBe(2);
    expect((await getAsset(assetId)).thumbnailAssetIds).toEqual(first.thumbnailAssetIds);
  });

  it('creates no duplicates when runs of the same job overlap', async () => {
    const assetId = await uploadImage('image/webp', 320, 240);
    const payload = { assetId, versionNumber: 1, sizes: [40, 80, 120] };

    const results = await Promise.all(Array.from({ length: 4 }, () => handler()(fakeRun(payload).context)));

    for (const result of results) expect(result).toEqual(results[0]);
    expect(await countThumbnails(assetId)).toBe(3);
    expect(await countThumbnailFiles(assetId)).toBe(3);
    expect((await getAsset(assetId)).thumbnailAssetIds).toEqual(results[0]!.thumbnailAssetIds);
  });

  it('keeps one thumbnail, and no orphaned bytes, when stores of the same thumbnail race', async () => {
    const assetId = await uploadImage('image/png', 100, 100);
    const bytes = await makeImage({ contentType: 'image/png', width: 10, height: 10 });
    const params = { assetId, versionNumber: 1, width: 10, bytes, contentType: 'image/png' as const, filename: 't.png', owner: { createdBy: 'test', createdByRole: 'service' as const, tenant: null } };

    // Straight at the service, so every caller misses the existence check and the insert decides.
    const stored = await Promise.all(Array.from({ length: 6 }, () => assets.storeThumbnail(params)));

    expect(new Set(stored.map((t) => t.assetId)).size).toBe(1);
    expect(await countThumbnails(assetId)).toBe(1);
    expect(await countThumbnailFiles(assetId)).toBe(1);
  });

  it('stops when its signal is aborted, and a retry finishes the work without duplicates', async () => {
    const assetId = await uploadImage('image/png', 200, 100);
    const payload = { assetId, versionNumber: 1, sizes: [20, 40, 60] };
    // Abort right after the first thumbnail is stored, as a timeout or a shutdown would.
    const interrupted = fakeRun(payload, (percent, controller) => {
      if (percent > 10) controller.abort(new Error('lease timed out'));
    });

    await expect(handler()(interrupted.context)).rejects.toThrow('lease timed out');
    expect(await countThumbnails(assetId)).toBe(1);
    expect((await getAsset(assetId)).processed).toBe(false);

    const retried = await handler()(fakeRun(payload).context);
    expect(retried.widths).toEqual([20, 40, 60]);
    expect(await countThumbnails(assetId)).toBe(3);
    expect(await countThumbnailFiles(assetId)).toBe(3);
    expect((await getAsset(assetId)).processed).toBe(true);
  });

  it('does nothing when its signal is already aborted', async () => {
    const assetId = await uploadImage('image/png', 50, 50);
    const run = fakeRun({ assetId, versionNumber: 1 });
    run.controller.abort();

    await expect(handler()(run.context)).rejects.toMatchObject({ name: 'AbortError' });
    expect(await countThumbnails(assetId)).toBe(0);
    expect(run.progress).toEqual([]);
  });

  it('a new version resets processed and thumbnails; its own job makes new ones', async () => {
    const assetId = await uploadImage('image/png', 200, 200);
    const first = await handler()(fakeRun({ assetId, versionNumber: 1 }).context);

    const receipt = await assets.addVersion({ assetId, content: await makeImage({ contentType: 'image/jpeg', width: 640, height: 320 }), contentType: 'image/jpeg', principal: OWNER });
    expect(receipt.versionNumber).toBe(2);
    expect(await getAsset(assetId)).toMatchObject({ versionNumber: 2, processed: false, thumbnailAssetIds: [] });

    const second = await handler()(fakeRun({ assetId, versionNumber: 2 }).context);
    expect(second.thumbnailAssetIds).not.toEqual(first.thumbnailAssetIds);
    expect(await sharp(await readContent(second.thumbnailAssetIds[0]!)).metadata()).toMatchObject({ format: 'jpeg', width: 320, height: 160 });
    expect(await getAsset(assetId)).toMatchObject({ versionNumber: 2, processed: true, thumbnailAssetIds: second.thumbnailAssetIds });
  });

  it('fails permanently, leaving the newer version unprocessed, when a version arrives mid-run', async () => {
    const assetId = await uploadImage('image/png', 100, 100);
    const newer = await makeImage({ contentType: 'image/png', width: 90, height: 90 });
    const deps: ThumbnailHandlerDeps = {
      assets: {
        findAsset: (id) => assets.findAsset(id),
        readVersion: (params) => assets.readVersion(params),
        findThumbnail: (key) => assets.findThumbnail(key),
        recordThumbnails: (params) => assets.recordThumbnails(params),
        storeThumbnail: async (params) => {
          const stored = await assets.storeThumbnail(params);
          await assets.addVersion({ assetId, content: newer, contentType: 'image/png', principal: OWNER });
          return stored;
        },
      },
    };

    await expectPermanentFailure(createThumbnailHandler(deps)(fakeRun({ assetId, versionNumber: 1 }).context), 'asset_version_mismatch');
    expect(await getAsset(assetId)).toMatchObject({ versionNumber: 2, processed: false, thumbnailAssetIds: [] });
  });
});

/** Uploads the bytes as the owner's PNG (only the signature is checked on upload). */
async function uploadPngBytes(bytes: Buffer): Promise<string> {
  return (await assets.createAsset({ principal: OWNER, content: bytes, contentType: 'image/png' })).assetId;
}

/**
 * A 90-byte PNG whose header declares width × height while its pixel data is one pixel: decoding it
 * would fail (image_undecodable), so a refusal by size proves the header alone was read.
 */
async function pngDeclaring(width: number, height: number): Promise<Buffer> {
  const png = Buffer.from(await sharp({ create: { width: 1, height: 1, channels: 3, background: '#000000' } }).png().toBuffer());
  // IHDR: 8-byte signature, 4-byte length, "IHDR", then width and height; its CRC covers type and data.
  png.writeUInt32BE(width, 16);
  png.writeUInt32BE(height, 20);
  png.writeUInt32BE(crc32(png.subarray(12, 29)), 29);
  return png;
}

describe('thumbnail.create bounds its work (issue 11)', () => {
  const handler = (limits?: ThumbnailHandlerDeps['limits']): ReturnType<typeof createThumbnailHandler> => createThumbnailHandler({ assets, ...(limits ? { limits } : {}) });

  it('never enlarges: a 1x100 PNG asked for 4096 wide finishes at once with a thumbnail as wide as the source', async () => {
    const assetId = await uploadImage('image/png', 1, 100);
    const started = Date.now();

    const result = await handler()(fakeRun({ assetId, versionNumber: 1, sizes: [4096] }).context);

    // Enlarging it took 35-50 s of CPU and stored 5.5-23 MB.
    expect(Date.now() - started).toBeLessThan(3_000);
    expect(result).toMatchObject({ widths: [4096], thumbnailWidths: [1], pixels: 100 });
    const thumbnail = await readContent(result.thumbnailAssetIds[0]!);
    expect(await sharp(thumbnail).metadata()).toMatchObject({ format: 'png', width: 1, height: 100 });
    expect(thumbnail.length).toBeLessThan(2_000);
  });

  it('gives every width at or above the source one thumbnail, keyed by the width it comes out at', async () => {
    const assetId = await uploadImage('image/webp', 100, 50);

    const first = await handler()(fakeRun({ assetId, versionNumber: 1, sizes: [400, 60, 100, 4096] }).context);
    expect(first.thumbnailWidths).toEqual([100, 60, 100, 100]);
    expect(first.pixels).toBe(100 * 50 + 60 * 30);
    const [atSource, sixty] = [first.thumbnailAssetIds[0]!, first.thumbnailAssetIds[1]!];
    expect(first.thumbnailAssetIds).toEqual([atSource, sixty, atSource, atSource]);
    expect(await countThumbnails(assetId)).toBe(2);
    expect((await getAsset(atSource)).derivedFrom).toEqual({ assetId, versionNumber: 1, width: 100 });
    expect((await getAsset(assetId)).thumbnailAssetIds).toEqual([atSource, sixty]);

    // Another job asking for the source width itself finds the same thumbnail.
    const second = await handler()(fakeRun({ assetId, versionNumber: 1, sizes: [100] }).context);
    expect(second.thumbnailAssetIds).toEqual([atSource]);
    expect(await countThumbnails(assetId)).toBe(2);
    expect(await countThumbnailFiles(assetId)).toBe(2);
  });

  it('fails permanently (image_too_large) from the header alone for an image over the input-pixel limit', async () => {
    const bomb = await pngDeclaring(20_000, 20_000);
    expect(bomb.length).toBeLessThan(100);
    const assetId = await uploadPngBytes(bomb);
    const started = Date.now();

    await expectPermanentFailure(handler()(fakeRun({ assetId, versionNumber: 1, sizes: [64] }).context), 'image_too_large');

    expect(Date.now() - started).toBeLessThan(2_000);
    expect(await countThumbnails(assetId)).toBe(0);
    expect((await getAsset(assetId)).processed).toBe(false);
  });

  it('refuses a real, decodable image just over the limit the same way', async () => {
    // 7000 x 6000 = 42 megapixels of one colour: about 130 KB of PNG.
    const solid = await sharp({ create: { width: 7_000, height: 6_000, channels: 3, background: '#336699' } }).png({ compressionLevel: 9 }).toBuffer();
    expect(7_000 * 6_000).toBeGreaterThan(DEFAULT_THUMBNAIL_LIMITS.maxInputPixels);
    const assetId = await uploadPngBytes(solid);

    await expectPermanentFailure(handler()(fakeRun({ assetId, versionNumber: 1, sizes: [64] }).context), 'image_too_large');
    expect(await countThumbnails(assetId)).toBe(0);
  });

  it('refuses, before making any, a thumbnail over the per-thumbnail pixel cap (a very tall source)', async () => {
    const assetId = await uploadImage('image/png', 10, 2_000);

    await expectPermanentFailure(handler({ maxThumbnailPixels: 10_000 })(fakeRun({ assetId, versionNumber: 1, sizes: [5, 10] }).context), 'thumbnail_too_large');
    expect(await countThumbnails(assetId)).toBe(0);
  });

  it('refuses, before making any, a job whose thumbnails together exceed the per-job pixel cap', async () => {
    const assetId = await uploadImage('image/jpeg', 200, 200);
    const limits = { maxJobPixels: 50_000 };

    // 200² + 150² = 62,500 pixels.
    await expectPermanentFailure(handler(limits)(fakeRun({ assetId, versionNumber: 1, sizes: [100, 150, 200, 400] }).context), 'thumbnail_job_too_large');
    expect(await countThumbnails(assetId)).toBe(0);
    expect((await getAsset(assetId)).processed).toBe(false);

    // Within the cap the same limits let it through.
    const result = await handler(limits)(fakeRun({ assetId, versionNumber: 1, sizes: [100, 150] }).context);
    expect(result.pixels).toBe(100 * 100 + 150 * 150);
  });
});
