import { randomBytes } from 'node:crypto';

import type { Express } from 'express';
import request from 'supertest';

import { createApp } from '../../src/app';
import type { ImageContentType } from '../../src/model/asset';
import { createAssetService } from '../../src/assets/asset-service';
import { ROLES, type Role } from '../../src/model/principal';
import { assetRoutes } from '../../src/http/asset-routes';
import { ensureAssetIndexes } from '../../src/storage/asset-model';
import { AssetRepository } from '../../src/storage/asset-repository';
import { makeImage } from '../fixtures/images';
import { silentLogger } from '../helpers/app';
import { useTestDatabase } from '../helpers/database';
import { bearer, TEST_JWT_SECRET } from '../helpers/tokens';

const db = useTestDatabase();
let app: Express;

beforeAll(async () => {
  await ensureAssetIndexes(db.connection);
  app = createApp({
    logger: silentLogger,
    jwtSecret: TEST_JWT_SECRET,
    isDatabaseReady: async () => true,
    // Above the default, so that concurrent uploads to one asset race in the service, not at the door.
    routers: [assetRoutes({ assets: createAssetService(db.connection), uploadConcurrency: 16 })],
  });
});

const service = bearer('service');
const UNKNOWN_ASSET = `asset_${'0'.repeat(24)}`;

async function upload(bytes: Buffer, contentType: string, path = '/assets'): Promise<request.Response> {
  return request(app).post(path).set(service).set('Content-Type', contentType).send(bytes);
}

async function uploadPng(): Promise<string> {
  const res = await upload(await makeImage({ contentType: 'image/png', width: 40, height: 30 }), 'image/png');
  expect(res.status).toBe(201);
  return res.body.assetId as string;
}

/** supertest buffers image responses into `body`; this makes sure we compare bytes, whatever the type. */
function binary(req: request.Test): request.Test {
  return req.buffer(true).parse((res, callback) => {
    const parts: Buffer[] = [];
    res.on('data', (part: Buffer) => parts.push(part));
    res.on('end', () => callback(null, Buffer.concat(parts)));
  });
}

