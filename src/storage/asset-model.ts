import { Schema, type Connection, type Model, type Types } from 'mongoose';

import { IMAGE_CONTENT_TYPES, type ImageContentType } from '../model/asset';
import { ROLES, type Role } from '../model/principal';
import { ASSET_BUCKET } from './asset-file-repository';

export interface AssetVersionDocument {
  versionNumber: number;
  fileId: Types.ObjectId;
  size: number;
  contentType: ImageContentType;
  createdAt: Date;
}

export interface DerivedFromDocument {
  assetId: string;
  versionNumber: number;
  width: number;
}

export interface AssetDocument {
  assetId: string;
  filename: string | null;
  contentType: ImageContentType;
  size: number;
  versionNumber: number;
  versions: AssetVersionDocument[];
  processed: boolean;
  thumbnailAssetIds: string[];
  derivedFrom: DerivedFromDocument | null;
  /**
   * `<source assetId>:<versionNumber>:<width>` on thumbnails only, absent (not null) on uploads: the sparse
   * unique index on it is what makes "one thumbnail per source version and width" hold under races.
   */
  derivedKey?: string;
  createdBy: string;
  /** Absent on assets stored before roles were recorded. */
  createdByRole?: Role | null;
  tenant?: string | null;
  createdAt: Date;
  updatedAt: Date;
}

const MODEL_NAME = 'Asset';
export const ASSET_COLLECTION = 'assets';

const versionSchema = new Schema<AssetVersionDocument>(
  {
    versionNumber: { type: Number, required: true },
    fileId: { type: Schema.Types.ObjectId, required: true },
    size: { type: Number, required: true },
    contentType: { type: String, enum: IMAGE_CONTENT_TYPES, required: true },
    createdAt: { type: Date, required: true },
  },
  { _id: false },
);

const derivedFromSchema = new Schema<DerivedFromDocument>(
  {
    assetId: { type: String, required: true },
    versionNumber: { type: Number, required: true },
    width: { type: Number, required: true },
  },
  { _id: false },
);

// Timestamps are written by the service from its injected clock, not by Mongoose.
const assetSchema = new Schema<AssetDocument>(
  {
    assetId: { type: String, required: true },
    filename: { type: String, default: null },
    contentType: { type: String, enum: IMAGE_CONTENT_TYPES, required: true },
    size: { type: Number, required: true },
    versionNumber: { type: Number, required: true },
    versions: { type: [versionSchema], default: [] },
    processed: { type: Boolean, default: false },
    thumbnailAssetIds: { type: [String], default: [] },
    derivedFrom: { type: derivedFromSchema, default: null },
    derivedKey: { type: String },
    createdBy: { type: String, required: true },
    createdByRole: { type: String, enum: [...ROLES], default: null },
    tenant: { type: String, default: null },
    createdAt: { type: Date, required: true },
    updatedAt: { type: Date, required: true },
  },
  { collection: ASSET_COLLECTION, versionKey: false, strict: 'throw' },
);
assetSchema.index({ assetId: 1 }, { unique: true });
// Sparse, not partial: the test server treats partial unique indexes as plain unique ones (TESTING.md).
assetSchema.index({ derivedKey: 1 }, { unique: true, sparse: true });

/** The Asset model on the given connection (created once per connection, never on the global one). */
export function assetModel(connection: Connection): Model<AssetDocument> {
  const existing = connection.models[MODEL_NAME] as Model<AssetDocument> | undefined;
  return existing ?? connection.model<AssetDocument>(MODEL_NAME, assetSchema);
}

/**
 * Creates the indexes the asset store relies on (autoIndex is off): the unique asset id, the sparse
 * unique derived key, and GridFS's own indexes (the driver would create those lazily on the first
 * upload; creating them here keeps that off the request path).
 */
export async function ensureAssetIndexes(connection: Connection): Promise<void> {
  await assetModel(connection).createIndexes();
  const db = connection.db;
  if (!db) throw new Error('ensureAssetIndexes needs an open connection');
  await db.collection(`${ASSET_BUCKET}.files`).createIndex({ filename: 1, uploadDate: 1 });
  await db.collection(`${ASSET_BUCKET}.chunks`).createIndex({ files_id: 1, n: 1 }, { unique: true });
}
