export { HapiStore } from './HapiStore';
export { HapiClient, type HapiClientOptions } from './client';
export { registryDefinitions, type SharedDefinitions } from './sharedDefinitions';
