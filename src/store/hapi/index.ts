export { HapiStore } from './HapiStore';
export { HapiClient, type HapiClientOptions } from './client';
