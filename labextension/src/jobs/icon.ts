/** The Jobs panel's icon: a grid of processes (nodes × ranks). */
import { LabIcon } from '@jupyterlab/ui-components';

const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="16" viewBox="0 0 24 24">
<g class="jp-icon3" fill="#616161">
<rect x="2" y="3" width="9" height="8" rx="1"/>
<rect x="13" y="3" width="9" height="8" rx="1"/>
<rect x="2" y="13" width="9" height="8" rx="1"/>
<rect x="13" y="13" width="9" height="8" rx="1"/>
</g></svg>`;

export const jobIcon = new LabIcon({ name: 'jupyter-mlops:job', svgstr: svg });
