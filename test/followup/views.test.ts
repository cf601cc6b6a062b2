import { spawnSync } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import type { Bundle, Parameters, Task } from '@medplum/fhirtypes';
import type { TestServer } from '../helpers/testServer';
import { fillResponse } from '../validation/responses';
import { STARTED } from '../consent/fixtures';
import { baselineQuestionnaire, call, ok, people, register, startFollowUpServer, tasksOf } from './fixtures';

/**
 * Who sees which Tasks (docs/followup.md): the portal its person's, a clinic its unit's, staff all; and the
 * response rates per unit, time point and month, for staff only, as a FHIR operation and a command.
 */
let server: TestServer;
let staff: string;
const [p, q] = people(4606, 2);
const baseline = baselineQuestionnaire();

beforeAll(async () => {
  ({ server, staff } = await startFollowUpServer());
});
afterAll(() => server.stop());

test('the portal reads its own open Tasks, a clinic its unit’s; another person’s or unit’s reads as missing', async () => {
  const clinicA = await server.token('clinic', { org: '999001' });
  const clinicB = await server.token('clinic', { org: '999002' });
  const P = await register(server, clinicA, p, { unit: '999001' });
  const Q = await register(server, clinicB, q, { unit: '999002' });
  const [taskP] = await tasksOf(server, staff, P.episodeId);
  const [taskQ] = await tasksOf(server, staff, Q.episodeId);

  const portal = await server.token('portal', { pid: p });
  const own = ok(await call<Bundle<Task>>(server, portal, 'GET', 'Task?status=requested'), 200);
  expect(own.entry?.map((e) => e.resource?.id)).toEqual([taskP.id]);
  const missing = await call(server, portal, 'GET', 'Task/1c7a4b52-0d1e-4f3a-9b8c-7d6e5f4a3b2c');
  const others = await call(server, portal, 'GET', `Task/${taskQ.id}`);
  expect(others.status).toBe(404);
  expect(others.text).toBe(missing.text);

  // Only this run's (on a shared HAPI server earlier runs left Tasks of unit B too).
  const unitB = ok(
    await call<Bundle<Task>>(server, clinicB, 'GET', `Task?_lastUpdated=ge${STARTED}&_count=100`),
    200,
  );
  expect(unitB.entry?.map((e) => e.resource?.id)).toEqual([taskQ.id]);
  expect((await call(server, clinicB, 'GET', `Task/${taskP.id}`)).status).toBe(404);

  const researcher = await server.token('researcher');
  expect((await call(server, researcher, 'GET', 'Task')).status).toBe(403);
});

test('staff read response rates per unit, time point and month; nobody else may', async () => {
  const clinicA = await server.token('clinic', { org: '999001' });
  // Only this run's (on a shared HAPI server earlier runs left Tasks of the same units and month).
  const tasks =
    ok(
      await call<Bundle<Task>>(
        server,
        staff,
        'GET',
        `Task?status=requested&_lastUpdated=ge${STARTED}&_count=100`,
      ),
      200,
    ).entry ?? [];
  expect(tasks).toHaveLength(2);
  const start = Math.max(...tasks.map((e) => Date.parse(e.resource?.executionPeriod?.start as string)));
  const month = new Date(start).toISOString().slice(0, 7);
  const rates = async (): Promise<Record<string, unknown>[]> => {
    const reply = ok(
      await call<Parameters>(server, staff, 'GET', `Task/$response-rates?from=${month}&to=${month}`),
      200,
    );
    return (reply.parameter ?? []).map((row) =>
      Object.fromEntries(
        (row.part ?? []).map((part) => [part.name, part.valueInteger ?? part.valueString ?? part.valueCode]),
      ),
    );
  };
  const before = await rates();

  await server.server.followUp.dispatcher.run(new Date(start + 1000));
  // P answers through the clinic: matched to P's Task.
  const P = tasks.find((e) => e.resource?.meta?.security?.some((s) => s.code === '999001'))?.resource as Task;
  ok(
    await call(server, clinicA, 'POST', 'QuestionnaireResponse', {
      ...fillResponse(baseline),
      subject: P.for,
      authored: new Date(start + 2000).toISOString(),
    }),
    201,
  );
  const after = await rates();
  const row = (rows: Record<string, unknown>[], unit: string) =>
    rows.find((r) => r.unit === unit && r.timePoint === 'baseline' && r.month === month) ?? {};
  const delta = (unit: string) =>
    Object.fromEntries(
      (['tasks', 'sent', 'reminded', 'answered'] as const).map((k) => [
        k,
        Number(row(after, unit)[k]) - Number(row(before, unit)[k]),
      ]),
    );
  expect(delta('999001')).toEqual({ tasks: 0, sent: 1, reminded: 0, answered: 1 });
  expect(delta('999002')).toEqual({ tasks: 0, sent: 1, reminded: 0, answered: 0 });

  expect((await call(server, staff, 'GET', 'Task/$response-rates?from=2025-13')).status).toBe(400);
  for (const role of ['clinic', 'portal'] as const) {
    const token = await server.token(role, role === 'portal' ? { pid: p } : {});
    expect((await call(server, token, 'GET', 'Task/$response-rates')).status).toBe(403);
  }
  const metadata = await fetch(`${server.baseUrl}/metadata`).then(
    (r) => r.json() as Promise<{ rest: { operation: { name: string }[] }[] }>,
  );
  expect(metadata.rest[0].operation.map((o) => o.name)).toContain('response-rates');

  // The same figures from the command, as CSV.
  const cli = spawnSync(
    process.execPath,
    [
      path.join(__dirname, '..', '..', 'bin', 'norpain.js'),
      'followup',
      'rates',
      '--from',
      month,
      '--to',
      month,
    ],
    {
      env: {
        PATH: process.env.PATH ?? '',
        HOME: os.tmpdir(),
        NODE_ENV: 'development',
        LOG_LEVEL: 'warn',
        DATA_DIR: server.dataDir,
        ...(server.config.store.kind === 'hapi' ? { STORE: 'hapi', HAPI_URL: server.config.store.url } : {}),
      },
      encoding: 'utf8',
      timeout: 120_000,
    },
  );
  const csv = [
    'unit,timePoint,month,tasks,sent,reminded,answered,expired',
    ...after.map((r) =>
      [r.unit, r.timePoint, r.month, r.tasks, r.sent, r.reminded, r.answered, r.expired].join(','),
    ),
  ];
  expect(cli.stdout.trim().split('\n')).toEqual(csv);
});
