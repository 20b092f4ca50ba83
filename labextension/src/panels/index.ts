/**
 * Panels of the MLOps front end. Each is a React view of a model inside a
 * Lumino widget.
 */
export * from './Artifacts';
export * from './Compare';
export * from './ExperimentList';
export * from './RunDetail';
export * from './runDetailModel';
export * from './KeyPicker';
export * from './RunsPanel';
export * from './RunsTab';
export * from './RunsTable';
export * from './states';
