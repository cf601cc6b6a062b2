import { parseSearchRequest } from '@medplum/core';
import Database from 'better-sqlite3';
import { EmbeddedStore } from '../../src/store/embedded';
import { ProjectPseudonyms } from '../../src/research/pseudonyms';
import { openStudy } from '../../src/research/view';
import { searchFilters } from '../../src/research/scope';
import { loadFhirDefinitions } from '../../src/fhir/definitions';
async function main() {
  loadFhirDefinitions();
  const dir = process.argv[2];
  const store = EmbeddedStore.open(`${dir}/fhir-store.sqlite`);
  const db = (store as unknown as { db: Database.Database }).db;
  const logged: string[] = [];
  const prep = db.prepare.bind(db);
  (db as unknown as { prepare: unknown }).prepare = (sql: string) => { logged.push(sql); return prep(sql); };
  const pseudonyms = ProjectPseudonyms.open('/tmp/rb-p', { current: 1, keys: new Map([[1, Buffer.alloc(32, 1)]]) });
  const deps = { store, pseudonyms, withheld: () => new Set<string>() };
  const principal = { role: 'researcher' as const, clientId: 'x', study: 'bench-study', scopes: [] };
  const orgs = (await store.search(parseSearchRequest('Organization?_count=10'))).matches.map((o) => o.id);
  const qs = [
    'QuestionnaireResponse?questionnaire=https://norpain.no/fhir/Questionnaire/norpain-baseline&authored=ge2023-04&authored=lt2023-07&_count=50',
    `EpisodeOfCare?organization=Organization/${orgs[0]}&date=ge2023-01&date=le2023-12&_count=50`,
  ];
  for (const q of qs) {
    const cpu: number[] = [];
    for (let i = 0; i < 30; i++) {
      const study = await openStudy(principal, deps);
      logged.length = 0;
      const c = process.cpuUsage();
      await study.search(parseSearchRequest(q));
      const d = process.cpuUsage(c);
      cpu.push((d.user + d.system) / 1000);
    }
    cpu.sort((a, b) => a - b);
    console.log(q.slice(0, 60), 'cpu ms p50', cpu[15].toFixed(1), 'p95', cpu[28].toFixed(1));
    const study = await openStudy(principal, deps);
    const req = parseSearchRequest(q);
    const filters = searchFilters(study.study, req.resourceType as 'EpisodeOfCare', req.filters ?? []);
    const raw: number[] = [];
    for (let i = 0; i < 30; i++) {
      const c = process.cpuUsage();
      await store.search({ ...req, filters });
      const d = process.cpuUsage(c);
      raw.push((d.user + d.system) / 1000);
    }
    raw.sort((a, b) => a - b);
    console.log('   raw store cpu p50', raw[15].toFixed(1), 'p95', raw[28].toFixed(1));
  }
}
main();
