import { applyScores, compileQuestionnaire, readNorPainQuestionnaires } from '../../src/validation/questionnaire';
import { fillResponse } from '../../test/validation/responses';
const q = readNorPainQuestionnaires().find((x) => x.url?.endsWith('/norpain-baseline'))!;
const c = compileQuestionnaire(q); const r = fillResponse(q);
for (let i = 0; i < 2000; i++) applyScores(c, r);
const t = process.hrtime.bigint(); for (let i = 0; i < 5000; i++) applyScores(c, r);
console.log(Number(process.hrtime.bigint() - t) / 5000 / 1000, 'µs');