describe('uploading an image', () => {
  it.each<ImageContentType>(['image/png', 'image/jpeg', 'image/webp'])('stores a %s and gives back the same bytes', async (contentType) => {
    const bytes = await makeImage({ contentType, width: 64, height: 48 });

    const created = await upload(bytes, contentType);
    expect(created.status).toBe(201);
    expect(created.body).toEqual({ assetId: expect.stringMatching(/^asset_[0-9a-f]{24}$/), versionNumber: 1, contentType, size: bytes.length });

    const content = await binary(request(app).get(`/assets/${created.body.assetId}/content`).set(service));
    expect(content.status).toBe(200);
    expect(content.headers['content-type']).toBe(contentType);
    expect(content.headers['content-length']).toBe(String(bytes.length));
    expect(Buffer.compare(content.body as Buffer, bytes)).toBe(0);
  });

  it('gives back an image that spans many GridFS chunks byte for byte', async () => {
    // Only the signature is checked on upload; random bytes make the file large without an encoder.
    const bytes = Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), randomBytes(1_200_000)]);
    const created = await upload(bytes, 'image/png');
    expect(created.status).toBe(201);

    const content = await binary(request(app).get(`/assets/${created.body.assetId}/content`).set(service));
    expect(content.headers['content-length']).toBe(String(bytes.length));
    expect(Buffer.compare(content.body as Buffer, bytes)).toBe(0);
  });

  it('answers metadata, with the filename given at upload', async () => {
    const bytes = await makeImage({ contentType: 'image/webp', width: 20, height: 10 });
    const created = await request(app).post('/assets?filename=cat.webp').set(bearer('admin', 'ops')).set('Content-Type', 'image/webp').send(bytes);
    expect(created.status).toBe(201);

    const res = await request(app).get(`/assets/${created.body.assetId}`).set(bearer('admin', 'ops'));
    expect(res.status).toBe(200);
    expect(res.body).toEqual({
      assetId: created.body.assetId,
      filename: 'cat.webp',
      contentType: 'image/webp',
      size: bytes.length,
      versionNumber: 1,
      processed: false,
      thumbnailAssetIds: [],
      derivedFrom: null,
      versions: [{ versionNumber: 1, contentType: 'image/webp', size: bytes.length, createdAt: expect.any(String) }],
      createdBy: 'ops',
      createdByRole: 'admin',
      tenant: null,
      createdAt: expect.any(String),
      updatedAt: expect.any(String),
    });
    expect(new Date(res.body.createdAt as string).toISOString()).toBe(res.body.createdAt);
  });

  it('accepts a Content-Type with parameters and in any case', async () => {
    const res = await upload(await makeImage({ contentType: 'image/png', width: 8, height: 8 }), 'Image/PNG; foo=bar');
    expect(res.status).toBe(201);
    expect(res.body.contentType).toBe('image/png');
  });

  it.each([
    ['text/plain', 'text/plain', Buffer.from('hello')],
    ['application/json', 'application/json', Buffer.from('{"a":1}')],
    ['application/octet-stream', 'application/octet-stream', Buffer.from([0x89, 0x50, 0x4e, 0x47])],
    ['image/gif', 'image/gif', Buffer.from('GIF89a')],
  ])('refuses %s with 415 unsupported_media_type', async (_name, contentType, bytes) => {
    const res = await upload(bytes, contentType);
    expect(res.status).toBe(415);
    expect(res.body).toEqual({ error: { code: 'unsupported_media_type', message: expect.any(String) } });
  });

  it('refuses a body without a Content-Type with 415', async () => {
    const res = await request(app).post('/assets').set(service).unset('Content-Type').send();
    expect(res.status).toBe(415);
  });

  it('refuses bytes that are not the declared image type with 415', async () => {
    const jpeg = await makeImage({ contentType: 'image/jpeg', width: 8, height: 8 });
    const wrongType = await upload(jpeg, 'image/png');
    expect(wrongType.status).toBe(415);
    expect(wrongType.body.error.code).toBe('unsupported_media_type');

    const notAnImage = await upload(Buffer.from('definitely not a webp file'), 'image/webp');
    expect(notAnImage.status).toBe(415);
    expect(notAnImage.body.error.code).toBe('unsupported_media_type');
  });

  it('refuses an empty body with 422 validation_error', async () => {
    const res = await upload(Buffer.alloc(0), 'image/png');
    expect(res.status).toBe(422);
    expect(res.body.error.code).toBe('validation_error');
  });

  it.each([
    ['a path', 'a%2Fb.png'],
    ['a control character', 'a%0Ab.png'],
    ['an overlong name', 'x'.repeat(300)],
    ['a repeated parameter', 'a.png&filename=b.png'],
  ])('refuses a filename with %s with 422', async (_name, filename) => {
    const bytes = await makeImage({ contentType: 'image/png', width: 8, height: 8 });
    const res = await request(app).post(`/assets?filename=${filename}`).set(service).set('Content-Type', 'image/png').send(bytes);
    expect(res.status).toBe(422);
    expect(res.body.error.code).toBe('validation_error');
  });

  it('refuses a body over 25 MB with 413 payload_too_large', async () => {
    const bytes = Buffer.alloc(25 * 1024 * 1024 + 1);
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]).copy(bytes);
    const res = await upload(bytes, 'image/png');
    expect(res.status).toBe(413);
    expect(res.body.error.code).toBe('payload_too_large');
  });
});

describe('versions', () => {
  it('stores an upload to an existing asset as its next version, which becomes the content', async () => {
    const assetId = await uploadPng();
    const webp = await makeImage({ contentType: 'image/webp', width: 30, height: 30 });

    const res = await upload(webp, 'image/webp', `/assets/${assetId}`);
    expect(res.status).toBe(201);
    expect(res.body).toEqual({ assetId, versionNumber: 2, contentType: 'image/webp', size: webp.length });

    const meta = await request(app).get(`/assets/${assetId}`).set(service);
    expect(meta.body).toMatchObject({ versionNumber: 2, contentType: 'image/webp', size: webp.length, processed: false });
    expect(meta.body.versions.map((v: { versionNumber: number }) => v.versionNumber)).toEqual([1, 2]);

    const content = await binary(request(app).get(`/assets/${assetId}/content`).set(service));
    expect(content.headers['content-type']).toBe('image/webp');
    expect(Buffer.compare(content.body as Buffer, webp)).toBe(0);
  });

  it('numbers concurrent uploads to one asset 2..n+1, losing none', async () => {
    const assetId = await uploadPng();
    const images = await Promise.all(Array.from({ length: 12 }, (_, i) => makeImage({ contentType: 'image/png', width: 10 + i, height: 10 })));

    const responses = await Promise.all(images.map((bytes) => upload(bytes, 'image/png', `/assets/${assetId}`)));
    expect(responses.map((r) => r.status)).toEqual(images.map(() => 201));
    const numbers = responses.map((r) => r.body.versionNumber as number).sort((a, b) => a - b);
    expect(numbers).toEqual(Array.from({ length: 12 }, (_, i) => i + 2));

    const meta = await request(app).get(`/assets/${assetId}`).set(service);
    expect(meta.body.versionNumber).toBe(13);
    const versions = meta.body.versions as { versionNumber: number; size: number }[];
    expect(versions.map((v) => v.versionNumber).sort((a, b) => a - b)).toEqual(Array.from({ length: 13 }, (_, i) => i + 1));
    // Each upload's bytes are recorded under the number its response gave.
    for (const [i, response] of responses.entries()) {
      expect(versions.find((v) => v.versionNumber === response.body.versionNumber)?.size).toBe(images[i]!.length);
    }
  });

  it('answers 404 asset_not_found for a new version of an unknown asset', async () => {
    const res = await upload(await makeImage({ contentType: 'image/png', width: 8, height: 8 }), 'image/png', `/assets/${UNKNOWN_ASSET}`);
    expect(res.status).toBe(404);
    expect(res.body.error.code).toBe('asset_not_found');
  });
});

