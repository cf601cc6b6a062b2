export { EmbeddedStore } from './EmbeddedStore';
export { normaliseForSearch, searchPrefixes } from './normalise';
