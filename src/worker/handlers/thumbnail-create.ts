import type { AssetService } from '../../assets/asset-service';
import { ImageDecodeError, inspectImage, renderThumbnail } from '../../assets/image-processing';
import type { ThumbnailPayload } from '../../jobs/job-types';
import { PermanentJobError, type JobHandler } from '../handler';

export const DEFAULT_THUMBNAIL_WIDTH = 320;

/** The job's result: one thumbnail asset id per width, in the same order. */
export interface ThumbnailResult {
  assetId: string;
  versionNumber: number;
  thumbnailAssetIds: string[];
  widths: number[];
}

export interface ThumbnailHandlerDeps {
  assets: Pick<AssetService, 'findAsset' | 'readVersion' | 'findThumbnail' | 'storeThumbnail' | 'recordThumbnails'>;
}

const EXTENSION = { 'image/png': 'png', 'image/jpeg': 'jpg', 'image/webp': 'webp' } as const;

/**
 * `thumbnail.create`: scales one version of an image to each requested width (default 320), keeping the
 * aspect ratio and the source's format, stores each as a thumbnail asset and marks the version processed.
 *
 * Idempotent: a thumbnail is keyed by (asset id, version number, width), so a retry after a crash, or a
 * second run racing the first, reuses what exists instead of storing another copy.
 */
export function createThumbnailHandler(deps: ThumbnailHandlerDeps): JobHandler<ThumbnailPayload, ThumbnailResult> {
  return async (context) => {
    const { payload, signal } = context;
    const { assetId, versionNumber } = payload;
    // Repeated widths would map to the same thumbnail; each is made once.
    const widths = [...new Set(payload.sizes ?? [DEFAULT_THUMBNAIL_WIDTH])];
    signal.throwIfAborted();

    const source = await deps.assets.findAsset(assetId);
    if (!source) throw new PermanentJobError(`asset ${assetId} does not exist`, 'asset_not_found');
    if (source.versionNumber !== versionNumber) {
      throw new PermanentJobError(`asset ${assetId} is at version ${source.versionNumber}, not ${versionNumber}`, 'asset_version_mismatch');
    }
    signal.throwIfAborted();

    const original = await deps.assets.readVersion({ assetId, versionNumber });
    if (!original) throw new PermanentJobError(`asset ${assetId} has no version ${versionNumber}`, 'asset_version_mismatch');
    const image = await decoded(() => inspectImage(original.bytes));
    context.reportProgress(10);

    const thumbnailAssetIds: string[] = [];
    for (const [index, width] of widths.entries()) {
      signal.throwIfAborted();
      const key = { assetId, versionNumber, width };
      // A retry finds what an earlier run already stored and skips the resize.
      let thumbnail = await deps.assets.findThumbnail(key);
      if (!thumbnail) {
        const rendered = await decoded(() => renderThumbnail({ bytes: original.bytes, width, contentType: image.contentType }));
        signal.throwIfAborted();
        thumbnail = await deps.assets.storeThumbnail({
          ...key,
          bytes: rendered.bytes,
          contentType: rendered.contentType,
          filename: `${assetId}-v${versionNumber}-w${width}.${EXTENSION[rendered.contentType]}`,
          createdBy: `job:${context.jobId}`,
        });
      }
      thumbnailAssetIds.push(thumbnail.assetId);
      context.reportProgress(10 + Math.floor((85 * (index + 1)) / widths.length));
    }

    signal.throwIfAborted();
    const recorded = await deps.assets.recordThumbnails({ assetId, versionNumber, thumbnailAssetIds });
    if (!recorded) {
      // The thumbnails stay (they are correct for this version); the newer version needs its own job.
      throw new PermanentJobError(`asset ${assetId} got a version newer than ${versionNumber} while its thumbnails were made`, 'asset_version_mismatch');
    }
    context.reportProgress(100);
    context.logger.info({ assetId, versionNumber, widths, thumbnailAssetIds }, 'thumbnails created');
    return { assetId, versionNumber, thumbnailAssetIds, widths };
  };
}

/** Runs an image operation; bytes that do not decode will not decode on a retry either. */
async function decoded<T>(operation: () => Promise<T>): Promise<T> {
  try {
    return await operation();
  } catch (rawErr) {
    if (rawErr instanceof ImageDecodeError) throw new PermanentJobError(rawErr.message, 'image_undecodable');
    throw rawErr;
  }
}
