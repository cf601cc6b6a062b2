import Database from 'better-sqlite3';
import { parseSearchRequest } from '@medplum/core';
import { loadFhirDefinitions } from './src/fhir/definitions';
import { compileFilters } from './src/store/embedded/search';
loadFhirDefinitions();
const db = new Database('/tmp/benchdb/fhir.db');
const pid = (db.prepare(`SELECT code FROM idx_token WHERE rtype='Patient' AND param='identifier' LIMIT 1 OFFSET 777`).get() as {code:string}).code;
const org = (db.prepare(`SELECT id FROM resource WHERE type='Organization' LIMIT 1`).get() as {id:string}).id;
const qs = process.argv.slice(2).length ? process.argv.slice(2) : [
 `QuestionnaireResponse?subject:Patient.identifier=https://norpain.no/fhir/sid/registry-pseudonym|${pid}`,
 `QuestionnaireResponse?questionnaire=https://norpain.no/fhir/Questionnaire/norpain-baseline&authored=ge2023-04&authored=lt2023-07`,
 `EpisodeOfCare?organization=Organization/${org}`,
 `Patient?birthdate=ge1960&birthdate=lt1970&gender=female`,
];
for (const q of qs) {
  const req = parseSearchRequest(q);
  const conds = [{sql:'r.type = ? AND r.deleted = 0', params:[req.resourceType] as unknown[]}, ...compileFilters(req.resourceType, req.filters, 'r', { targetTypes: () => ['Patient','Organization'] })];
  const sql = `SELECT r.res FROM resource r WHERE ${conds.map(c=>`(${c.sql})`).join(' AND ')} ORDER BY r.res LIMIT 51`;
  const params = conds.flatMap(c=>c.params);
  console.log(q); 
  for (const row of db.prepare('EXPLAIN QUERY PLAN '+sql).all(...params) as {detail:string}[]) console.log('   ', row.detail);
  const t = performance.now(); const n = db.prepare(sql).all(...params).length; console.log('   rows', n, (performance.now()-t).toFixed(1),'ms');
}
