import type { Express } from 'express';
import request from 'supertest';

import { createAssetService, type AssetService } from '../../src/assets/asset-service';
import type { Principal, Role } from '../../src/model/principal';
import { assetModel } from '../../src/storage/asset-model';
import { createThumbnailHandler } from '../../src/worker/handlers/thumbnail-create';
import { makeImage } from '../fixtures/images';
import { buildTestApp, silentLogger } from '../helpers/app';
import { useTestDatabase } from '../helpers/database';
import { tokenFor } from '../helpers/tokens';

/**
 * Who may read an asset and upload versions over it (issue 11): owner, admin and (for reads) workers,
 * all within the asset's tenant; everyone else gets the answer an unknown asset id gets.
 */

const db = useTestDatabase();
let app: Express;
let assets: AssetService;

beforeAll(() => {
  app = buildTestApp(db);
  assets = createAssetService(db.connection);
});

function auth(role: Role, sub: string, tenant?: string): { Authorization: string } {
  return { Authorization: `Bearer ${tokenFor(role, sub, tenant === undefined ? undefined : { tenant })}` };
}

const OWNER = { role: 'service', sub: 'svc-a1', tenant: 'tenant-a' } as const;
const asOwner = auth(OWNER.role, OWNER.sub, OWNER.tenant);

async function uploadAs(headers: { Authorization: string }, bytes: Buffer, path = '/assets'): Promise<request.Response> {
  return request(app).post(path).set(headers).set('Content-Type', 'image/png').send(bytes);
}

async function ownedAsset(): Promise<{ assetId: string; bytes: Buffer }> {
  const bytes = await makeImage({ contentType: 'image/png', width: 24, height: 16 });
  const res = await uploadAs(asOwner, bytes);
  expect(res.status).toBe(201);
  return { assetId: res.body.assetId as string, bytes };
}

function expectHidden(res: request.Response): void {
  expect({ status: res.status, body: res.body as unknown }).toEqual({ status: 404, body: { error: { code: 'asset_not_found', message: expect.any(String) } } });
}

/** The asset as stored, to prove a refused request changed nothing. */
function storedState(assetId: string): Promise<unknown> {
  return assetModel(db.connection).findOne({ assetId }, { _id: 0, versions: 1, versionNumber: 1, size: 1, contentType: 1, updatedAt: 1 }).lean();
}

