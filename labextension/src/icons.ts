/** Icons of the extension, themed through JupyterLab's `jp-icon3` class. */
import { LabIcon } from '@jupyterlab/ui-components';

// Inlined rather than imported as a file: `tsc` writes `lib/` beside
// `labextension/`, so a relative import of a style asset would not resolve.
const MLOPS_SVG = `<svg xmlns="http://www.w3.org/2000/svg" width="16" height="16" viewBox="0 0 24 24">
  <g class="jp-icon3" fill="#616161">
    <path d="M3 3h2v16h16v2H3z"/>
    <path d="M7.5 15.6l3.6-4.4 3 2.6 5.1-6.6 1.6 1.2-6.4 8.3-3-2.6-2.4 2.9z"/>
    <circle cx="19.6" cy="4.6" r="1.6"/>
  </g>
</svg>`;

/** The MLOps sidebar icon: a rising line chart. */
export const mlopsIcon = new LabIcon({
  name: 'jupyter-mlops:mlops',
  svgstr: MLOPS_SVG
});
