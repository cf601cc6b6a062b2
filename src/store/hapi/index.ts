export { HapiStore } from './HapiStore';
export { registryDefinitions } from './sharedDefinitions';
