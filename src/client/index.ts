export * from './errors';
export * from './jobs-client';
export type * from './types';
export type * from './json-transport';
