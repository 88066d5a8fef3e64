import { z } from 'zod';

import { IMAGE_CONTENT_TYPES, MAX_ASSET_BYTES } from '../model/asset';
import { ROLES } from '../model/principal';
import { assetId, wireDate } from './schema';

/** Assets: images uploaded as raw bytes (the bodies are not JSON), their metadata and content. */

export { MAX_ASSET_BYTES };

export const imageContentType = z.enum(IMAGE_CONTENT_TYPES);

export const assetIdParams = z.object({ assetId });

/** `?filename=`: the service checks the name itself; a repeated parameter is refused. */
export const uploadQuery = z.object({
  filename: z
    .string({ error: 'filename must be given at most once' })
    .optional()
    .meta({ description: 'The original file name (optional; no path, no control characters, at most 255 characters).' }),
});

export const uploadReceipt = z.strictObject({
  assetId,
  versionNumber: z.number().int().min(1),
  contentType: imageContentType,
  size: z.number().int().min(1),
});

export const assetVersion = z.strictObject({
  versionNumber: z.number().int().min(1),
  contentType: imageContentType,
  size: z.number().int().min(1),
  createdAt: wireDate,
});

export const asset = z.strictObject({
  assetId,
  filename: z.string().nullable(),
  contentType: imageContentType.meta({ description: 'Of the current version.' }),
  size: z.number().int().min(1).meta({ description: 'Of the current version, in bytes.' }),
  versionNumber: z.number().int().min(1).meta({ description: 'The current version.' }),
  processed: z.boolean().meta({ description: 'Thumbnails exist for the current version; a new version resets it.' }),
  thumbnailAssetIds: z.array(assetId),
  derivedFrom: z
    .strictObject({ assetId, versionNumber: z.number().int().min(1), width: z.number().int().min(1) })
    .nullable()
    .meta({ description: 'For a thumbnail: the asset version and width it was made from.' }),
  versions: z.array(assetVersion),
  createdBy: z.string().meta({ description: 'The `sub` of the token that uploaded it (for a thumbnail: of its source).' }),
  createdByRole: z.enum(ROLES).nullable().meta({ description: 'The role of that token; null on assets stored before roles were recorded (they count as created by a service).' }),
  tenant: z.string().nullable().meta({ description: 'The tenant of that token; null when it had none.' }),
  createdAt: wireDate,
  updatedAt: wireDate,
});
