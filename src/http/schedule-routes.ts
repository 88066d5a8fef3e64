import { Router } from 'express';
import { z } from 'zod';

import { cronProblem, timeZoneProblem } from '../schedules/cron';
import { CATCH_UP_POLICIES } from '../model/schedule';
import { DEFAULT_CATCH_UP, DEFAULT_TIME_ZONE, SCHEDULE_NAME } from '../schedules/schedule';
import type { ScheduleService } from '../schedules/schedule-service';
import { requirePermission } from './auth';
import { readJsonBody } from './body';
import { principalOf } from './request-context';
import { parseRequest } from './validation';

const NAME_RULE = 'name must be 1-100 letters, digits, ".", "_" or "-", starting with a letter or digit';

const cron = z
  .string({ error: 'cron must be a string' })
  .max(200, 'cron must be at most 200 characters')
  .superRefine((value, ctx) => {
    const problem = cronProblem(value);
    if (problem) ctx.addIssue({ code: 'custom', message: problem });
  });

const timeZone = z
  .string({ error: 'timeZone must be a string' })
  .min(1)
  .max(64)
  .superRefine((value, ctx) => {
    const problem = timeZoneProblem(value);
    if (problem) ctx.addIssue({ code: 'custom', message: problem });
  });

const type = z.string({ error: 'type must be a string' }).min(1).max(128);
const catchUp = z.enum(CATCH_UP_POLICIES, { error: `catchUp must be one of ${CATCH_UP_POLICIES.join(', ')}` });
const priority = z.number().int().min(0).max(100).nullable();
const paused = z.boolean({ error: 'paused must be true or false' });

export const createScheduleBody = z.strictObject({
  name: z.string({ error: 'name must be a string' }).regex(SCHEDULE_NAME, NAME_RULE),
  type,
  payload: z.unknown().optional(),
  cron,
  timeZone: timeZone.default(DEFAULT_TIME_ZONE),
  paused: paused.default(false),
  catchUp: catchUp.default(DEFAULT_CATCH_UP),
  priority: priority.optional(),
});

export const updateScheduleBody = z
  .strictObject({
    type: type.optional(),
    payload: z.unknown().optional(),
    cron: cron.optional(),
    timeZone: timeZone.optional(),
    paused: paused.optional(),
    catchUp: catchUp.optional(),
    priority: priority.optional(),
  })
  .refine((body) => Object.values(body).some((v) => v !== undefined), {
    message: 'give at least one field to change',
    // Only for an otherwise valid body: an unknown field is reported alone.
    when: (payload) => payload.issues.length === 0,
  });

const nameParams = z.object({ name: z.string().regex(SCHEDULE_NAME, NAME_RULE) });

/** `/admin/schedules` (admin only; a tenant admin sees its tenant's): each route maps onto one ScheduleService call. */
export function scheduleRoutes(deps: { schedules: ScheduleService }): Router {
  const { schedules } = deps;
  const router = Router();
  router.use('/admin/schedules', requirePermission('admin'));

  router.post('/admin/schedules', readJsonBody, async (req, res) => {
    const body = parseRequest(createScheduleBody, req.body, 'body');
    const created = await schedules.create(principalOf(req), {
      name: body.name,
      type: body.type,
      payload: body.payload,
      cron: body.cron,
      timeZone: body.timeZone,
      paused: body.paused,
      catchUp: body.catchUp,
      priority: body.priority ?? null,
    });
    res.status(201).json(created);
  });

  router.get('/admin/schedules', async (req, res) => {
    res.json({ data: await schedules.list(principalOf(req)) });
  });

  router.get('/admin/schedules/:name', async (req, res) => {
    const { name } = parseRequest(nameParams, req.params, 'params');
    res.json(await schedules.get(principalOf(req), name));
  });

  router.patch('/admin/schedules/:name', readJsonBody, async (req, res) => {
    const { name } = parseRequest(nameParams, req.params, 'params');
    const body = parseRequest(updateScheduleBody, req.body, 'body');
    const updated = await schedules.update(principalOf(req), name, {
      ...(body.type === undefined ? {} : { type: body.type }),
      ...(body.payload === undefined ? {} : { payload: body.payload }),
      ...(body.cron === undefined ? {} : { cron: body.cron }),
      ...(body.timeZone === undefined ? {} : { timeZone: body.timeZone }),
      ...(body.paused === undefined ? {} : { paused: body.paused }),
      ...(body.catchUp === undefined ? {} : { catchUp: body.catchUp }),
      ...(body.priority === undefined ? {} : { priority: body.priority }),
    });
    res.json(updated);
  });

  router.delete('/admin/schedules/:name', async (req, res) => {
    const { name } = parseRequest(nameParams, req.params, 'params');
    await schedules.delete(principalOf(req), name);
    res.status(204).end();
  });

  return router;
}
