import { z } from 'zod';

import { CANCELLABLE_STATUSES, JOB_STATUSES, REQUEUEABLE_STATUSES, type JobStatus } from '../model/job';
import { ROLES } from '../model/principal';
import { jobStatus } from './jobs';

/** Health, the caller's identity, and what the dashboard page needs to know of the contract. */

export const health = z.strictObject({ status: z.literal('ok') });
export const ready = z.strictObject({ status: z.literal('ready') });

export const principal = z.strictObject({
  sub: z.string(),
  role: z.enum(ROLES),
  tenant: z.string().optional().meta({ description: 'Present when the token has a tenant claim.' }),
});

const STATUS_LABELS: Record<JobStatus, string> = {
  waiting: 'Waiting',
  queued: 'Queued',
  leased: 'Leased',
  succeeded: 'Succeeded',
  failed: 'Failed',
  cancelled: 'Cancelled',
  dlq: 'Dead (dlq)',
};

export const dashboardContract = z.strictObject({
  statuses: z.array(jobStatus).meta({ description: 'Every job status, in lifecycle order.' }),
  statusLabels: z.strictObject(Object.fromEntries(JOB_STATUSES.map((s) => [s, z.string()])) as Record<JobStatus, z.ZodString>),
  requeueable: z.array(jobStatus).meta({ description: 'Statuses an admin requeue takes back to `queued`.' }),
  cancellable: z.array(jobStatus).meta({ description: 'Statuses a cancel applies to (a leased job is asked to stop).' }),
});

/** The dashboard's lists, from the model's constants (served as /dashboard/contract.json). */
export function dashboardContractValue(): z.input<typeof dashboardContract> {
  return { statuses: [...JOB_STATUSES], statusLabels: { ...STATUS_LABELS }, requeueable: [...REQUEUEABLE_STATUSES], cancellable: [...CANCELLABLE_STATUSES] };
}