describe('reading assets', () => {
  it.each(['', '/content'])('answers 404 asset_not_found for GET /assets/<unknown>%s', async (suffix) => {
    const res = await request(app).get(`/assets/${UNKNOWN_ASSET}${suffix}`).set(service);
    expect(res.status).toBe(404);
    expect(res.body).toEqual({ error: { code: 'asset_not_found', message: expect.any(String) } });
  });

  it.each([
    ['GET', '/assets/not-an-id'],
    ['GET', '/assets/asset_XYZ/content'],
    ['GET', `/assets/${UNKNOWN_ASSET}0`],
    ['POST', '/assets/asset_12'],
  ])('answers 422 validation_error for %s %s', async (method, path) => {
    const req = method === 'GET' ? request(app).get(path) : request(app).post(path).set('Content-Type', 'image/png').send(Buffer.from('x'));
    const res = await req.set(service);
    expect(res.status).toBe(422);
    expect(res.body.error.code).toBe('validation_error');
  });
});

describe('storage failures', () => {
  it('answers a whole 500 error, not a cut-off 200, when the bytes cannot be read', async () => {
    const assetId = await uploadPng();
    const store = new AssetRepository(db.connection);
    const asset = await store.findAsset(assetId);
    await store.files.delete(asset!.versions[0]!.fileId);

    const res = await request(app).get(`/assets/${assetId}/content`).set(service);
    expect(res.status).toBe(500);
    expect(res.body).toEqual({ error: { code: 'internal', message: 'internal error' } });
  });
});

describe('permissions', () => {
  let assetId: string;
  let png: Buffer;
  beforeAll(async () => {
    assetId = await uploadPng();
    png = await makeImage({ contentType: 'image/png', width: 8, height: 8 });
  });

  const mayWrite: Record<Role, boolean> = { admin: true, service: true, worker: false, user: false };
  const mayRead: Record<Role, boolean> = { admin: true, service: true, worker: true, user: false };

  it.each(ROLES)('uploads as %s', async (role) => {
    const created = await request(app).post('/assets').set(bearer(role)).set('Content-Type', 'image/png').send(png);
    const versioned = await request(app).post(`/assets/${assetId}`).set(bearer(role)).set('Content-Type', 'image/png').send(png);
    for (const res of [created, versioned]) {
      expect(res.status).toBe(mayWrite[role] ? 201 : 403);
      if (!mayWrite[role]) expect(res.body.error.code).toBe('permission_denied');
    }
  });

  it.each(ROLES)('reads as %s', async (role) => {
    for (const path of [`/assets/${assetId}`, `/assets/${assetId}/content`]) {
      const res = await request(app).get(path).set(bearer(role));
      expect(res.status).toBe(mayRead[role] ? 200 : 403);
    }
  });

  it.each([
    ['POST', '/assets'],
    ['GET', `/assets/${UNKNOWN_ASSET}`],
    ['GET', `/assets/${UNKNOWN_ASSET}/content`],
  ])('answers 401 without a token for %s %s', async (method, path) => {
    const res = method === 'GET' ? await request(app).get(path) : await request(app).post(path).set('Content-Type', 'image/png').send(png);
    expect(res.status).toBe(401);
    expect(res.body.error.code).toBe('unauthenticated');
  });
});
