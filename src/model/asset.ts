/**
 * Glossary
 * - asset: an uploaded image, named by an asset id (`asset_` + hex); its bytes live in GridFS.
 * - version: one upload of an asset's bytes; `versionNumber` names the current one (1, 2, ...).
 * - processed: the thumbnail job has run for the current version.
 * - thumbnail (derived asset): an asset made from one version of another at one width; there is
 *   at most one per (source asset id, version number, width).
 * - owner: the principal (sub, role, tenant) whose upload created the asset; thumbnails belong to
 *   their source's owner. Who may read or add versions is decided in src/auth/access.ts.
 */

import type { Ownership, Role } from './principal';

export const IMAGE_CONTENT_TYPES = ['image/png', 'image/jpeg', 'image/webp'] as const;
export type ImageContentType = (typeof IMAGE_CONTENT_TYPES)[number];

/** The largest image an upload may carry (the HTTP body limit uses the same number). */
export const MAX_ASSET_BYTES = 25 * 1024 * 1024;

/** How many leading bytes the signature check needs (WebP's is the longest: "RIFF", length, "WEBP"). */
export const IMAGE_SIGNATURE_BYTES = 12;

export function isImageContentType(value: string): value is ImageContentType {
  return (IMAGE_CONTENT_TYPES as readonly string[]).includes(value);
}

export interface AssetVersion {
  versionNumber: number;
  /** GridFS file id (hex). */
  fileId: string;
  size: number;
  contentType: ImageContentType;
  createdAt: Date;
}

/** Where a thumbnail came from. */
export interface DerivedFrom {
  assetId: string;
  versionNumber: number;
  width: number;
}

/** An asset as the domain sees it (a plain object; storage details stay in src/storage). */
export interface Asset extends Ownership {
  assetId: string;
  filename: string | null;
  /** Content type and size of the current version. */
  contentType: ImageContentType;
  size: number;
  versionNumber: number;
  versions: AssetVersion[];
  /** Whether thumbnails exist for the current version; a new version resets it. */
  processed: boolean;
  thumbnailAssetIds: string[];
  derivedFrom: DerivedFrom | null;
  createdBy: string;
  /** Null on assets stored before roles were recorded (they count as created by a service). */
  createdByRole: Role | null;
  tenant: string | null;
  createdAt: Date;
  updatedAt: Date;
}

/** What an upload answers. */
export interface UploadReceipt {
  assetId: string;
  versionNumber: number;
  contentType: ImageContentType;
  size: number;
}

export function receiptOf(asset: Asset): UploadReceipt {
  return { assetId: asset.assetId, versionNumber: asset.versionNumber, contentType: asset.contentType, size: asset.size };
}
