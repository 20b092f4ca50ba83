/** The typed REST client: the only module of the front end that speaks HTTP. */
export * from './client';
export * from './errors';
export * from './types';
export * from './pipelineTypes';
export * from './registryTypes';
export * from './projectTypes';
export * from './jobTypes';
export * from './jobs';
export * from './deploymentTypes';
export * from './deployments';
export * from './hub';
export * from './hubTypes';
export * from './traceTypes';
export * from './traces';
