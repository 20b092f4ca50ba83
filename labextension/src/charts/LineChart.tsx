/**
 * `LineChart`: one uPlot line chart in a React tree, sized to its container
 * and coloured from JupyterLab's theme variables (redrawn on theme change).
 */
import React, { useEffect, useRef, useState } from 'react';
import uPlot from 'uplot';

import { formatMetricValue } from '../format';

import {
  alignSeries,
  forLogScale,
  paddedRange,
  smooth,
  XAxisMode
} from './series';

/** One line of a chart. */
export interface ILineSeries {
  label: string;
  color: string;
  x: readonly number[];
  y: readonly number[];
}

/** Axis and smoothing options shared by every chart of a view. */
export interface IChartOptions {
  xAxis: XAxisMode;
  logScale: boolean;
  /** EMA weight in [0, 1). */
  smoothing: number;
}

/** Props of `LineChart`. */
export interface ILineChartProps {
  title: string;
  series: readonly ILineSeries[];
  options: IChartOptions;
  height?: number;
  /** Show the legend (run names) under the plot. */
  legend?: boolean;
}

/** A CSS variable of the current theme, for canvas drawing. */
export function themeColor(name: string, fallback: string): string {
  const value = getComputedStyle(document.body).getPropertyValue(name).trim();
  return value || fallback;
}

/** A counter that changes when JupyterLab's theme changes. */
export function useThemeVersion(): number {
  const [version, setVersion] = useState(0);
  useEffect(() => {
    const observer = new MutationObserver(() => setVersion(v => v + 1));
    observer.observe(document.body, {
      attributes: true,
      attributeFilter: ['data-jp-theme-name', 'data-jp-theme-light']
    });
    return () => observer.disconnect();
  }, []);
  return version;
}

/** uPlot options for the given series and axis choices. */
function chartOptions(props: ILineChartProps, width: number): uPlot.Options {
  const fg = themeColor('--jp-ui-font-color2', '#666');
  const grid = themeColor('--jp-border-color2', '#ddd');
  const font = `11px ${themeColor('--jp-ui-font-family', 'sans-serif')}`;
  const { xAxis, logScale } = props.options;
  const axis = (label?: string): uPlot.Axis => ({
    stroke: fg,
    grid: { stroke: grid, width: 1 },
    ticks: { stroke: grid, width: 1 },
    font,
    labelFont: font,
    label,
    labelSize: label ? 16 : 0
  });
  return {
    width,
    height: props.height ?? 220,
    legend: { show: props.legend ?? true, live: true },
    cursor: { drag: { x: true, y: false } },
    scales: {
      x: {
        time: xAxis === 'wall',
        range: (_u, min, max) => paddedRange(min, max, xAxis)
      },
      y: logScale ? { distr: 3 } : {}
    },
    axes: [
      axis(
        xAxis === 'step' ? 'step' : xAxis === 'relative' ? 'seconds' : undefined
      ),
      { ...axis(), size: 56 }
    ],
    series: [
      { label: xAxis === 'step' ? 'step' : 'time' },
      ...props.series.map(s => ({
        label: s.label,
        stroke: s.color,
        width: 1.5,
        spanGaps: true,
        // A lone point draws no line: show it as a dot.
        points: { show: s.y.length < 2, size: 7 }
      }))
    ]
  };
}

/** uPlot data for the series with smoothing and log-scale applied. */
function chartData(props: ILineChartProps): uPlot.AlignedData {
  const { smoothing, logScale } = props.options;
  const aligned = alignSeries(
    props.series.map(s => ({
      x: s.x,
      y: smoothing > 0 ? smooth(s.y, smoothing) : s.y
    }))
  );
  if (logScale) {
    for (let i = 1; i < aligned.length; i++) {
      aligned[i] = forLogScale(aligned[i] as (number | null)[]);
    }
  }
  return aligned as unknown as uPlot.AlignedData;
}

/** A line chart of one metric. */
export function LineChart(props: ILineChartProps): JSX.Element {
  const host = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);
  const theme = useThemeVersion();

  useEffect(() => {
    const node = host.current;
    if (!node) {
      return;
    }
    const width = Math.max(node.clientWidth, 200);
    const opts = chartOptions(props, width);
    // The x-range drawn (seconds or steps), for tests.
    opts.hooks = {
      setScale: [
        (u, key) => {
          if (key === 'x') {
            const { min, max } = u.scales.x;
            const span = (max ?? 0) - (min ?? 0);
            node.dataset.xSpan = String(Math.round(span * 1000) / 1000);
          }
        }
      ]
    };
    const chart = new uPlot(opts, chartData(props), node);
    plot.current = chart;
    const observer = new ResizeObserver(() => {
      const w = node.clientWidth;
      if (w > 0 && Math.abs(w - chart.width) > 2) {
        chart.setSize({ width: w, height: chart.height });
      }
    });
    observer.observe(node);
    return () => {
      observer.disconnect();
      chart.destroy();
      plot.current = null;
    };
  }, [props.series, props.options, props.height, theme]);

  const single =
    props.series.length === 1 && props.series[0].y.length === 1
      ? props.series[0]
      : null;
  return (
    <div className="jp-mlops-Chart" data-metric={props.title}>
      <div className="jp-mlops-Chart-title">
        {props.title}
        {single ? (
          <span className="jp-mlops-Chart-single">
            {' = '}
            {formatMetricValue(single.y[0])}
            {props.options.xAxis === 'step' ? ` (step ${single.x[0]})` : ''}
          </span>
        ) : null}
      </div>
      <div className="jp-mlops-Chart-plot" ref={host} />
    </div>
  );
}

/** Props of `ChartOptionsBar`. */
export interface IChartOptionsBarProps {
  options: IChartOptions;
  onChange: (options: IChartOptions) => void;
  labels: {
    xAxis: string;
    step: string;
    wall: string;
    relative: string;
    log: string;
    smoothing: string;
  };
}

/** The x-axis / log scale / smoothing controls above a set of charts. */
export function ChartOptionsBar(props: IChartOptionsBarProps): JSX.Element {
  const { options, onChange, labels } = props;
  return (
    <div className="jp-mlops-ChartOptions">
      <label>
        {labels.xAxis}{' '}
        <select
          className="jp-mlops-ChartOptions-xaxis"
          value={options.xAxis}
          onChange={e =>
            onChange({ ...options, xAxis: e.target.value as XAxisMode })
          }
        >
          <option value="step">{labels.step}</option>
          <option value="wall">{labels.wall}</option>
          <option value="relative">{labels.relative}</option>
        </select>
      </label>
      <label>
        <input
          type="checkbox"
          className="jp-mlops-ChartOptions-log"
          checked={options.logScale}
          onChange={e => onChange({ ...options, logScale: e.target.checked })}
        />{' '}
        {labels.log}
      </label>
      <label>
        {labels.smoothing}{' '}
        <input
          type="range"
          className="jp-mlops-ChartOptions-smoothing"
          min={0}
          max={0.99}
          step={0.01}
          value={options.smoothing}
          onChange={e =>
            onChange({ ...options, smoothing: Number(e.target.value) })
          }
        />
        <span className="jp-mlops-ChartOptions-value">
          {options.smoothing.toFixed(2)}
        </span>
      </label>
    </div>
  );
}
