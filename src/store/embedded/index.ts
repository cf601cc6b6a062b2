export { EmbeddedStore } from './EmbeddedStore';
export { normaliseForSearch } from './normalise';
