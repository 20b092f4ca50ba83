/**
 * Small line charts of a deployment's request rate and p50/p99 latency over
 * the last scrapes, with the latest value beside them (theme colours only).
 */
import React from 'react';

import {
  formatRate,
  formatSeconds,
  IMetricsPoint,
  sparklinePath
} from './serving';

/** One sparkline with its label and latest value. */
export function Sparkline(props: {
  label: string;
  values: (number | null)[];
  text: string;
  kind: string;
  width?: number;
  height?: number;
}): JSX.Element {
  const width = props.width ?? 80;
  const height = props.height ?? 18;
  const d = sparklinePath(props.values, width, height);
  return (
    <span className="jp-mlops-Sparkline" data-metric={props.kind}>
      <span className="jp-mlops-Sparkline-label">{props.label}</span>
      <svg
        width={width}
        height={height}
        viewBox={`0 0 ${width} ${height}`}
        role="img"
        aria-label={`${props.label}: ${props.text}`}
      >
        {d ? <path d={d} className="jp-mlops-Sparkline-line" /> : null}
      </svg>
      <span className="jp-mlops-Sparkline-value">{props.text}</span>
    </span>
  );
}

/** Request rate, p50 and p99 of a deployment. */
export function ServingSparklines(props: {
  points: IMetricsPoint[];
  width?: number;
  height?: number;
}): JSX.Element {
  const { points, width, height } = props;
  const last = points[points.length - 1];
  return (
    <span className="jp-mlops-Sparklines">
      <Sparkline
        label="req/s"
        kind="rate"
        values={points.map(p => p.rate)}
        text={formatRate(last ? last.rate : null)}
        width={width}
        height={height}
      />
      <Sparkline
        label="p50"
        kind="p50"
        values={points.map(p => p.p50)}
        text={formatSeconds(last ? last.p50 : null)}
        width={width}
        height={height}
      />
      <Sparkline
        label="p99"
        kind="p99"
        values={points.map(p => p.p99)}
        text={formatSeconds(last ? last.p99 : null)}
        width={width}
        height={height}
      />
    </span>
  );
}
