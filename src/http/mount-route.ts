import type { Request, RequestHandler, Response, Router } from 'express';
import type { z } from 'zod';

import type { RouteDef } from '../contract/route';
import type { Principal } from '../model/principal';
import { requirePermission } from './auth';
import { jsonBodyReader, refuseMalformedJsonBody } from './body';
import { principalOf } from './request-context';
import { parseRequest } from './validation';

/**
 * Registers a route of the contract's route table (src/contract/routes.ts) on a router, so a route
 * cannot exist in the app and not in the table. In order: the permission check, the route's own
 * guards (uploads: media type, size, slots), the JSON body (read only now: API.md wants 401 and
 * 403 before a body is read), then params, headers, query and body parsed with the contract's
 * schemas (422 `validation_error`), and the handler with the parsed values. A handler answers with
 * `{ status, body }` typed against the response schema for that status, or writes raw responses
 * (bytes, text) itself and returns ANSWERED.
 */

type Parsed<S> = S extends z.ZodType ? z.output<S> : undefined;

export type BodyOf<R extends RouteDef> = R['body'] extends { schema: infer S extends z.ZodType } ? z.output<S> : undefined;

export interface RouteInput<R extends RouteDef> {
  params: Parsed<R['params']>;
  headers: Parsed<R['headers']>;
  query: Parsed<R['query']>;
  body: BodyOf<R>;
  /** The caller; undefined on public routes. */
  principal: R['access'] extends 'public' ? undefined : Principal;
  req: Request;
  res: Response;
}

type ReplyFor<S, D> = D extends { json: infer J extends z.ZodType } ? { status: S; body: z.input<J> } : D extends { empty: true } ? { status: S } : never;

/** One of the route's JSON (or empty) responses: the status and a body of that status's schema. */
export type RouteReply<R extends RouteDef> = { [S in keyof R['responses']]: ReplyFor<S, R['responses'][S]> }[keyof R['responses']];

/** Returned by a handler that has written its (raw) response itself. */
export const ANSWERED: unique symbol = Symbol('answered');

export type RouteHandler<R extends RouteDef> = (input: RouteInput<R>) => Promise<RouteReply<R> | typeof ANSWERED>;

export interface MountOptions<R extends RouteDef> {
  /** Run after the permission check (and an upload's path parameters), before the body is read: uploads' guards, page headers. */
  before?: readonly RequestHandler[];
  /** The body's own parser, where the domain reports its fields in its own way (escrows). */
  parseBody?: (raw: unknown) => BodyOf<R>;
}

const requireAuthenticated: RequestHandler = (req, _res, next) => {
  principalOf(req);
  next();
};

/**
 * `mountRoute(router, ROUTES.getJob)(async ({ principal, params }) => ...)`: the route first, so its
 * types are fixed before the handler is checked against them (the reply's status stays a literal).
 */
export function mountRoute<R extends RouteDef>(router: Router, route: R, options: MountOptions<R> = {}): (handler: RouteHandler<R>) => void {
  return (handler) => register(router, route, handler, options);
}

function register<R extends RouteDef>(router: Router, route: R, handler: RouteHandler<R>, options: MountOptions<R>): void {
  const chain: RequestHandler[] = [];
  if (route.access === 'authenticated') chain.push(requireAuthenticated);
  else if (route.access !== 'public') chain.push(requirePermission(route.access));

  // Path parameters before any guard of the body: a junk id is refused without reading the body.
  if (route.rawBody && route.params) {
    const { params } = route;
    chain.push((req, res, next) => {
      res.locals.contractParams = parseRequest(params, req.params, 'params');
      next();
    });
  }
  chain.push(...(options.before ?? []));
  if (route.body) chain.push(jsonBodyReader(route.body));
  else if (!route.rawBody) chain.push(refuseMalformedJsonBody);

  // The first part that fails answers the 422, in this order. A JSON body has been read by now (as it
  // always was: a malformed body is a 400 whatever its path says).
  chain.push(async (req, res) => {
    const parsedEarly: unknown = res.locals.contractParams;
    const params = parsedEarly ?? (route.params ? parseRequest(route.params, req.params, 'params') : undefined);
    const headers = route.headers ? parseRequest(route.headers, req.headers, 'headers') : undefined;
    const query = route.query ? parseRequest(route.query, req.query, 'query') : undefined;
    let body: unknown;
    if (route.body) {
      // An optional body may be absent altogether (no Content-Type, no bytes): it counts as `{}`.
      const raw: unknown = route.body.required ? req.body : (req.body ?? {});
      body = options.parseBody ? options.parseBody(raw) : parseRequest(route.body.schema, raw, 'body');
    }
    const input = {
      params,
      headers,
      query,
      body,
      principal: route.access === 'public' ? undefined : principalOf(req),
      req,
      res,
    } as RouteInput<R>;
    const reply = await handler(input);
    if (reply === ANSWERED) return;
    const { status } = reply as { status: number };
    if ('body' in (reply as object)) res.status(status).json((reply as { body: unknown }).body);
    else res.status(status).end();
  });

  router[route.method](route.path, ...chain);
}