describe('asset ownership', () => {
  it('records who created an asset: sub, role and tenant of the token', async () => {
    const { assetId } = await ownedAsset();
    const res = await request(app).get(`/assets/${assetId}`).set(asOwner);
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ createdBy: OWNER.sub, createdByRole: 'service', tenant: OWNER.tenant });
  });

  it.each<[string, Role, string, string | undefined]>([
    ['a service of another tenant', 'service', 'svc-b1', 'tenant-b'],
    ['a worker of another tenant', 'worker', 'worker-b1', 'tenant-b'],
    ['an admin of another tenant', 'admin', 'admin-b1', 'tenant-b'],
    ['the owner sub in another tenant', 'service', OWNER.sub, 'tenant-b'],
    ['the owner sub without a tenant', 'service', OWNER.sub, undefined],
    ['another service of the same tenant', 'service', 'svc-a2', 'tenant-a'],
  ])('%s cannot read it nor its content: 404 as for an unknown id', async (_who, role, sub, tenant) => {
    const { assetId } = await ownedAsset();
    expectHidden(await request(app).get(`/assets/${assetId}`).set(auth(role, sub, tenant)));
    expectHidden(await request(app).get(`/assets/${assetId}/content`).set(auth(role, sub, tenant)));
  });

  it.each<[string, Role, string, string | undefined]>([
    ['another service of the same tenant', 'service', 'svc-a2', 'tenant-a'],
    ['a service of another tenant', 'service', 'svc-b1', 'tenant-b'],
    ['an admin of another tenant', 'admin', 'admin-b1', 'tenant-b'],
  ])('%s cannot upload a version over it (404), and the asset is unchanged', async (_who, role, sub, tenant) => {
    const { assetId } = await ownedAsset();
    const before = await storedState(assetId);

    const res = await uploadAs(auth(role, sub, tenant), await makeImage({ contentType: 'image/png', width: 8, height: 8 }), `/assets/${assetId}`);

    expectHidden(res);
    expect(await storedState(assetId)).toEqual(before);
    const meta = await request(app).get(`/assets/${assetId}`).set(asOwner);
    expect(meta.body).toMatchObject({ versionNumber: 1, processed: false });
  });

  it('a user token with the owner service sub is not the owner', async () => {
    const { assetId } = await ownedAsset();
    // Over HTTP the role alone already refuses it...
    const res = await request(app).get(`/assets/${assetId}`).set(auth('user', OWNER.sub, OWNER.tenant));
    expect(res.status).toBe(403);
    expect(res.body.error.code).toBe('permission_denied');
    // ...and the access rule does not take it for the owner either.
    const user: Principal = { sub: OWNER.sub, role: 'user', tenant: OWNER.tenant };
    await expect(assets.getAsset({ principal: user, assetId })).rejects.toMatchObject({ code: 'asset_not_found' });
    await expect(assets.openContent({ principal: user, assetId })).rejects.toMatchObject({ code: 'asset_not_found' });
  });

  it('the owner reads it and uploads versions', async () => {
    const { assetId, bytes } = await ownedAsset();
    const content = await request(app).get(`/assets/${assetId}/content`).set(asOwner).buffer(true).parse(collectBytes);
    expect(content.status).toBe(200);
    expect(Buffer.compare(content.body as Buffer, bytes)).toBe(0);

    const version = await uploadAs(asOwner, await makeImage({ contentType: 'image/png', width: 9, height: 9 }), `/assets/${assetId}`);
    expect(version.status).toBe(201);
    expect(version.body.versionNumber).toBe(2);
  });

  it.each<[string, string | undefined]>([
    ['an admin of the tenant', 'tenant-a'],
    ['an admin without a tenant', undefined],
  ])('%s reads it and uploads versions', async (_who, tenant) => {
    const { assetId } = await ownedAsset();
    const admin = auth('admin', 'ops', tenant);
    expect((await request(app).get(`/assets/${assetId}`).set(admin)).status).toBe(200);
    expect((await request(app).get(`/assets/${assetId}/content`).set(admin)).status).toBe(200);
    const version = await uploadAs(admin, await makeImage({ contentType: 'image/png', width: 9, height: 9 }), `/assets/${assetId}`);
    expect(version.status).toBe(201);
    // The asset stays its creator's: an admin's version does not take it over.
    const meta = await request(app).get(`/assets/${assetId}`).set(asOwner);
    expect(meta.body).toMatchObject({ versionNumber: 2, createdBy: OWNER.sub, createdByRole: 'service', tenant: OWNER.tenant });
  });

  it.each<[string, string | undefined]>([
    ['a worker of the tenant', 'tenant-a'],
    ['a worker without a tenant', undefined],
  ])('%s reads it (workers process assets) but cannot upload', async (_who, tenant) => {
    const { assetId } = await ownedAsset();
    const worker = auth('worker', 'worker-a1', tenant);
    expect((await request(app).get(`/assets/${assetId}`).set(worker)).status).toBe(200);
    expect((await request(app).get(`/assets/${assetId}/content`).set(worker)).status).toBe(200);
    const version = await uploadAs(worker, await makeImage({ contentType: 'image/png', width: 9, height: 9 }), `/assets/${assetId}`);
    expect(version.status).toBe(403);
  });

  it('an asset stored before roles were recorded counts as created by a service', async () => {
    const { assetId } = await ownedAsset();
    await assetModel(db.connection).collection.updateOne({ assetId }, { $unset: { createdByRole: '' } });

    expect((await request(app).get(`/assets/${assetId}`).set(asOwner)).status).toBe(200);
    expectHidden(await request(app).get(`/assets/${assetId}`).set(auth('service', 'svc-a2', OWNER.tenant)));
    const meta = await request(app).get(`/assets/${assetId}`).set(auth('admin', 'ops'));
    expect(meta.body.createdByRole).toBeNull();
  });

  it("thumbnails made by the worker belong to the source asset's owner", async () => {
    const bytes = await makeImage({ contentType: 'image/png', width: 60, height: 40 });
    const created = await uploadAs(asOwner, bytes);
    const assetId = created.body.assetId as string;
    const handler = createThumbnailHandler({ assets });
    const result = await handler({
      jobId: 'job_0123456789abcdef01234567',
      type: 'thumbnail.create',
      payload: { assetId, versionNumber: 1, sizes: [30] },
      attempt: 1,
      signal: new AbortController().signal,
      reportProgress: () => undefined,
      pointOfNoReturn: async () => undefined,
      checkpoint: null,
      saveCheckpoint: async () => undefined,
      uploadFile: () => Promise.reject(new Error('this handler uploads no files')),
      logger: silentLogger,
    });
    const thumbnailId = result.thumbnailAssetIds[0]!;

    const meta = await request(app).get(`/assets/${thumbnailId}`).set(asOwner);
    expect(meta.status).toBe(200);
    expect(meta.body).toMatchObject({ createdBy: OWNER.sub, createdByRole: 'service', tenant: OWNER.tenant, derivedFrom: { assetId, versionNumber: 1, width: 30 } });
    expect((await request(app).get(`/assets/${thumbnailId}/content`).set(asOwner)).status).toBe(200);
    expectHidden(await request(app).get(`/assets/${thumbnailId}/content`).set(auth('service', 'svc-a2', OWNER.tenant)));
    expectHidden(await request(app).get(`/assets/${thumbnailId}`).set(auth('worker', 'worker-b1', 'tenant-b')));
  });
});

/** supertest's parser for image bodies: the bytes as they came. */
const collectBytes: Parameters<request.Test['parse']>[0] = (res, callback) => {
  const parts: Buffer[] = [];
  res.on('data', (part: Buffer) => parts.push(part));
  res.on('end', () => callback(null, Buffer.concat(parts)));
};
