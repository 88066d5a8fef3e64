import { pipeline } from 'node:stream/promises';

import { Router, type Request, type RequestHandler } from 'express';

import { ROUTES } from '../contract/routes';
import { coerceError, UnsupportedMediaTypeError } from '../errors';
import type { ResultFiles } from '../jobs/result-files';
import { ANSWERED, mountRoute } from './mount-route';
import { DEFAULT_UPLOAD_CONCURRENCY, closeConnectionOnUnreadBody, limitConcurrentUploads, refuseOversizedBody, requestBody } from './upload-limits';
import { toResultFileReceiptWire } from './wire';

export interface ResultFileRoutesDeps {
  files: ResultFiles;
  /** RESULT_FILE_MAX_BYTES: a declared Content-Length over it is refused before the body is read. */
  maxBytes: number;
  /** Uploads streamed at once by this process (RESULT_FILE_UPLOAD_CONCURRENCY); one more is a 429. */
  uploadConcurrency?: number;
}

const TOKEN = "[A-Za-z0-9!#$%&'*+.^_`|~-]+";
/** `type/subtype` with optional `; name=value` parameters (RFC 9110), at most 200 characters. */
const MEDIA_TYPE = new RegExp(`^${TOKEN}/${TOKEN}(\\s*;\\s*${TOKEN}=(${TOKEN}|"[^"\\\\\\r\\n]*"))*$`);

/** The upload's declared media type (application/octet-stream when none); 415 when it is not one. */
function uploadContentType(req: Request): string {
  const declared = (req.headers['content-type'] ?? '').trim();
  if (declared === '') return 'application/octet-stream';
  if (declared.length > 200 || !MEDIA_TYPE.test(declared)) throw new UnsupportedMediaTypeError('Content-Type must be a media type such as text/csv or application/octet-stream');
  return declared;
}

/** Before the body: a Content-Type that is no media type is refused without reading it. */
const requireMediaType: RequestHandler = (req, _res, next) => {
  uploadContentType(req);
  next();
};

/** `filename*` (RFC 6266/8187) for any name, and an ASCII `filename` for old clients. */
function contentDisposition(name: string): string {
  const ascii = name.replace(/[^\x20-\x7e]|["\\]/g, '_');
  return `attachment; filename="${ascii}"; filename*=UTF-8''${encodeURIComponent(name)}`;
}

/** Result files: the leaseholder uploads (streamed into GridFS), the job's owner downloads. */
export function resultFileRoutes(deps: ResultFileRoutesDeps): Router {
  const router = Router();
  const before = [requireMediaType, refuseOversizedBody(deps.maxBytes, 'a result file'), limitConcurrentUploads(deps.uploadConcurrency ?? DEFAULT_UPLOAD_CONCURRENCY)];

  mountRoute(router, ROUTES.uploadResultFile, { before })(async ({ principal, params, headers, query, req }) => {
    const file = await deps.files.upload({
      target: { jobId: params.jobId, workerId: headers['x-worker-id'], principal, ...(query.leaseId === undefined ? {} : { leaseId: query.leaseId }) },
      name: query.name,
      contentType: uploadContentType(req),
      content: requestBody(req),
    });
    return { status: 201, body: toResultFileReceiptWire(file) };
  });

  mountRoute(router, ROUTES.getResultFile)(async ({ principal, params, req, res }) => {
    const { file, stream } = await deps.files.open({ principal, jobId: params.jobId, fileId: params.fileId });
    res.status(200);
    res.setHeader('Content-Type', file.contentType);
    res.setHeader('Content-Length', String(file.size));
    // Whatever a run uploaded (HTML included) is a download, never a page of this origin.
    res.setHeader('Content-Disposition', contentDisposition(file.name));
    res.setHeader('X-Content-Type-Options', 'nosniff');
    res.setHeader('Content-Security-Policy', "default-src 'none'; sandbox");
    try {
      await pipeline(stream, res);
    } catch (rawErr) {
      // Mid-response (most often a client that hung up): no error answer can follow.
      req.log.warn({ err: coerceError(rawErr) }, 'result file stream ended early');
    }
    return ANSWERED;
  });

  router.use(closeConnectionOnUnreadBody);
  return router;
}
