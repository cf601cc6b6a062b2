export { parseCanonical } from './canonical';
export { compileQuestionnaire, type CompiledItem, type CompiledQuestionnaire } from './compile';
export { validateQuestionnaireResponse } from './validate';
export { mergeRepeatedAnswers } from './repeated-answers';
export { applyScores } from './scoring';
export {
  listQuestionnaireSource,
  QuestionnaireRegistry,
  storeQuestionnaireSource,
  type QuestionnaireSource,
} from './registry';
export { checkQuestionnaireResponse } from './check';
export { loadNorPainQuestionnaires, NORPAIN_QUESTIONNAIRE_URLS, readNorPainQuestionnaires } from './norpain';
