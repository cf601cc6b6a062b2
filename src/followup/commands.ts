import { SingleBar, Presets } from 'cli-progress';
import { stringify } from 'csv-stringify/sync';
import { AuditLog, auditLogPath } from '../audit/log';
import { vaultAuditSink } from '../audit/vaultSink';
import { parseOptions, UsageError, type CliCommand } from '../cli/command';
import { loadConfig } from '../config';
import type { IdentityVault } from '../identity/vault/IdentityVault';
import { openIdentity } from '../identity/service';
import { createLogger } from '../logging/logger';
import { openStore } from '../server';
import { openState } from '../state';
import { openFollowUp, type FollowUpServices } from '.';
import { isMonth, responseRates } from './rates';

/** Opens what a follow-up command needs (store, vault with its reads audited, the follow-up), runs, closes. */
async function withFollowUp<T>(
  env: NodeJS.ProcessEnv,
  run: (
    followUp: FollowUpServices,
    production: boolean,
    store: Awaited<ReturnType<typeof openStore>>,
  ) => Promise<T>,
): Promise<T> {
  const config = loadConfig(env);
  const production = config.mode === 'production';
  const logger = createLogger({ level: config.logLevel, sink: (line) => process.stderr.write(line + '\n') });
  // The server's state (shared with the replicas on PostgreSQL): its vault, audit log, ledger and locks.
  const state = await openState(config.state);
  const audit = AuditLog.open(auditLogPath(config.dataDir), config.state);
  // The sink names persons by pseudonym, which the vault it audits knows once it is open.
  const opened: { vault?: IdentityVault } = {};
  const identity = openIdentity({
    env,
    production,
    dataDir: config.dataDir,
    state: config.state,
    logger,
    audit: vaultAuditSink(audit, (patientId) => opened.vault?.findByPatientId(patientId)?.pseudonym),
  });
  opened.vault = identity.vault;
  const store = await openStore(config);
  // Each message is sent under the person's lock a reservation takes (shared with the replicas on
  // PostgreSQL), after checking Task and vault (docs/followup.md).
  const followUp = openFollowUp({
    env,
    dataDir: config.dataDir,
    production,
    store,
    vault: identity.vault,
    state,
    locks: state.personLocks('person'),
    actor: 'norpain-cli',
  });
  try {
    return await run(followUp, production, store);
  } finally {
    await followUp.close();
    await store.close();
    identity.close();
    audit.close();
    await state.close();
  }
}

const DISPATCH_USAGE = `norpain dispatch [--now ISO-DATE-TIME]

Sends what is due of the follow-up (docs/followup.md): first every invitation a crash left recorded but
unconfirmed (again, with the same idempotency key), then invitations of Tasks whose period has begun,
reminders every FOLLOWUP_REMINDER_DAYS (at most FOLLOWUP_MAX_REMINDERS), and expiry of Tasks whose
period has ended. Through the channel FOLLOWUP_CHANNEL names. For cron; safe to run again at any time.
  --now  development only: dispatch as at this time (e.g. 2026-01-31T08:00:00Z)`;

export const dispatchCommand: CliCommand = {
  name: 'dispatch',
  summary: 'send due follow-up invitations, reminders and expiries (for cron)',
  usage: DISPATCH_USAGE,
  run: async (args, env) => {
    const values = parseOptions(args, { now: { type: 'string' } });
    const now = values.now === undefined ? new Date() : new Date(values.now);
    if (Number.isNaN(now.getTime())) throw new UsageError('--now must be an ISO 8601 date-time');
    return withFollowUp(env, async (followUp, production) => {
      if (production && values.now !== undefined) {
        throw new UsageError('--now is for development; in production dispatch runs at the real time');
      }
      const bar = new SingleBar(
        { format: 'dispatch [{bar}] {value}/{total} Tasks', stream: process.stderr },
        Presets.shades_classic,
      );
      let started = false;
      const report = await followUp.dispatcher.run(now, (done, total) => {
        if (!started) {
          bar.start(total, 0);
          started = true;
        }
        bar.update(done);
      });
      if (started) bar.stop();
      process.stdout.write(
        `invited ${report.invited}, reminded ${report.reminded}, expired ${report.expired}, delivered again ${report.redelivered}, dropped ${report.dropped}, failed ${report.failed}\n`,
      );
      return report.failed > 0 ? 1 : 0;
    });
  },
};

const RATES_USAGE = `norpain followup rates [--from YYYY-MM] [--to YYYY-MM]

Prints the follow-up's response rates as CSV: per unit (RESH), time point and month the Task became due,
the number of Tasks, invitations sent, reminded, answered and expired. The same figures as
GET /fhir/Task/$response-rates.`;

export const ratesCommand: CliCommand = {
  name: 'followup rates',
  summary: 'response rates of the follow-up per unit, time point and month (CSV)',
  usage: RATES_USAGE,
  run: async (args, env) => {
    const values = parseOptions(args, { from: { type: 'string' }, to: { type: 'string' } });
    for (const name of ['from', 'to'] as const) {
      const value = values[name];
      if (value !== undefined && !isMonth(value)) throw new UsageError(`--${name} must be a month, YYYY-MM`);
    }
    return withFollowUp(env, async (followUp, _production, store) => {
      const rows = await responseRates(store, followUp.ledger, { from: values.from, to: values.to });
      process.stdout.write(
        stringify(rows, {
          header: true,
          columns: ['unit', 'timePoint', 'month', 'tasks', 'sent', 'reminded', 'answered', 'expired'],
        }),
      );
      return 0;
    });
  },
};
