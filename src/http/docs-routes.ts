import path from 'node:path';

import express, { Router, type RequestHandler } from 'express';

import { NotFoundError } from '../errors';
import { labelRoute } from './metrics-routes';
import { ANSWERED, mountRoute } from './mount-route';
import { buildOpenApiDocument } from '../contract/openapi';
import { ROUTES } from '../contract/routes';

/** The Swagger UI files the page loads; nothing else from the package is served. */
const SWAGGER_ASSETS = new Set(['swagger-ui.css', 'swagger-ui-bundle.js', 'favicon-16x16.png', 'favicon-32x32.png']);

// Swagger UI renders with inline style attributes; scripts only from this origin.
const DOCS_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "font-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

const DOCS_PAGE = `<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>jobs API</title>
  <link rel="icon" type="image/png" href="/docs/assets/favicon-32x32.png">
  <link rel="stylesheet" href="/docs/assets/swagger-ui.css">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="/docs/assets/swagger-ui-bundle.js"></script>
  <script src="/docs/assets/init.js"></script>
</body>
</html>
`;

// validatorUrl null: Swagger UI would otherwise send the document to an outside validator.
const DOCS_INIT = `window.ui = SwaggerUIBundle({
  url: '/openapi.json',
  dom_id: '#swagger-ui',
  validatorUrl: null,
  deepLinking: true,
  persistAuthorization: false,
  presets: [SwaggerUIBundle.presets.apis],
  layout: 'BaseLayout'
});
`;

const securityHeaders: RequestHandler = (_req, res, next) => {
  res.setHeader('Content-Security-Policy', DOCS_CSP);
  res.setHeader('X-Content-Type-Options', 'nosniff');
  res.setHeader('Referrer-Policy', 'no-referrer');
  next();
};

/** `GET /openapi.json` (generated from src/contract) and the interactive docs at `/docs` (Swagger UI from swagger-ui-dist, no CDN). Public. */
export function docsRoutes(): Router {
  const router = Router();
  const document = JSON.stringify(buildOpenApiDocument());
  const swaggerDir = path.dirname(require.resolve('swagger-ui-dist/package.json'));
  const serveSwagger = express.static(swaggerDir, { index: false, fallthrough: false, maxAge: '1h' });

  mountRoute(router, ROUTES.openapi)(async ({ res }) => {
    res.type('application/json').send(document);
    return ANSWERED;
  });

  mountRoute(router, ROUTES.docs, { before: [securityHeaders] })(async ({ res }) => {
    res.type('html').send(DOCS_PAGE);
    return ANSWERED;
  });

  // Assets are files, not API routes: served by middleware, so the OpenAPI document lists /docs only.
  router.use('/docs/assets', labelRoute('/docs/assets/*'), securityHeaders, (req, res, next) => {
    const file = req.path.replace(/^\//, '');
    if (req.method !== 'GET' && req.method !== 'HEAD') throw new NotFoundError('not_found', `no route for ${req.method} ${req.originalUrl}`);
    if (file === 'init.js') {
      res.type('application/javascript').send(DOCS_INIT);
      return;
    }
    if (!SWAGGER_ASSETS.has(file)) throw new NotFoundError('not_found', 'no such documentation asset');
    serveSwagger(req, res, next);
  });

  return router;
}
