import type { Readable } from 'node:stream';

import type { Connection } from 'mongoose';

import { authorize, ownershipOf, type Action } from '../auth/access';
import { type Ownership } from '../model/principal';
import type { Principal } from '../model/principal';
import { ConflictError, InvalidStateError, NotFoundError, UnsupportedMediaTypeError, ValidationError, coerceError } from '../errors';
import { AssetRepository } from '../storage/asset-repository';
import { IMAGE_CONTENT_TYPES, IMAGE_SIGNATURE_BYTES, MAX_ASSET_BYTES, isImageContentType, receiptOf, type Asset, type DerivedFrom, type ImageContentType, type UploadReceipt } from '../model/asset';
import { newAssetId, parseAssetId } from './asset-id';
import { sniffImageType } from './image-format';
import { UploadBody } from './upload-body';

export interface AssetServiceDeps {
  store: AssetRepository;
  now?: () => Date;
  newAssetId?: () => string;
  /** The largest upload accepted (default MAX_ASSET_BYTES). */
  maxUploadBytes?: number;
}

export interface UploadParams {
  /** Who uploads: the owner of a new asset; for a new version, checked against the asset's owner. */
  principal: Principal;
  /** The image bytes as they arrive (streamed into storage, never held whole), or all of them. */
  content: AsyncIterable<Uint8Array> | Buffer;
  /** The declared media type (parameters such as `; charset` already stripped). */
  contentType: string;
  filename?: string;
}

/** Names one asset for a principal's read. */
export interface AssetRef {
  principal: Principal;
  assetId: string;
}

export interface AssetContent {
  /** Already reading: storage errors surface from `openContent`, not mid-stream. */
  stream: Readable;
  contentType: ImageContentType;
  size: number;
  versionNumber: number;
}

/** Identifies one thumbnail: a width of one version of a source asset. */
export type ThumbnailKey = DerivedFrom;

export interface StoreThumbnailParams extends ThumbnailKey {
  bytes: Buffer;
  contentType: ImageContentType;
  filename: string;
  /** The source asset's owner: a thumbnail is readable by whoever may read its source. */
  owner: Ownership;
}

const MAX_FILENAME_LENGTH = 255;
const UNSAFE_FILENAME = /[\u0000-\u001f\u007f/\\]/;
/**
 * Compare-and-set rounds for one new version. Each round some concurrent upload wins, so this bounds
 * how many uploads to the same asset may race before one is answered 409 (and may be retried).
 */
const MAX_VERSION_ROUNDS = 100;

/** 422 unless the value is absent or a plain file name (no path, no control characters). */
export function parseFilename(value: unknown): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || value.length === 0 || value.length > MAX_FILENAME_LENGTH || UNSAFE_FILENAME.test(value)) {
    throw new ValidationError('invalid filename', [
      { field: 'filename', message: `must be one name of 1-${MAX_FILENAME_LENGTH} characters, without path separators or control characters` },
    ]);
  }
  return value;
}

/** Images and their versions: uploads, metadata, content, and the thumbnails the thumbnail job makes. */
export class AssetService {
  private readonly store: AssetRepository;
  private readonly now: () => Date;
  private readonly newAssetId: () => string;
  private readonly maxUploadBytes: number;

  constructor(deps: AssetServiceDeps) {
    this.store = deps.store;
    this.now = deps.now ?? (() => new Date());
    this.newAssetId = deps.newAssetId ?? newAssetId;
    this.maxUploadBytes = deps.maxUploadBytes ?? MAX_ASSET_BYTES;
  }

  /** Stores a new asset, owned by the uploader, whose first version is the given image. */
  async createAsset(params: UploadParams): Promise<UploadReceipt> {
    const contentType = acceptedImageType(params.contentType);
    const filename = parseFilename(params.filename);
    const assetId = this.newAssetId();
    const { fileId, size } = await this.storeUpload({ content: params.content, contentType, filename: filename ?? assetId, assetId });
    const createdAt = this.now();
    const asset: Asset = {
      assetId,
      filename: filename ?? null,
      contentType,
      size,
      versionNumber: 1,
      versions: [{ versionNumber: 1, fileId, size, contentType, createdAt }],
      processed: false,
      thumbnailAssetIds: [],
      derivedFrom: null,
      ...ownershipOf(params.principal),
      createdAt,
      updatedAt: createdAt,
    };
    try {
      // 96 random bits: a collision means a broken random source, not a caller's mistake.
      if (!(await this.store.insertAsset(asset))) throw new Error(`asset id ${assetId} already exists`);
    } catch (rawErr) {
      await this.discardFile(fileId);
      throw coerceError(rawErr);
    }
    return receiptOf(asset);
  }

