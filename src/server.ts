import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import express, { type NextFunction, type Request, type Response } from 'express';
import { AuditLog, auditLogPath } from './audit/log';
import { vaultAuditSink } from './audit/vaultSink';
import { createAuthenticator, type Authenticate } from './auth/authenticator';
import { backendServices } from './auth/backendServices';
import { authFailureRateLimit, clientRateLimit, corsFor, securityHeaders } from './auth/hardening';
import { auditPseudonymResolver, personResolver } from './auth/person';
import { createView } from './auth/view';
import { openConsent, type ConsentServices } from './consent';
import { ConfigError, type Config } from './config';
import { loadFhirDefinitions } from './fhir/definitions';
import { auditEventOperation, createPendingAudit, createRequestAuditor } from './fhir/audit';
import { mergeOperation } from './identity/merge';
import { openExport, registrySource, studySource, type ExportServices } from './export';
import { createRequestMetrics } from './metrics';
import { createFhirRouter } from './fhir/router';
import { fhirJson } from './fhir/http';
import { errors, fhirErrorOf, issue, operationOutcome } from './fhir/outcomes';
import { SearchTranslator } from './identity/searchTranslation';
import { openIdentity, type IdentityServices } from './identity/service';
import { openFollowUp, startDispatchTimer, type FollowUpServices } from './followup';
import { responseRatesOperation } from './followup/rates';
import { createRespondentStage, createWriteOwnershipStage } from './ingest/authorise';
import { WriteJournal } from './ingest/journal';
import { createIngestPipeline } from './ingest/pipeline';
import { createReferenceResolution } from './ingest/references';
import { recoverWrites } from './ingest/recovery';
import { startMaintenance } from './maintenance';
import { createPseudonymiseStage } from './ingest/pseudonymise';
import { type FactfulStore, PatientFacts, withPatientFacts } from './store/patientFacts';
import { describeError, getLogger, type Logger } from './logging/logger';
import { requestIdOf, requestLogging } from './logging/requestLog';
import type { Principal } from './auth/principal';
import { makeDataDirPrivate } from './store/dataDir';
import { EmbeddedStore } from './store/embedded';
import { HapiStore, registryDefinitions } from './store/hapi';
import type { FhirStore } from './store/FhirStore';
import { loadUnits, readUnits } from './units/units';
import { loadNorPainQuestionnaires } from './validation/questionnaire';
import { statsOperation } from './statistics/operation';
import { operationDefinitions } from './statistics/operationDefinition';
import { populationOf } from './statistics/populations';
import { publicAnnualReport } from './reports/public';
import { loadResearchKey, ProjectPseudonyms, removeRetiredIdTable } from './research/pseudonyms';
import { studyStore } from './research/store';
import { openStudy, openStudyView, type StudyViewDeps } from './research/view';
import { openState } from './state';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const VERSION = (require('../package.json') as { version: string }).version;

export interface NorpainServer {
  app: express.Express;
  store: FhirStore;
  config: Config;
  authenticate: Authenticate;
  /** What a study view is opened with (src/research/view.ts, openStudyView): export and statistics. */
  studyViews: StudyViewDeps;
  /** The follow-up: its dispatcher runs with a given `now` (tests, `norpain dispatch`). */
  followUp: FollowUpServices;
  /** Starts listening (default: config.port on all interfaces); port 0 picks a free port. */
  listen(port?: number, host?: string): Promise<Listening>;
  /** Stops every listener, drops open connections and closes the store. */
  close(): Promise<void>;
}

export interface Listening {
  /** http://host:port, without a path. */
  url: string;
  port: number;
  close(): Promise<void>;
}

export interface ServerOptions {
  logger?: Logger;
  /** A store opened by the caller (e.g. the contract suite); by default the one config.store names. */
  store?: FhirStore;
  /** Identity keys are read from here (PSEUDONYM_KEYS, VAULT_KEY, *_FILE); default process.env. */
  identityEnv?: Record<string, string | undefined>;
}

/**
 * Assembles the server: FHIR definitions, the store, the participating units, token verification, and
 * the Express app (/healthz, /readyz, /fhir). Nothing listens until listen() is called, so tests and
 * the CLI decide where.
 */
