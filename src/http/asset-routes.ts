import { pipeline } from 'node:stream/promises';

import express, { Router, type Request, type RequestHandler } from 'express';

import { IMAGE_CONTENT_TYPES, MAX_ASSET_BYTES, isImageContentType, toAssetView, type ImageContentType } from '../assets/asset';
import { parseAssetId } from '../assets/asset-id';
import type { AssetService } from '../assets/asset-service';
import { UnsupportedMediaTypeError, ValidationError, coerceError } from '../errors';
import { requirePermission } from './auth';
import { principalOf } from './request-context';

export interface AssetRoutesDeps {
  assets: AssetService;
}

/** The declared media type without parameters (`image/PNG; x=y` → `image/png`); 415 unless it is an accepted image type. */
function imageContentTypeOf(req: Request): ImageContentType {
  const mediaType = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
  if (!isImageContentType(mediaType)) {
    throw new UnsupportedMediaTypeError(`Content-Type must be one of ${IMAGE_CONTENT_TYPES.join(', ')}`);
  }
  return mediaType;
}

/** Runs before the body is read, so a wrong type is refused without buffering up to 25 MB. */
const requireImageContentType: RequestHandler = (req, _res, next) => {
  imageContentTypeOf(req);
  next();
};

// Raw bytes on these routes only; the app's JSON parser ignores image types. Over the limit: 413.
const readImageBody = express.raw({ type: () => true, limit: MAX_ASSET_BYTES });

function imageBytesOf(req: Request): Buffer {
  const body: unknown = req.body;
  if (!Buffer.isBuffer(body) || body.length === 0) {
    throw new ValidationError('the body must be the image bytes', [{ field: 'body', message: 'is empty' }]);
  }
  return body;
}

/** Assets: image uploads (each upload to an existing asset is a new version), metadata and content. */
export function assetRoutes(deps: AssetRoutesDeps): Router {
  const router = Router();

  router.post('/assets', requirePermission('assets:write'), requireImageContentType, readImageBody, async (req, res) => {
    const receipt = await deps.assets.createAsset({
      bytes: imageBytesOf(req),
      contentType: imageContentTypeOf(req),
      filename: filenameOf(req),
      createdBy: principalOf(req).sub,
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
    requireImageContentType,
    readImageBody,
    async (req, res) => {
      const receipt = await deps.assets.addVersion({
        assetId: parseAssetId(req.params.assetId),
        bytes: imageBytesOf(req),
        contentType: imageContentTypeOf(req),
        filename: filenameOf(req),
        createdBy: principalOf(req).sub,
      });
      res.status(201).json(receipt);
    },
  );

  router.get('/assets/:assetId', requirePermission('assets:read'), async (req, res) => {
    const asset = await deps.assets.getAsset(parseAssetId(req.params.assetId));
    res.json(toAssetView(asset));
  });

  router.get('/assets/:assetId/content', requirePermission('assets:read'), async (req, res) => {
    const content = await deps.assets.openContent(parseAssetId(req.params.assetId));
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

  return router;
}

/** `?filename=` as given (the service validates it); a repeated parameter is refused here. */
function filenameOf(req: Request): string | undefined {
  const value: unknown = req.query.filename;
  if (value === undefined || typeof value === 'string') return value;
  throw new ValidationError('invalid filename', [{ field: 'filename', message: 'must be given at most once' }]);
}
