/** Chart helpers; the uPlot views of issue #3 live here. */
export * from './series';
