export * from './series';
export * from './compare';
export * from './LineChart';
export * from './CanvasPlots';
