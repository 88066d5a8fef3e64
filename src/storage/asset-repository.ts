import mongoose, { type Connection, type Model } from 'mongoose';

import type { Asset, AssetVersion, DerivedFrom } from '../model/asset';
import { AssetFileRepository } from './asset-file-repository';
import { assetModel, type AssetDocument } from './asset-model';
import { isDuplicateKeyError } from './errors';

function derivedKeyOf(derivedFrom: DerivedFrom): string {
  return `${derivedFrom.assetId}:${derivedFrom.versionNumber}:${derivedFrom.width}`;
}

function toAsset(doc: AssetDocument): Asset {
  return {
    assetId: doc.assetId,
    filename: doc.filename ?? null,
    contentType: doc.contentType,
    size: doc.size,
    versionNumber: doc.versionNumber,
    versions: (doc.versions ?? []).map((v) => ({
      versionNumber: v.versionNumber,
      fileId: v.fileId.toHexString(),
      size: v.size,
      contentType: v.contentType,
      createdAt: v.createdAt,
    })),
    processed: doc.processed,
    thumbnailAssetIds: [...(doc.thumbnailAssetIds ?? [])],
    derivedFrom: doc.derivedFrom
      ? { assetId: doc.derivedFrom.assetId, versionNumber: doc.derivedFrom.versionNumber, width: doc.derivedFrom.width }
      : null,
    createdBy: doc.createdBy,
    createdByRole: doc.createdByRole ?? null,
    tenant: doc.tenant ?? null,
    createdAt: doc.createdAt,
    updatedAt: doc.updatedAt,
  };
}

function toVersionDocument(version: AssetVersion): AssetDocument['versions'][number] {
  return { ...version, fileId: new mongoose.Types.ObjectId(version.fileId) };
}

/** Asset metadata in MongoDB and bytes in GridFS; every operation returns plain domain objects. */
export class AssetRepository {
  readonly files: AssetFileRepository;
  private readonly model: Model<AssetDocument>;

  constructor(connection: Connection) {
    this.model = assetModel(connection);
    this.files = new AssetFileRepository(connection);
  }

  /**
   * Inserts a new asset; false when one with the same asset id or, for a thumbnail, the same
   * (source, version, width) already exists.
   */
  async insertAsset(asset: Asset): Promise<boolean> {
    const doc: AssetDocument = {
      ...asset,
      versions: asset.versions.map(toVersionDocument),
      ...(asset.derivedFrom ? { derivedKey: derivedKeyOf(asset.derivedFrom) } : {}),
    };
    try {
      await this.model.create(doc);
      return true;
    } catch (rawErr) {
      if (isDuplicateKeyError(rawErr)) return false;
      throw rawErr;
    }
  }

  async findAsset(assetId: string): Promise<Asset | null> {
    const doc = await this.model.findOne({ assetId }).lean<AssetDocument>();
    return doc ? toAsset(doc) : null;
  }

  async findDerivedAsset(derivedFrom: DerivedFrom): Promise<Asset | null> {
    const doc = await this.model.findOne({ derivedKey: derivedKeyOf(derivedFrom) }).lean<AssetDocument>();
    return doc ? toAsset(doc) : null;
  }

  /**
   * Makes `version` current, only if the asset's current version is still `expectedVersionNumber`
   * (compare-and-set: of two concurrent uploads one wins, the other re-reads and tries again, so no
   * version is lost or numbered twice). Resets `processed` and the thumbnails. Null when it lost.
   */
  async appendVersion(params: { assetId: string; expectedVersionNumber: number; version: AssetVersion; filename?: string }): Promise<Asset | null> {
    const { version } = params;
    const doc = await this.model
      .findOneAndUpdate(
        { assetId: params.assetId, versionNumber: params.expectedVersionNumber },
        {
          $set: {
            versionNumber: version.versionNumber,
            contentType: version.contentType,
            size: version.size,
            processed: false,
            thumbnailAssetIds: [],
            updatedAt: version.createdAt,
            ...(params.filename !== undefined ? { filename: params.filename } : {}),
          },
          $push: { versions: toVersionDocument(version) },
        },
        { new: true },
      )
      .lean<AssetDocument>();
    return doc ? toAsset(doc) : null;
  }

  /**
   * Marks the version processed and adds the thumbnails, only while it is still the current version.
   * `$addToSet` keeps a re-run (or a second job for other widths) from listing an id twice.
   */
  async recordThumbnails(params: { assetId: string; versionNumber: number; thumbnailAssetIds: readonly string[]; now: Date }): Promise<boolean> {
    const result = await this.model.updateOne(
      { assetId: params.assetId, versionNumber: params.versionNumber },
      { $set: { processed: true, updatedAt: params.now }, $addToSet: { thumbnailAssetIds: { $each: [...params.thumbnailAssetIds] } } },
    );
    return result.matchedCount === 1;
  }
}