  /**
   * Stores the image as the asset's next version, which becomes current and unprocessed. Only its
   * owner or an admin (of its tenant) may; anyone else gets `asset_not_found`, as for an unknown id.
   */
  async addVersion(params: UploadParams & { assetId: string }): Promise<UploadReceipt> {
    const assetId = parseAssetId(params.assetId);
    const contentType = acceptedImageType(params.contentType);
    const filename = parseFilename(params.filename);
    // Checked before reading any bytes, so a forbidden or unknown asset costs no upload.
    const current = await this.authorized({ principal: params.principal, assetId }, 'write');
    if (current.derivedFrom) throw new InvalidStateError('a thumbnail is made by the thumbnail job and takes no new versions');

    const { fileId, size } = await this.storeUpload({ content: params.content, contentType, filename: filename ?? current.filename ?? assetId, assetId });
    try {
      let expectedVersionNumber = current.versionNumber;
      for (let round = 0; round < MAX_VERSION_ROUNDS; round += 1) {
        const version = { versionNumber: expectedVersionNumber + 1, fileId, size, contentType, createdAt: this.now() };
        const updated = await this.store.appendVersion({ assetId, expectedVersionNumber, version, ...(filename !== undefined ? { filename } : {}) });
        if (updated) return receiptOf(updated);
        // Another upload became current first: build on top of it.
        const latest = await this.store.findAsset(assetId);
        if (!latest) throw assetNotFound(assetId);
        expectedVersionNumber = latest.versionNumber;
      }
      throw new ConflictError('too many concurrent uploads to this asset; retry');
    } catch (rawErr) {
      await this.discardFile(fileId);
      throw coerceError(rawErr);
    }
  }

  /**
   * The asset whoever asks, for the thumbnail handler: it runs in a worker process with the
   * database at hand, on the asset its job names. Callers on behalf of a principal use `getAsset`.
   */
  async findAsset(assetId: string): Promise<Asset | null> {
    return this.store.findAsset(assetId);
  }

  /** The asset's metadata, if the principal may read it; otherwise `asset_not_found`, as for an unknown id. */
  async getAsset(ref: AssetRef): Promise<Asset> {
    return this.authorized(ref, 'read');
  }

  /** A stream of the current version's bytes, with what a reader needs to label them (same access as getAsset). */
  async openContent(ref: AssetRef): Promise<AssetContent> {
    const asset = await this.authorized(ref, 'read');
    const version = currentVersionOf(asset);
    return { stream: await this.store.files.openDownload(version.fileId), contentType: version.contentType, size: version.size, versionNumber: version.versionNumber };
  }

  /** All bytes of one version; null when the asset or that version does not exist. */
  async readVersion(params: { assetId: string; versionNumber: number }): Promise<{ bytes: Buffer; contentType: ImageContentType } | null> {
    const asset = await this.store.findAsset(params.assetId);
    const version = asset?.versions.find((v) => v.versionNumber === params.versionNumber);
    if (!version) return null;
    return { bytes: await this.store.files.read(version.fileId), contentType: version.contentType };
  }

  async findThumbnail(key: ThumbnailKey): Promise<Asset | null> {
    return this.store.findDerivedAsset(key);
  }

  /**
   * Stores a thumbnail unless one already exists for its key, and returns the one that exists
   * afterwards. Safe to repeat and to race: the sparse unique derived key lets one insert win; the
   * loser deletes the GridFS file it uploaded and returns the winner.
   */
  async storeThumbnail(params: StoreThumbnailParams): Promise<Asset> {
    const key: ThumbnailKey = { assetId: params.assetId, versionNumber: params.versionNumber, width: params.width };
    const existing = await this.store.findDerivedAsset(key);
    if (existing) return existing;

    const assetId = this.newAssetId();
    const createdAt = this.now();
    const fileId = await this.store.files.upload({
      bytes: params.bytes,
      filename: params.filename,
      metadata: { assetId, contentType: params.contentType, derivedFrom: key },
    });
    const thumbnail: Asset = {
      assetId,
      filename: params.filename,
      contentType: params.contentType,
      size: params.bytes.length,
      versionNumber: 1,
      versions: [{ versionNumber: 1, fileId, size: params.bytes.length, contentType: params.contentType, createdAt }],
      processed: false,
      thumbnailAssetIds: [],
      derivedFrom: key,
      createdBy: params.owner.createdBy,
      createdByRole: params.owner.createdByRole,
      tenant: params.owner.tenant,
      createdAt,
      updatedAt: createdAt,
    };
    let inserted: boolean;
    try {
      inserted = await this.store.insertAsset(thumbnail);
    } catch (rawErr) {
      await this.discardFile(fileId);
      throw coerceError(rawErr);
    }
    if (inserted) return thumbnail;

    await this.discardFile(fileId);
    const winner = await this.store.findDerivedAsset(key);
    if (!winner) throw new Error(`thumbnail ${key.assetId} v${key.versionNumber} w${key.width} lost an insert race but cannot be found`);
    return winner;
  }

