/**
 * Parallel coordinates and a scatter plot on a plain canvas: small, fast for
 * hundreds of runs, coloured from the theme.
 */
import React, { useEffect, useRef } from 'react';

import { axisTickLabel, IAxis } from './compare';
import { themeColor, useThemeVersion } from './LineChart';

/** Draw with a device-pixel-ratio aware 2D context sized to the element. */
function useCanvas(
  draw: (ctx: CanvasRenderingContext2D, w: number, h: number) => void,
  deps: unknown[],
  height: number
): React.RefObject<HTMLCanvasElement> {
  const ref = useRef<HTMLCanvasElement>(null);
  const theme = useThemeVersion();
  useEffect(() => {
    const canvas = ref.current;
    if (!canvas) {
      return;
    }
    const paint = () => {
      const w = Math.max(canvas.clientWidth, 200);
      const ratio = window.devicePixelRatio || 1;
      canvas.width = Math.round(w * ratio);
      canvas.height = Math.round(height * ratio);
      const ctx = canvas.getContext('2d');
      if (!ctx) {
        return;
      }
      ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
      ctx.clearRect(0, 0, w, height);
      draw(ctx, w, height);
    };
    paint();
    let last = canvas.clientWidth;
    const observer = new ResizeObserver(() => {
      if (Math.abs(canvas.clientWidth - last) > 2) {
        last = canvas.clientWidth;
        paint();
      }
    });
    observer.observe(canvas);
    return () => observer.disconnect();
  }, [...deps, theme, height]);
  return ref;
}

/** Props of `ParallelCoordinates`. */
export interface IParallelProps {
  axes: readonly IAxis[];
  colors: readonly string[];
  labels: readonly string[];
  height?: number;
}

/** Parallel coordinates: one vertical axis per param/metric, a line per run. */
export function ParallelCoordinates(props: IParallelProps): JSX.Element {
  const height = props.height ?? 280;
  const ref = useCanvas(
    (ctx, w, h) => {
      const fg = themeColor('--jp-ui-font-color1', '#222');
      const muted = themeColor('--jp-ui-font-color2', '#666');
      const line = themeColor('--jp-border-color1', '#bbb');
      const font = themeColor('--jp-ui-font-family', 'sans-serif');
      const { axes, colors } = props;
      if (axes.length < 2) {
        return;
      }
      const left = 50;
      const right = 50;
      const top = 28;
      const bottom = 16;
      const xAt = (i: number) =>
        left + (i * (w - left - right)) / (axes.length - 1);
      const yAt = (t: number) => top + (1 - t) * (h - top - bottom);
      // Runs.
      ctx.lineWidth = 1.25;
      ctx.globalAlpha = props.labels.length > 50 ? 0.5 : 0.85;
      for (let r = 0; r < props.labels.length; r++) {
        ctx.strokeStyle = colors[r];
        ctx.beginPath();
        let drawing = false;
        axes.forEach((axis, i) => {
          const t = axis.positions[r];
          if (!Number.isFinite(t)) {
            drawing = false;
            return;
          }
          if (drawing) {
            ctx.lineTo(xAt(i), yAt(t));
          } else {
            ctx.moveTo(xAt(i), yAt(t));
            drawing = true;
          }
        });
        ctx.stroke();
      }
      ctx.globalAlpha = 1;
      // Axes, names and tick labels.
      ctx.font = `11px ${font}`;
      ctx.textAlign = 'center';
      axes.forEach((axis, i) => {
        const x = xAt(i);
        ctx.strokeStyle = line;
        ctx.beginPath();
        ctx.moveTo(x, yAt(0));
        ctx.lineTo(x, yAt(1));
        ctx.stroke();
        ctx.fillStyle = fg;
        ctx.fillText(axis.label, x, 14);
        ctx.fillStyle = muted;
        const ticks =
          axis.kind === 'category'
            ? axis.categories.map((_, k) =>
                axis.categories.length === 1
                  ? 0.5
                  : k / (axis.categories.length - 1)
              )
            : [0, 0.5, 1];
        for (const t of ticks.slice(0, 12)) {
          const label =
            axis.kind === 'category' && axis.categories.length === 1
              ? axis.categories[0]
              : axisTickLabel(axis, t);
          ctx.textAlign = i === axes.length - 1 ? 'right' : 'left';
          ctx.fillText(label, x + (i === axes.length - 1 ? -4 : 4), yAt(t) + 4);
        }
        ctx.textAlign = 'center';
      });
    },
    [props.axes, props.colors, props.labels],
    height
  );
  return (
    <canvas
      ref={ref}
      className="jp-mlops-Parallel"
      style={{ width: '100%', height }}
      role="img"
      aria-label="parallel coordinates"
    />
  );
}

/** Props of `ScatterPlot`. */
export interface IScatterProps {
  x: IAxis;
  y: IAxis;
  colors: readonly string[];
  labels: readonly string[];
  height?: number;
}

/** A scatter plot of two axes, a dot per run. */
export function ScatterPlot(props: IScatterProps): JSX.Element {
  const height = props.height ?? 280;
  const ref = useCanvas(
    (ctx, w, h) => {
      const fg = themeColor('--jp-ui-font-color1', '#222');
      const muted = themeColor('--jp-ui-font-color2', '#666');
      const grid = themeColor('--jp-border-color2', '#ddd');
      const font = themeColor('--jp-ui-font-family', 'sans-serif');
      const left = 64;
      const right = 16;
      const top = 12;
      const bottom = 36;
      const px = (t: number) => left + (0.05 + 0.9 * t) * (w - left - right);
      const py = (t: number) =>
        top + (1 - (0.05 + 0.9 * t)) * (h - top - bottom);
      ctx.font = `11px ${font}`;
      ctx.strokeStyle = grid;
      ctx.fillStyle = muted;
      for (const t of [0, 0.5, 1]) {
        ctx.beginPath();
        ctx.moveTo(px(t), top);
        ctx.lineTo(px(t), h - bottom);
        ctx.moveTo(left, py(t));
        ctx.lineTo(w - right, py(t));
        ctx.stroke();
        ctx.textAlign = 'center';
        ctx.fillText(axisTickLabel(props.x, t), px(t), h - bottom + 14);
        ctx.textAlign = 'right';
        ctx.fillText(axisTickLabel(props.y, t), left - 4, py(t) + 4);
      }
      ctx.fillStyle = fg;
      ctx.textAlign = 'center';
      ctx.fillText(props.x.label, (left + w - right) / 2, h - 4);
      for (let r = 0; r < props.labels.length; r++) {
        const tx = props.x.positions[r];
        const ty = props.y.positions[r];
        if (!Number.isFinite(tx) || !Number.isFinite(ty)) {
          continue;
        }
        ctx.fillStyle = props.colors[r];
        ctx.beginPath();
        ctx.arc(px(tx), py(ty), 4, 0, Math.PI * 2);
        ctx.fill();
      }
    },
    [props.x, props.y, props.colors, props.labels],
    height
  );
  return (
    <canvas
      ref={ref}
      className="jp-mlops-Scatter"
      style={{ width: '100%', height }}
      role="img"
      aria-label="scatter plot"
    />
  );
}
