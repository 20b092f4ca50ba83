/**
 * Panels of the MLOps front end. Each is a React view of a model inside a
 * Lumino widget; issue #3 adds run detail, compare, pipelines and models.
 */
export * from './ExperimentList';
export * from './RunsPanel';
export * from './RunsTable';
export * from './states';