  /**
   * Marks the version processed with these thumbnails; false when it is no longer the current
   * version (a newer upload arrived meanwhile, and its thumbnails are another job's work).
   */
  async recordThumbnails(params: { assetId: string; versionNumber: number; thumbnailAssetIds: readonly string[] }): Promise<boolean> {
    return this.store.recordThumbnails({ ...params, now: this.now() });
  }

  /** The asset when the principal may take `action` on it (src/auth/access.ts decides); else `asset_not_found`. */
  private async authorized(ref: AssetRef, action: Action): Promise<Asset> {
    const assetId = parseAssetId(ref.assetId);
    return authorize({ principal: ref.principal, kind: 'asset', action, id: assetId, resource: await this.store.findAsset(assetId) });
  }

  /**
   * Streams an upload into GridFS after checking its first bytes against the declared type. An empty
   * body, a wrong signature or a body over the limit stores nothing: the check comes before the
   * first write, and a limit passed mid-stream deletes what was written (see AssetFileRepository.uploadChunks).
   */
  private async storeUpload(params: {
    content: UploadParams['content'];
    contentType: ImageContentType;
    filename: string;
    assetId: string;
  }): Promise<{ fileId: string; size: number }> {
    const body = new UploadBody(Buffer.isBuffer(params.content) ? chunksOf(params.content) : params.content, this.maxUploadBytes);
    try {
      checkSignature(await body.peek(IMAGE_SIGNATURE_BYTES), params.contentType);
      return await this.store.files.uploadChunks({ chunks: body.chunks(), filename: params.filename, metadata: { assetId: params.assetId, contentType: params.contentType } });
    } finally {
      await body.close().catch(() => undefined);
    }
  }

  // Best effort: an unreferenced GridFS file wastes space but never changes what readers see.
  private async discardFile(fileId: string): Promise<void> {
    await this.store.files.delete(fileId).catch(() => undefined);
  }
}

async function* chunksOf(bytes: Buffer): AsyncGenerator<Buffer> {
  yield bytes;
}

/** The service on a connection (the model and the GridFS bucket are bound to it, not to the global mongoose). */
export function createAssetService(connection: Connection, options: Omit<AssetServiceDeps, 'store'> = {}): AssetService {
  return new AssetService({ ...options, store: new AssetRepository(connection) });
}

function assetNotFound(assetId: string): NotFoundError {
  return new NotFoundError('asset_not_found', `asset ${assetId} does not exist`);
}

function currentVersionOf(asset: Asset): Asset['versions'][number] {
  const version = asset.versions.find((v) => v.versionNumber === asset.versionNumber);
  if (!version) throw new Error(`asset ${asset.assetId} has no entry for its current version ${asset.versionNumber}`);
  return version;
}

/** The declared type must be an accepted image type. */
function acceptedImageType(declared: string): ImageContentType {
  if (!isImageContentType(declared)) {
    throw new UnsupportedMediaTypeError(`Content-Type must be one of ${IMAGE_CONTENT_TYPES.join(', ')}`);
  }
  return declared;
}

/** The body's first bytes must carry the declared type's signature (magic bytes). */
function checkSignature(head: Buffer, declared: ImageContentType): void {
  if (head.length === 0) throw new ValidationError('the body must be the image bytes', [{ field: 'body', message: 'is empty' }]);
  const actual = sniffImageType(head);
  if (actual !== declared) {
    throw new UnsupportedMediaTypeError(`the body is not an image of type ${declared}${actual ? ` (its bytes are ${actual})` : ''}`);
  }
}
