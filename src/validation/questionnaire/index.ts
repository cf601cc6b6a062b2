export { compareVersions, formatCanonical, parseCanonical, type Canonical } from './canonical';
export { compileQuestionnaire, type CompiledItem, type CompiledQuestionnaire } from './compile';
export { validateQuestionnaireResponse } from './validate';
export { mergeRepeatedAnswers } from './repeated-answers';
export { applyScores, type ScoreOptions, type ScoredResponse } from './scoring';
export {
  listQuestionnaireSource,
  QuestionnaireRegistry,
  storeQuestionnaireSource,
  type QuestionnaireSource,
} from './registry';
export { checkQuestionnaireResponse, type QuestionnaireCheck } from './check';
export { loadNorPainQuestionnaires, NORPAIN_QUESTIONNAIRE_URLS, readNorPainQuestionnaires } from './norpain';
