import type { Express } from 'express';

interface LayerLike {
  route?: { path: unknown; methods: Record<string, boolean | undefined> };
  handle?: { stack?: unknown };
  rawPath?: unknown;
}

/**
 * Every `METHOD /path` the app routes (Express 5 router stack, nested routers walked), each once;
 * `:param` stays as written. Routes with patterns (`*`, `?`, groups) are refused: tests that build
 * requests from this table could not fill them in.
 */
export function listAppRoutes(app: Express): string[] {
  const router = (app as unknown as { router: { stack: LayerLike[] } }).router;
  return [...new Set(walk(router.stack, ''))].sort();
}

function walk(stack: readonly LayerLike[], prefix: string): string[] {
  const routes: string[] = [];
  for (const layer of stack) {
    if (layer.route) {
      const { path } = layer.route;
      if (typeof path !== 'string') throw new Error(`route with a non-string path: ${String(path)}`);
      if (/[*?(){}]/.test(path)) throw new Error(`route ${path} uses a pattern the route table cannot fill in`);
      for (const [method, enabled] of Object.entries(layer.route.methods)) {
        if (enabled && method !== '_all') routes.push(`${method.toUpperCase()} ${prefix}${path}`);
      }
    } else if (Array.isArray(layer.handle?.stack)) {
      const mount = typeof layer.rawPath === 'string' && layer.rawPath !== '/' ? layer.rawPath : '';
      routes.push(...walk(layer.handle.stack as LayerLike[], `${prefix}${mount}`));
    }
  }
  return routes;
}
