import type { Readable } from 'node:stream';

import type { Connection } from 'mongoose';

import { ConflictError, InvalidStateError, NotFoundError, PayloadTooLargeError, UnsupportedMediaTypeError, ValidationError, coerceError } from '../errors';
import { AssetStore } from '../storage/asset-store';
import { IMAGE_CONTENT_TYPES, MAX_ASSET_BYTES, isImageContentType, receiptOf, type Asset, type DerivedFrom, type ImageContentType, type UploadReceipt } from './asset';
import { newAssetId, parseAssetId } from './asset-id';
import { sniffImageType } from './image-format';

export interface AssetServiceDeps {
  store: AssetStore;
  now?: () => Date;
  newAssetId?: () => string;
}

export interface UploadParams {
  /** The image bytes exactly as received. */
  bytes: Buffer;
  /** The declared media type (parameters such as `; charset` already stripped). */
  contentType: string;
  filename?: string;
  createdBy: string;
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
  createdBy: string;
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
  private readonly store: AssetStore;
  private readonly now: () => Date;
  private readonly newAssetId: () => string;

  constructor(deps: AssetServiceDeps) {
    this.store = deps.store;
    this.now = deps.now ?? (() => new Date());
    this.newAssetId = deps.newAssetId ?? newAssetId;
  }

  /** Stores a new asset whose first version is the given image. */
  async createAsset(params: UploadParams): Promise<UploadReceipt> {
    const contentType = checkImage(params);
    const filename = parseFilename(params.filename);
    const assetId = this.newAssetId();
    const createdAt = this.now();
    const fileId = await this.store.files.upload({ bytes: params.bytes, filename: filename ?? assetId, metadata: { assetId, contentType } });
    const asset: Asset = {
      assetId,
      filename: filename ?? null,
      contentType,
      size: params.bytes.length,
      versionNumber: 1,
      versions: [{ versionNumber: 1, fileId, size: params.bytes.length, contentType, createdAt }],
      processed: false,
      thumbnailAssetIds: [],
      derivedFrom: null,
      createdBy: params.createdBy,
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

  /** Stores the image as the asset's next version, which becomes current and unprocessed. */
  async addVersion(params: UploadParams & { assetId: string }): Promise<UploadReceipt> {
    const assetId = parseAssetId(params.assetId);
    const contentType = checkImage(params);
    const filename = parseFilename(params.filename);
    // Checked before storing any bytes, so an unknown asset costs no upload.
    const current = await this.getAsset(assetId);
    if (current.derivedFrom) throw new InvalidStateError('a thumbnail is made by the thumbnail job and takes no new versions');

    const fileId = await this.store.files.upload({ bytes: params.bytes, filename: filename ?? current.filename ?? assetId, metadata: { assetId, contentType } });
    try {
      let expectedVersionNumber = current.versionNumber;
      for (let round = 0; round < MAX_VERSION_ROUNDS; round += 1) {
        const version = { versionNumber: expectedVersionNumber + 1, fileId, size: params.bytes.length, contentType, createdAt: this.now() };
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

  async findAsset(assetId: string): Promise<Asset | null> {
    return this.store.findAsset(assetId);
  }

  /** The asset's metadata; 404 `asset_not_found` when there is none. */
  async getAsset(assetId: string): Promise<Asset> {
    const asset = await this.store.findAsset(parseAssetId(assetId));
    if (!asset) throw assetNotFound(assetId);
    return asset;
  }

  /** A stream of the current version's bytes, with what a reader needs to label them. */
  async openContent(assetId: string): Promise<AssetContent> {
    const asset = await this.getAsset(assetId);
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
      createdBy: params.createdBy,
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

  // Best effort: an unreferenced GridFS file wastes space but never changes what readers see.
  private async discardFile(fileId: string): Promise<void> {
    await this.store.files.delete(fileId).catch(() => undefined);
  }
}

/** The service on a connection (the model and the GridFS bucket are bound to it, not to the global mongoose). */
export function createAssetService(connection: Connection, options: Omit<AssetServiceDeps, 'store'> = {}): AssetService {
  return new AssetService({ ...options, store: new AssetStore(connection) });
}

function assetNotFound(assetId: string): NotFoundError {
  return new NotFoundError('asset_not_found', `asset ${assetId} does not exist`);
}

function currentVersionOf(asset: Asset): Asset['versions'][number] {
  const version = asset.versions.find((v) => v.versionNumber === asset.versionNumber);
  if (!version) throw new Error(`asset ${asset.assetId} has no entry for its current version ${asset.versionNumber}`);
  return version;
}

/** The declared type must be an accepted image type, and the bytes must carry that type's signature. */
function checkImage(params: UploadParams): ImageContentType {
  const declared = params.contentType;
  if (!isImageContentType(declared)) {
    throw new UnsupportedMediaTypeError(`Content-Type must be one of ${IMAGE_CONTENT_TYPES.join(', ')}`);
  }
  if (params.bytes.length === 0) throw new ValidationError('the body must be the image bytes', [{ field: 'body', message: 'is empty' }]);
  if (params.bytes.length > MAX_ASSET_BYTES) throw new PayloadTooLargeError(`an image may be at most ${MAX_ASSET_BYTES} bytes`);
  const actual = sniffImageType(params.bytes);
  if (actual !== declared) {
    throw new UnsupportedMediaTypeError(`the body is not a ${declared} image${actual ? ` (its bytes are ${actual})` : ''}`);
  }
  return declared;
}
