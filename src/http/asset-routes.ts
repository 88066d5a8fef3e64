import { pipeline } from 'node:stream/promises';

import { Router, type Request, type RequestHandler } from 'express';

import { IMAGE_CONTENT_TYPES, MAX_ASSET_BYTES, isImageContentType, toAssetView, type ImageContentType } from '../model/asset';
import { parseAssetId } from '../assets/asset-id';
import type { AssetService } from '../assets/asset-service';
import { UnsupportedMediaTypeError, ValidationError, coerceError } from '../errors';
import { requirePermission } from './auth';
import { principalOf } from './request-context';
import { DEFAULT_UPLOAD_CONCURRENCY, closeConnectionOnUnreadBody, limitConcurrentUploads, refuseOversizedBody, requestBody } from './upload-limits';

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
  // Cheap refusals first, so they never take an upload slot.
  const beforeBody = [requireImageContentType, refuseOversizedBody(MAX_ASSET_BYTES), limitConcurrentUploads(deps.uploadConcurrency ?? DEFAULT_UPLOAD_CONCURRENCY)];

  router.post('/assets', requirePermission('assets:write'), ...beforeBody, async (req, res) => {
    const receipt = await deps.assets.createAsset({
      principal: principalOf(req),
      content: requestBody(req),
      contentType: imageContentTypeOf(req),
      filename: filenameOf(req),
    });
    res.status(201).json(receipt);
  });

  router.post(
    '/assets/:assetId',
    requirePermission('assets:write'),
    (req, _res, next) => {
      // Junk ids are refused before the body is read.
      parseAssetId(req.params.assetId);
      next();
    },
    ...beforeBody,
    async (req, res) => {
      const receipt = await deps.assets.addVersion({
        principal: principalOf(req),
        assetId: parseAssetId(req.params.assetId),
        content: requestBody(req),
        contentType: imageContentTypeOf(req),
        filename: filenameOf(req),
      });
      res.status(201).json(receipt);
    },
  );

  router.get('/assets/:assetId', requirePermission('assets:read'), async (req, res) => {
    const asset = await deps.assets.getAsset({ principal: principalOf(req), assetId: parseAssetId(req.params.assetId) });
    res.json(toAssetView(asset));
  });

  router.get('/assets/:assetId/content', requirePermission('assets:read'), async (req, res) => {
    const content = await deps.assets.openContent({ principal: principalOf(req), assetId: parseAssetId(req.params.assetId) });
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
  });

  router.use(closeConnectionOnUnreadBody);
  return router;
}

/** `?filename=` as given (the service validates it); a repeated parameter is refused here. */
function filenameOf(req: Request): string | undefined {
  const value: unknown = req.query.filename;
  if (value === undefined || typeof value === 'string') return value;
  throw new ValidationError('invalid filename', [{ field: 'filename', message: 'must be given at most once' }]);
}