export async function createServer(config: Config, options: ServerOptions = {}): Promise<NorpainServer> {
  const logger = options.logger ?? getLogger();
  const production = config.mode === 'production';
  loadFhirDefinitions();
  makeDataDirPrivate(config.dataDir);
  // Read before anything is opened: a missing key in production stops the start with nothing to close.
  const projectPseudonyms = new ProjectPseudonyms(
    loadResearchKey({
      env: options.identityEnv ?? process.env,
      production,
      dataDir: config.dataDir,
      onCreated: (message, file) => logger.warn(message, { component: 'research', file }),
    }),
  );
  // The state: SQLite files under DATA_DIR, or PostgreSQL shared by every replica (docs/replicas.md).
  const state = await openState(config.state);
  const authenticate = createAuthenticator(config, logger, { replayCache: state.replayCache });
  let store: FactfulStore;
  let auditLog: AuditLog;
  try {
    store = options.store
      ? withPatientFacts(options.store, PatientFacts.open(config.dataDir, config.state))
      : await openStore(config);
  } catch (err) {
    await state.close();
    throw err;
  }
  try {
    // The audit log (append-only, own database); every vault read is recorded in it too.
    auditLog = AuditLog.open(auditLogPath(config.dataDir), config.state);
  } catch (err) {
    await store.close();
    await state.close();
    throw err;
  }
  let identity: IdentityServices;
  let vaultForAudit: IdentityServices['vault'] | undefined;
  try {
    identity = openIdentity({
      env: options.identityEnv ?? process.env,
      production,
      dataDir: config.dataDir,
      state: config.state,
      logger,
      audit: vaultAuditSink(auditLog, (patientId) => vaultForAudit?.findByPatientId(patientId)?.pseudonym),
    });
    vaultForAudit = identity.vault;
  } catch (err) {
    auditLog.close();
    await store.close();
    await state.close();
    throw err;
  }
  const personOf = personResolver(identity.vault, production);
  const auditPseudonymOf = auditPseudonymResolver(personOf, identity.pseudonymiser, production);
  const viewDeps = { personOf: (principal: Principal) => personOf(principal)?.patientId };
  const pseudonymise = createPseudonymiseStage({
    ...identity,
    store,
    production,
    locks: state.personLocks('link'),
  });
  const searchTranslator = new SearchTranslator({ ...identity, production });
  let consent: ConsentServices;
  try {
    consent = openConsent({
      env: options.identityEnv ?? process.env,
      production,
      dataDir: config.dataDir,
      state: config.state,
      locks: state.personLocks('person'),
      store,
      vault: identity.vault,
      pseudonymiser: identity.pseudonymiser,
      unitsFile: config.unitsFile,
      logger,
    });
  } catch (err) {
    identity.close();
    auditLog.close();
    await store.close();
    await state.close();
    throw err;
  }
  const journal = WriteJournal.open(config.dataDir, state);
  consent.copies.addDatabase(journal);
  consent.copies.addDatabase(store.facts);
  if (removeRetiredIdTable(config.dataDir)) {
    logger.info(
      'Removed the retired table of project ids (research.sqlite): project ids are now reversible',
      {
        component: 'research',
      },
    );
  }
  const studyViews: StudyViewDeps = {
    store,
    pseudonyms: projectPseudonyms,
    withheld: () => new Set(consent.register.pendingErasures().map((pending) => pending.patientId)),
  };
  const opened: { exports?: ExportServices; followUp?: FollowUpServices } = {};
  const closeState = async (): Promise<void> => {
    await opened.exports?.close();
    await opened.followUp?.close();
    identity.close();
    consent.close();
    await journal.close();
    auditLog.close();
    await state.close();
  };
  const unitIds = readUnits(config.unitsFile).map((unit) => unit.resh);
  let exports: ExportServices;
  let followUp: FollowUpServices;
  try {
    exports = openExport({
      dataDir: config.dataDir,
      state,
      config: config.export,
      audit: auditLog,
      logger,
      // Staff export the pseudonymised store of every unit; a researcher exports their study view.
      sourceFor: async (ctx, transactionTime) => {
        return ctx.principal.role === 'researcher'
          ? studySource(await openStudyView(ctx.principal, studyViews), transactionTime)
          : registrySource(store, unitIds, transactionTime);
      },
      transactionTime: () => (store.now?.() ?? new Date()).toISOString(),
      projectPseudonyms,
    });
    opened.exports = exports;
    consent.copies.add((person) => exports.withdrawHolding(person));
    followUp = openFollowUp({
      env: options.identityEnv ?? process.env,
      dataDir: config.dataDir,
      production,
      store,
      vault: identity.vault,
      state,
      locks: consent.locks,
      cancellers: consent.followUps,
      actor: 'norpain-dispatch',
    });
    opened.followUp = followUp;
    consent.copies.addDatabase(followUp.ledger);
    // Again, now that the stores, logs and keys exist: what they created at the umask's modes becomes private.
    makeDataDirPrivate(config.dataDir);
  } catch (err) {
    await closeState();
    await store.close();
    throw err;
  }
  // What needs the clinical store before writes are taken: the units and questionnaires, and completing
  // what a crash left unfinished (docs/architecture.md, "One outcome per write"). While the store is
  // unreachable the server still starts; /readyz and writes answer 503 until this has run.
  const maintenance = startMaintenance({
    logger,
    startUp: async () => {
      const units = await loadUnits(store, readUnits(config.unitsFile));
      logger.info('participating units loaded', { ...units });
      const questionnaires = await loadNorPainQuestionnaires(store);
      logger.info('NorPain questionnaires loaded', { written: questionnaires });
    },
    recover: async () => {
      const writes = await recoverWrites({
        journal,
        store,
        vault: identity.vault,
        audit: auditLog,
        afterStored: followUp.recovered,
      });
      const erasures = await consent.reservations.completePendingErasures({ actor: 'norpain-recovery' });
      if (writes.completed + writes.undone + erasures > 0) {
        logger.info('unfinished work completed', { ...writes, erasures });
      }
    },
  });
  try {
    await maintenance.first;
  } catch (err) {
    await closeState();
    await store.close();
    throw err;
  }
  const stopDispatch = startDispatchTimer(followUp.dispatcher, followUp.settings.dispatchSeconds, logger);

  const app = express();
  app.disable('x-powered-by');
  // The FHIR router sets its own ETags (W/"versionId"); Express's body-hash ETags would answer
  // conditional requests with 304s the FHIR semantics do not intend.
  app.set('etag', false);
  app.use(requestLogging(logger));
  const metrics = createRequestMetrics();
  app.use(metrics.observe);
  app.use(securityHeaders());
  app.use(corsFor(config.http.corsOrigins));

  app.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });
  app.get('/metrics', metrics.serve);
  if (config.mode === 'development' && config.auth.useDevKey) {
    // Development's stand-in for HelseID's token endpoint (SMART Backend Services).
    app.use(backendServices(config, logger, { replayCache: state.replayCache }));
  }
  app.get('/readyz', async (_req, res) => {
    const kinds = { store: store.kind, state: config.state.kind };
    if (!maintenance.ready()) {
      res.status(503).json({ status: 'starting', ...kinds });
      return;
    }
    try {
      // A replica whose state database does not answer cannot take writes: the balancer should skip it.
      await Promise.all([store.ping(), state.ping()]);
      res.json({ status: 'ready', ...kinds });
    } catch (err) {
      logger.warn('readiness check failed', { ...kinds, ...describeError(err) });
      res.status(503).json({ status: 'unavailable', ...kinds });
    }
  });

  app.use('/fhir', (req, _res, next) => {
    if (maintenance.ready() || req.method === 'GET' || req.method === 'HEAD') {
      next();
      return;
    }
    next(
      errors.serviceUnavailable(
        'The server is starting and the FHIR store is not reachable yet; nothing was changed. Try again shortly.',
        5,
      ),
    );
  });
  app.use(
    '/fhir',
    createFhirRouter({
      store,
      authenticate,
      maxBodyBytes: config.maxBodyBytes,
      maxBundleEntries: config.http.maxBundleEntries,
      translateSearch: (type, params, principal) => searchTranslator.params(type, params, principal),
      ingest: createIngestPipeline({
        store,
        references: createReferenceResolution({
          store,
          patients: store,
          translator: searchTranslator,
          ...viewDeps,
        }),
        pseudonymise,
        exclude: consent.exclude,
        inclusion: consent.inclusion,
        respondent: createRespondentStage(viewDeps),
        ownership: createWriteOwnershipStage({ store, patients: store, ...viewDeps }),
        journal,
        pendingAudit: createPendingAudit({
          pseudonymOfPatient: (patientId) => identity.vault.findByPatientId(patientId)?.pseudonym,
          // As the request's own entry names the actor, so that recovery records the same entry in its place.
          pseudonymOfPrincipal: auditPseudonymOf,
          check: (event) => auditLog.check(event),
        }),
        answeredTasks: followUp.answeredTasks,
        followUp: followUp.step,
      }),
      view: (principal) => createView(principal, viewDeps),
      readerFor: async (principal) =>
        principal.role === 'researcher'
          ? studyStore(() => openStudy(principal, studyViews), store)
          : undefined,
      audit: createRequestAuditor({
        sink: auditLog,
        pseudonymOfPatient: (patientId) => identity.vault.findByPatientId(patientId)?.pseudonym,
        pseudonymOfPrincipal: auditPseudonymOf,
      }),
      rateLimit: clientRateLimit(config.http.rateLimitPerMinute),
      authFailureLimit: authFailureRateLimit(config.http.authFailuresPerMinute),
      operations: [
        {
          type: 'AuditEvent',
          handle: auditEventOperation({
            log: auditLog,
            pseudonymOfPrincipal: auditPseudonymOf,
          }),
        },
        ...consent.operations,
        ...exports.operations,
        {
          name: '$response-rates',
          levels: ['type'],
          types: ['Task'],
          methods: ['GET'],
          roles: ['registry-admin'],
          permission: 's',
          handle: responseRatesOperation(followUp.ledger),
        },
        {
          name: '$merge',
          levels: ['type'],
          types: ['Patient'],
          methods: ['POST'],
          roles: ['registry-admin'],
          permission: 'u',
          handle: mergeOperation({
            vault: identity.vault,
            store,
            register: consent.register,
            locks: consent.locks,
            audit: auditLog,
            production,
          }),
        },
        {
          name: '$stats',
          levels: ['system'],
          methods: ['GET', 'POST'],
          roles: ['registry-admin', 'researcher'],
          permission: 's',
          handle: statsOperation({
            population: (ctx) =>
              populationOf(ctx.principal, {
                store,
                units: () => readUnits(config.unitsFile).map((unit) => unit.resh),
                openView: (principal) => openStudy(principal, studyViews),
              }),
          }),
        },
        operationDefinitions,
      ],
      publicBaseUrl: config.publicBaseUrl,
      version: VERSION,
      logError: (event) =>
        logger.error('unhandled error', {
          requestId: event.requestId,
          method: event.method,
          route: event.route,
          ...event.error,
        }),
    }),
  );

  app.get('/public/annual/:year', publicAnnualReport(path.join(config.dataDir, 'reports')));

  app.use((_req, _res, next) => next(errors.notFound('No such endpoint; the FHIR API is under /fhir')));
  app.use(errorHandler(logger));

  const listeners = new Set<http.Server>();
  const closeListener = (server: http.Server): Promise<void> =>
    new Promise((resolve) => {
      listeners.delete(server);
      server.close(() => resolve());
      server.closeAllConnections();
    });

  return {
    app,
    store,
    config,
    authenticate,
    studyViews,
    followUp,
    listen: (port = config.port, host) =>
      new Promise<Listening>((resolve, reject) => {
        const server = http.createServer(app);
        server.once('error', (err: NodeJS.ErrnoException) => {
          reject(
            err.code === 'EADDRINUSE'
              ? new ConfigError(`PORT ${port} is already in use; set PORT to a free port`)
              : err,
          );
        });
        server.listen(port, host, () => {
          listeners.add(server);
          const actual = (server.address() as AddressInfo).port;
          const shownHost = host === undefined || host === '0.0.0.0' || host === '::' ? 'localhost' : host;
          resolve({ url: `http://${shownHost}:${actual}`, port: actual, close: () => closeListener(server) });
        });
      }),
    close: async () => {
      await maintenance.stop();
      await stopDispatch();
      await Promise.all([...listeners].map(closeListener));
      // Export jobs and the dispatcher stop (closeState) before the store they read from closes.
      await closeState();
      await store.close();
    },
  };
}

