import type { AssetService } from '../../assets/asset-service';
import { mayAccess } from '../../auth/access';
import { ImageDecodeError, MAX_INPUT_PIXELS, inspectImage, renderThumbnail, thumbnailSizeOf } from '../../assets/image-processing';
import type { ThumbnailPayload } from '../../jobs/job-types';
import { PermanentJobError, type JobHandler } from '../handler';

export const DEFAULT_THUMBNAIL_WIDTH = 320;

/** Bounds on one job's work, so a tiny upload cannot make a worker decode or produce gigapixels. */
export interface ThumbnailLimits {
  /** A source with more pixels (width × height, read from its header) fails `image_too_large`. */
  maxInputPixels: number;
  /** A thumbnail that would have more pixels fails the job `thumbnail_too_large` (a very tall source). */
  maxThumbnailPixels: number;
  /** The thumbnails of one job together: more fails it `thumbnail_job_too_large`. */
  maxJobPixels: number;
}

export const DEFAULT_THUMBNAIL_LIMITS: Readonly<ThumbnailLimits> = {
  maxInputPixels: MAX_INPUT_PIXELS,
  maxThumbnailPixels: 4096 * 4096,
  maxJobPixels: 64_000_000,
};

/**
 * The job's result. `widths[i]` (as requested, repeats removed) is served by `thumbnailAssetIds[i]`,
 * which is `thumbnailWidths[i]` pixels wide: the requested width, or the source's own when that is
 * narrower (never enlarged), so requested widths at or above the source's share one thumbnail.
 */
export interface ThumbnailResult {
  assetId: string;
  versionNumber: number;
  thumbnailAssetIds: string[];
  widths: number[];
  thumbnailWidths: number[];
  /** Pixels (width × height) of the distinct thumbnails: the work the job stands for, at most maxJobPixels. */
  pixels: number;
}

export interface ThumbnailHandlerDeps {
  assets: Pick<AssetService, 'findAsset' | 'readVersion' | 'findThumbnail' | 'storeThumbnail' | 'recordThumbnails'>;
  limits?: Partial<ThumbnailLimits>;
}

const EXTENSION = { 'image/png': 'png', 'image/jpeg': 'jpg', 'image/webp': 'webp' } as const;

/**
 * `thumbnail.create`: scales one version of an image to each requested width (default 320), keeping the
 * aspect ratio and the source's format, stores each as a thumbnail asset and marks the version processed.
 * Thumbnails belong to the source's owner. The whole job's work is checked against the limits before
 * anything is decoded or stored; a job over them fails permanently (a retry would fail alike).
 *
 * Idempotent: a thumbnail is keyed by (asset id, version number, width it comes out at), so a retry
 * after a crash, a second run racing the first, or another job asking for a width the source does
 * not reach, reuses what exists instead of storing another copy.
 */
