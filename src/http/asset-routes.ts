import { pipeline } from 'node:stream/promises';

import { Router, type Request, type RequestHandler } from 'express';

import { ROUTES } from '../contract/routes';
import { IMAGE_CONTENT_TYPES, MAX_ASSET_BYTES, isImageContentType, type ImageContentType } from '../model/asset';
import type { AssetService } from '../assets/asset-service';
import { UnsupportedMediaTypeError, coerceError } from '../errors';
import { ANSWERED, mountRoute } from './mount-route';
import { DEFAULT_UPLOAD_CONCURRENCY, closeConnectionOnUnreadBody, limitConcurrentUploads, refuseOversizedBody, requestBody } from './upload-limits';
import { toAssetWire, toUploadReceiptWire } from './wire';

export interface AssetRoutesDeps {
  assets: AssetService;
  /** Uploads streamed at once by this process (ASSET_UPLOAD_CONCURRENCY); one more is a 429. */
  uploadConcurrency?: number;
}

/** The declared media type without parameters (`image/PNG; x=y` → `image/png`); 415 unless it is an accepted image type. */
function imageContentTypeOf(req: Request): ImageContentType {
  const mediaType = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
  if (!isImageContentType(mediaType)) {
    throw new UnsupportedMediaTypeError(`Content-Type must be one of ${IMAGE_CONTENT_TYPES.join(', ')}`);
  }
  return mediaType;
}

/** Runs before the body is read, so a wrong type is refused without reading it. */
const requireImageContentType: RequestHandler = (req, _res, next) => {
  imageContentTypeOf(req);
  next();
};

/**
 * Assets: image uploads (each upload to an existing asset is a new version), metadata and content.
 * Bodies are streamed into storage by the asset service, never buffered here; who may read or
 * upload over an asset is the service's (and src/auth/access.ts's) decision.
 */
export function assetRoutes(deps: AssetRoutesDeps): Router {
  const router = Router();
  // Cheap refusals first, so they never take an upload slot; all before the body is read.
  const before = [requireImageContentType, refuseOversizedBody(MAX_ASSET_BYTES, 'an image'), limitConcurrentUploads(deps.uploadConcurrency ?? DEFAULT_UPLOAD_CONCURRENCY)];

  mountRoute(router, ROUTES.createAsset, { before })(async ({ principal, query, req }) => {
    const receipt = await deps.assets.createAsset({ principal, content: requestBody(req), contentType: imageContentTypeOf(req), filename: query.filename });
    return { status: 201, body: toUploadReceiptWire(receipt) };
  });

  // The asset id is checked before the guards: junk ids are refused before the body is read.
  mountRoute(router, ROUTES.addAssetVersion, { before })(async ({ principal, params, query, req }) => {
    const receipt = await deps.assets.addVersion({
      principal,
      assetId: params.assetId,
      content: requestBody(req),
      contentType: imageContentTypeOf(req),
      filename: query.filename,
    });
    return { status: 201, body: toUploadReceiptWire(receipt) };
  });

  mountRoute(router, ROUTES.getAsset)(async ({ principal, params }) => ({ status: 200, body: toAssetWire(await deps.assets.getAsset({ principal, assetId: params.assetId })) }));

  mountRoute(router, ROUTES.getAssetContent)(async ({ principal, params, req, res }) => {
    const content = await deps.assets.openContent({ principal, assetId: params.assetId });
    res.status(200);
    res.setHeader('Content-Type', content.contentType);
    res.setHeader('Content-Length', String(content.size));
    res.setHeader('X-Asset-Version', String(content.versionNumber));
    // Served bytes are always labelled with their checked type; browsers must not guess another.
    res.setHeader('X-Content-Type-Options', 'nosniff');
    try {
      await pipeline(content.stream, res);
    } catch (rawErr) {
      // openContent has already read the first chunk, so this is mid-response (most often a client that
      // hung up): pipeline has destroyed the response, and no error answer can follow.
      req.log.warn({ err: coerceError(rawErr) }, 'asset content stream ended early');
    }
    return ANSWERED;
  });

  router.use(closeConnectionOnUnreadBody);
  return router;
}
