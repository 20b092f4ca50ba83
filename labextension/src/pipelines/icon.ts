/** The Pipelines panel's icon: three boxes joined left to right. */
import { LabIcon } from '@jupyterlab/ui-components';

const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="16" viewBox="0 0 24 24">
<g class="jp-icon3" fill="#616161">
<rect x="1" y="9" width="6" height="6" rx="1"/>
<rect x="16" y="3" width="7" height="6" rx="1"/>
<rect x="16" y="15" width="7" height="6" rx="1"/>
<path d="M7 11.2h4v-5.4h5v1.4h-3.6v4h0V12.8h0v4h3.6v1.4h-5v-5.4H7z"/>
</g></svg>`;

export const pipelineIcon = new LabIcon({
  name: 'jupyter-mlops:pipeline',
  svgstr: svg
});

const modelSvg = `<svg xmlns="http://www.w3.org/2000/svg" width="16" viewBox="0 0 24 24">
<g class="jp-icon3" fill="#616161">
<path d="M12 2 3 7v10l9 5 9-5V7zm0 2.3 6.6 3.7L12 11.7 5.4 8zM5 9.7l6 3.4v6.6l-6-3.4zm8 10v-6.6l6-3.4v6.6z"/>
</g></svg>`;

export const modelIcon = new LabIcon({
  name: 'jupyter-mlops:model',
  svgstr: modelSvg
});
