import type { IngestStage } from './write';

/**
 * Authorisation of a write (role, SMART scopes, organisation). Placeholder until the access rules are
 * built (issue 6): any authenticated principal may write. Kept as its own stage so that the rules land
 * in the right place of the pipeline, before anything is validated or stored.
 */
export const authoriseWrite: IngestStage = (write) => write;
