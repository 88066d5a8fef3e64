import { Router } from 'express';

import { ROUTES } from '../contract/routes';
import type { ScheduleService } from '../schedules/schedule-service';
import { requirePermission } from './auth';
import { mountRoute } from './mount-route';
import { toScheduleWire } from './wire';

/** `/admin/schedules` (admin only; a tenant admin sees its tenant's): each route maps onto one ScheduleService call. */
export function scheduleRoutes(deps: { schedules: ScheduleService }): Router {
  const { schedules } = deps;
  const router = Router();
  router.use('/admin/schedules', requirePermission('admin'));

  // The contract's schemas check cron and timeZone with the schedules module's checks, as the service expects.
  mountRoute(router, ROUTES.createSchedule)(async ({ principal, body }) => {
    const created = await schedules.create(principal, {
      name: body.name,
      type: body.type,
      payload: body.payload,
      cron: body.cron,
      timeZone: body.timeZone,
      paused: body.paused,
      catchUp: body.catchUp,
      priority: body.priority ?? null,
    });
    return { status: 201, body: toScheduleWire(created) };
  });

  mountRoute(router, ROUTES.listSchedules)(async ({ principal }) => ({ status: 200, body: { data: (await schedules.list(principal)).map(toScheduleWire) } }));

  mountRoute(router, ROUTES.getSchedule)(async ({ principal, params }) => ({ status: 200, body: toScheduleWire(await schedules.get(principal, params.name)) }));

  mountRoute(router, ROUTES.updateSchedule)(async ({ principal, params, body }) => {
    const updated = await schedules.update(principal, params.name, {
      ...(body.type === undefined ? {} : { type: body.type }),
      ...(body.payload === undefined ? {} : { payload: body.payload }),
      ...(body.cron === undefined ? {} : { cron: body.cron }),
      ...(body.timeZone === undefined ? {} : { timeZone: body.timeZone }),
      ...(body.paused === undefined ? {} : { paused: body.paused }),
      ...(body.catchUp === undefined ? {} : { catchUp: body.catchUp }),
      ...(body.priority === undefined ? {} : { priority: body.priority }),
    });
    return { status: 200, body: toScheduleWire(updated) };
  });

  mountRoute(router, ROUTES.deleteSchedule)(async ({ principal, params }) => {
    await schedules.delete(principal, params.name);
    return { status: 204 };
  });

  return router;
}
