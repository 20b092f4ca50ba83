import 'uplot/dist/uPlot.min.css';
import './base.css';
import './pipelines.css';
import './projects.css';
import './jobs.css';
import './deployments.css';
import './traces.css';
