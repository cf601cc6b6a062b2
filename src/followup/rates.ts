import type { Parameters } from '@medplum/fhirtypes';
import { unitsOf } from '../auth/unitLabel';
import type { OperationHandler } from '../fhir/classify';
import { errors } from '../fhir/outcomes';
import type { FhirStore } from '../store/FhirStore';
import type { DispatchLedger } from './ledger';
import { businessStatusOf, timePointOf, type TimePoint } from './task';
import { followUpTasks } from './taskStore';

/**
 * Response rates per unit, time point and month (the month the Task became due): how many Tasks there
 * were, how many invitations were sent, how many needed a reminder, were answered or expired. For registry
 * staff, as `GET Task/$response-rates` and `norpain followup rates`; counts only, no person.
 */
export interface RateRow {
  unit: string;
  timePoint: TimePoint;
  month: string;
  tasks: number;
  sent: number;
  reminded: number;
  answered: number;
  expired: number;
}

export interface MonthRange {
  /** YYYY-MM, inclusive. */
  from?: string;
  to?: string;
}

const MONTH = /^\d{4}-(0[1-9]|1[0-2])$/;

export function isMonth(value: string): boolean {
  return MONTH.test(value);
}

export async function responseRates(
  store: FhirStore,
  ledger: DispatchLedger,
  range: MonthRange = {},
): Promise<RateRow[]> {
  const sent = new Map<string, number>(); // task id → highest attempt confirmed sent
  for (const attempt of ledger.sentAttempts()) {
    sent.set(attempt.taskId, Math.max(sent.get(attempt.taskId) ?? 0, attempt.attempt));
  }
  const rows = new Map<string, RateRow>();
  for await (const task of followUpTasks(store, {})) {
    const timePoint = timePointOf(task);
    const month = task.executionPeriod?.start?.slice(0, 7);
    if (timePoint === undefined || month === undefined) continue;
    if ((range.from !== undefined && month < range.from) || (range.to !== undefined && month > range.to))
      continue;
    const unit = unitsOf(task)[0] ?? 'none';
    const key = `${unit}|${timePoint}|${month}`;
    const row = rows.get(key) ?? {
      unit,
      timePoint,
      month,
      tasks: 0,
      sent: 0,
      reminded: 0,
      answered: 0,
      expired: 0,
    };
    const attempts = sent.get(task.id ?? '') ?? 0;
    row.tasks++;
    if (attempts >= 1) row.sent++;
    if (attempts >= 2) row.reminded++;
    if (task.status === 'completed') row.answered++;
    if (businessStatusOf(task) === 'expired') row.expired++;
    rows.set(key, row);
  }
  return [...rows.values()].sort(
    (a, b) =>
      a.unit.localeCompare(b.unit) ||
      a.timePoint.localeCompare(b.timePoint) ||
      a.month.localeCompare(b.month),
  );
}

/** `GET Task/$response-rates[?from=YYYY-MM][&to=YYYY-MM]` → a Parameters with one `rate` per row. */
export function responseRatesOperation(ledger: DispatchLedger): OperationHandler {
  return async (ctx, request) => {
    const range: MonthRange = {};
    for (const name of ['from', 'to'] as const) {
      const value = request.params.get(name);
      if (value === null) continue;
      if (!isMonth(value)) {
        throw errors.badRequest(`${name} must be a month, YYYY-MM (e.g. 2025-01).`);
      }
      range[name] = value;
    }
    const rows = await responseRates(ctx.store, ledger, range);
    const body: Parameters = {
      resourceType: 'Parameters',
      parameter: rows.map((row) => ({
        name: 'rate',
        part: [
          { name: 'unit', valueString: row.unit },
          { name: 'timePoint', valueCode: row.timePoint },
          { name: 'month', valueString: row.month },
          ...(['tasks', 'sent', 'reminded', 'answered', 'expired'] as const).map((name) => ({
            name,
            valueInteger: row[name],
          })),
        ],
      })),
    };
    return { status: 200, body, headers: {} };
  };
}