export function createThumbnailHandler(deps: ThumbnailHandlerDeps): JobHandler<ThumbnailPayload, ThumbnailResult> {
  const limits: ThumbnailLimits = { ...DEFAULT_THUMBNAIL_LIMITS, ...deps.limits };
  return async (context) => {
    const { payload, signal } = context;
    const { assetId, versionNumber } = payload;
    // Repeated widths would map to the same thumbnail; each is made once.
    const widths = [...new Set(payload.sizes ?? [DEFAULT_THUMBNAIL_WIDTH])];
    signal.throwIfAborted();

    const source = await deps.assets.findAsset(assetId);
    // The worker may read any asset, the job's owner only its own (or, as an admin, its tenant's):
    // another's fails exactly as a missing one, before a byte is read. No owner (an older API): as before.
    if (!source || (context.owner !== undefined && !mayAccess(context.owner, 'asset', 'read', source))) throw new PermanentJobError(`asset ${assetId} does not exist`, 'asset_not_found');
    if (source.versionNumber !== versionNumber) {
      throw new PermanentJobError(`asset ${assetId} is at version ${source.versionNumber}, not ${versionNumber}`, 'asset_version_mismatch');
    }
    signal.throwIfAborted();

    const original = await deps.assets.readVersion({ assetId, versionNumber });
    if (!original) throw new PermanentJobError(`asset ${assetId} has no version ${versionNumber}`, 'asset_version_mismatch');
    // The header alone: the size checks below come before any pixel is decoded.
    const image = await decoded(() => inspectImage(original.bytes));
    const plan = planThumbnails({ image, widths, limits });
    context.reportProgress(10);

    const owner = { createdBy: source.createdBy, createdByRole: source.createdByRole, tenant: source.tenant };
    const idByWidth = new Map<number, string>();
    for (const [index, width] of [...plan.outputWidths].entries()) {
      signal.throwIfAborted();
      const key = { assetId, versionNumber, width };
      // A retry finds what an earlier run already stored and skips the resize.
      let thumbnail = await deps.assets.findThumbnail(key);
      if (!thumbnail) {
        const rendered = await decoded(() => renderThumbnail({ bytes: original.bytes, width, contentType: image.contentType, maxInputPixels: limits.maxInputPixels }));
        signal.throwIfAborted();
        thumbnail = await deps.assets.storeThumbnail({
          ...key,
          bytes: rendered.bytes,
          contentType: rendered.contentType,
          filename: `${assetId}-v${versionNumber}-w${width}.${EXTENSION[rendered.contentType]}`,
          owner,
        });
      }
      idByWidth.set(width, thumbnail.assetId);
      context.reportProgress(10 + Math.floor((85 * (index + 1)) / plan.outputWidths.size));
    }
    const thumbnailWidths = widths.map((width) => thumbnailSizeOf(image, width).width);
    const thumbnailAssetIds = thumbnailWidths.map((width) => idByWidth.get(width)!);

    signal.throwIfAborted();
    const recorded = await deps.assets.recordThumbnails({ assetId, versionNumber, thumbnailAssetIds: [...idByWidth.values()] });
    if (!recorded) {
      // The thumbnails stay (they are correct for this version); the newer version needs its own job.
      throw new PermanentJobError(`asset ${assetId} got a version newer than ${versionNumber} while its thumbnails were made`, 'asset_version_mismatch');
    }
    context.reportProgress(100);
    context.logger.info({ assetId, versionNumber, widths, thumbnailWidths, thumbnailAssetIds, pixels: plan.pixels }, 'thumbnails created');
    return { assetId, versionNumber, thumbnailAssetIds, widths, thumbnailWidths, pixels: plan.pixels };
  };
}

/**
 * The distinct thumbnails the widths come out at (in the order first asked for) and their pixels,
 * refused permanently when the source or the work is over the limits.
 */
function planThumbnails(params: { image: { width: number; height: number }; widths: readonly number[]; limits: ThumbnailLimits }): {
  outputWidths: Set<number>;
  pixels: number;
} {
  const { image, limits } = params;
  const inputPixels = image.width * image.height;
  if (inputPixels > limits.maxInputPixels) {
    throw new PermanentJobError(`the image is ${image.width}x${image.height} (${inputPixels} pixels); at most ${limits.maxInputPixels} are decoded`, 'image_too_large');
  }
  const outputWidths = new Set<number>();
  let pixels = 0;
  for (const requested of params.widths) {
    const size = thumbnailSizeOf(image, requested);
    if (outputWidths.has(size.width)) continue;
    const thumbnailPixels = size.width * size.height;
    if (thumbnailPixels > limits.maxThumbnailPixels) {
      throw new PermanentJobError(`a ${size.width}x${size.height} thumbnail (${thumbnailPixels} pixels) is over the limit of ${limits.maxThumbnailPixels}`, 'thumbnail_too_large');
    }
    outputWidths.add(size.width);
    pixels += thumbnailPixels;
  }
  if (pixels > limits.maxJobPixels) {
    throw new PermanentJobError(`the thumbnails would have ${pixels} pixels in all; one job may produce at most ${limits.maxJobPixels}`, 'thumbnail_job_too_large');
  }
  return { outputWidths, pixels };
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