/** The store named by config.store, as every process reaches it: keeping its Patients' facts. */
export async function openStore(config: Config): Promise<FactfulStore> {
  const store = await openBareStore(config);
  try {
    return withPatientFacts(store, PatientFacts.open(config.dataDir, config.state));
  } catch (err) {
    await store.close();
    throw err;
  }
}

async function openBareStore(config: Config): Promise<FhirStore> {
  switch (config.store.kind) {
    case 'embedded': {
      return EmbeddedStore.open(EmbeddedStore.defaultFile(config.dataDir));
    }
    case 'hapi': {
      const definitions = registryDefinitions(readUnits(config.unitsFile).map((unit) => unit.resh));
      return HapiStore.connect(config.store.url, definitions, { databaseUrl: config.store.databaseUrl });
    }
  }
}

/** Last resort: FhirErrors, and client errors Express raised, become their OperationOutcome (fhirErrorOf);
 * anything else is a 500 without internals. */
function errorHandler(logger: Logger) {
  return (err: unknown, _req: Request, res: Response, _next: NextFunction): void => {
    const requestId = requestIdOf(res);
    let status: number;
    let body;
    // The audit of a failed request may fail for the same reason (the state database is gone): still 503.
    const fhirError = fhirErrorOf(err);
    if (fhirError) {
      status = fhirError.status;
      body = fhirError.outcome;
      res.set(fhirError.headers);
    } else {
      status = 500;
      logger.error('unhandled error', { requestId, ...describeError(err) });
      body = operationOutcome([
        issue('exception', `Internal server error; quote request id ${requestId} when reporting it`),
      ]);
    }
    if (res.headersSent) {
      res.destroy();
      return;
    }
    res.status(status).type('application/fhir+json').send(fhirJson(body));
  };
}
