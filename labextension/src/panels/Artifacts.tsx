/**
 * The artifacts of a run: a lazily expanded tree and a preview of the chosen
 * file (image, text/JSON/YAML, CSV table, HTML in a sandboxed frame;
 * notebooks open in JupyterLab).
 */
import type { TranslationBundle } from '@jupyterlab/translation';
import React, { useEffect, useState } from 'react';

import { describeError, IFileInfo, IRunInfo, MLOpsClient } from '../api';
import {
  formatBytes,
  MAX_ROWS,
  MAX_TEXT,
  parseDelimited,
  previewKind
} from '../preview';
import { baseName } from '../rows';
import { isModelFolder } from '../models/data';

/** Props of `ArtifactsView`. */
export interface IArtifactsProps {
  client: MLOpsClient;
  run: IRunInfo;
  trans: TranslationBundle;
  /** Open a notebook artifact in JupyterLab. */
  openNotebook: (path: string, content: string) => void;
  /** Register a model folder (one holding an `MLmodel` file) of the run. */
  registerModel?: (runId: string, path: string) => void;
}

/** One folder level of the tree. */
function Folder(props: {
  client: MLOpsClient;
  run: IRunInfo;
  path: string;
  depth: number;
  selected: string | null;
  onSelect: (file: IFileInfo) => void;
  trans: TranslationBundle;
  registerModel?: (runId: string, path: string) => void;
}): JSX.Element {
  const [files, setFiles] = useState<IFileInfo[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [open, setOpen] = useState<Set<string>>(new Set());
  useEffect(() => {
    let live = true;
    props.client
      .listArtifacts(props.run.run_id, props.path)
      .then(f => live && setFiles(f))
      .catch(e => live && setError(describeError(e)));
    return () => {
      live = false;
    };
  }, [props.run.run_id, props.path]);
  if (error) {
    return <div className="jp-mlops-Error">{error}</div>;
  }
  if (!files) {
    return <div className="jp-mlops-Muted">{props.trans.__('Loading…')}</div>;
  }
  if (!files.length && props.depth === 0) {
    return (
      <div className="jp-mlops-Muted">{props.trans.__('No artifacts')}</div>
    );
  }
  const sorted = [...files].sort(
    (a, b) =>
      Number(!!b.is_dir) - Number(!!a.is_dir) || a.path.localeCompare(b.path)
  );
  const register =
    props.registerModel && props.path && isModelFolder(files)
      ? props.registerModel
      : null;
  return (
    <ul className="jp-mlops-ArtifactTree" role={props.depth ? 'group' : 'tree'}>
      {register ? (
        <li role="none">
          <button
            className="jp-mlops-Button jp-mod-styled jp-mlops-RegisterModel"
            data-path={props.path}
            style={{ marginLeft: 4 + props.depth * 14 }}
            title={props.trans.__(
              'Register %1 as a version of a model in the registry',
              props.path
            )}
            onClick={() => register(props.run.run_id, props.path)}
          >
            {props.trans.__('Register model…')}
          </button>
        </li>
      ) : null}
      {sorted.map(f => (
        <li
          key={f.path}
          role="treeitem"
          aria-expanded={f.is_dir ? open.has(f.path) : undefined}
        >
          <button
            className={
              'jp-mlops-ArtifactItem' +
              (f.path === props.selected ? ' jp-mod-selected' : '')
            }
            data-path={f.path}
            style={{ paddingLeft: 4 + props.depth * 14 }}
            onClick={() => {
              if (f.is_dir) {
                const next = new Set(open);
                if (next.has(f.path)) {
                  next.delete(f.path);
                } else {
                  next.add(f.path);
                }
                setOpen(next);
              } else {
                props.onSelect(f);
              }
            }}
          >
            {f.is_dir ? (open.has(f.path) ? '▾ ' : '▸ ') : ''}
            {baseName(f.path)}
            {!f.is_dir && f.file_size !== undefined ? (
              <span className="jp-mlops-Muted">
                {' '}
                {formatBytes(Number(f.file_size))}
              </span>
            ) : null}
          </button>
          {f.is_dir && open.has(f.path) ? (
            <Folder {...props} path={f.path} depth={props.depth + 1} />
          ) : null}
        </li>
      ))}
    </ul>
  );
}

/** State of the preview pane. */
type Preview =
  | { kind: 'none' }
  | { kind: 'loading'; path: string }
  | { kind: 'error'; path: string; message: string }
  | { kind: 'image'; path: string; url: string }
  | { kind: 'text'; path: string; text: string; truncated: boolean }
  | { kind: 'csv'; path: string; rows: string[][] }
  | { kind: 'html'; path: string; html: string }
  | { kind: 'notebook'; path: string; text: string }
  | { kind: 'binary'; path: string };

/** The artifacts tree and preview. */
export function ArtifactsView(props: IArtifactsProps): JSX.Element {
  const { client, run, trans } = props;
  const [preview, setPreview] = useState<Preview>({ kind: 'none' });

  useEffect(
    () => () => {
      if (preview.kind === 'image') {
        URL.revokeObjectURL(preview.url);
      }
    },
    [preview]
  );

  const select = async (file: IFileInfo) => {
    const path = file.path;
    const kind = previewKind(path);
    if (kind === 'binary') {
      setPreview({ kind, path });
      return;
    }
    setPreview({ kind: 'loading', path });
    try {
      const response = await client.fetchArtifact(run, path);
      if (kind === 'image') {
        const blob = await response.blob();
        setPreview({ kind, path, url: URL.createObjectURL(blob) });
        return;
      }
      const text = await response.text();
      if (kind === 'csv') {
        const delimiter = path.toLowerCase().endsWith('.tsv') ? '\t' : ',';
        setPreview({
          kind,
          path,
          rows: parseDelimited(text.slice(0, 4 * MAX_TEXT), delimiter)
        });
      } else if (kind === 'html') {
        setPreview({ kind, path, html: text });
      } else if (kind === 'notebook') {
        setPreview({ kind, path, text });
      } else {
        let shown = text.slice(0, MAX_TEXT);
        if (path.toLowerCase().endsWith('.json') && text.length <= MAX_TEXT) {
          try {
            shown = JSON.stringify(JSON.parse(text), null, 2);
          } catch {
            // Not valid JSON: show it as it is.
          }
        }
        setPreview({
          kind: 'text',
          path,
          text: shown,
          truncated: text.length > MAX_TEXT
        });
      }
    } catch (error) {
      setPreview({ kind: 'error', path, message: describeError(error) });
    }
  };

  const url = (path: string) => client.artifactUrl(run, path);
  let body: JSX.Element;
  switch (preview.kind) {
    case 'none':
      body = (
        <div className="jp-mlops-Muted">
          {trans.__('Select a file to preview it')}
        </div>
      );
      break;
    case 'loading':
      body = <div className="jp-mlops-Muted">{trans.__('Loading…')}</div>;
      break;
    case 'error':
      body = (
        <div className="jp-mlops-Error" role="alert">
          {preview.message}
        </div>
      );
      break;
    case 'image':
      body = (
        <img
          className="jp-mlops-ArtifactImage"
          src={preview.url}
          alt={preview.path}
        />
      );
      break;
    case 'text':
      body = (
        <>
          <pre className="jp-mlops-ArtifactText">{preview.text}</pre>
          {preview.truncated ? (
            <div className="jp-mlops-Muted">{trans.__('(truncated)')}</div>
          ) : null}
        </>
      );
      break;
    case 'csv': {
      const [head, ...rest] = preview.rows;
      body = (
        <div className="jp-mlops-TableScroll">
          <table className="jp-mlops-KV jp-mlops-ArtifactCsv">
            <thead>
              <tr>
                {(head ?? []).map((h, i) => (
                  <th key={i}>{h}</th>
                ))}
              </tr>
            </thead>
            <tbody>
              {rest.slice(0, MAX_ROWS).map((r, i) => (
                <tr key={i}>
                  {r.map((c, j) => (
                    <td key={j}>{c}</td>
                  ))}
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      );
      break;
    }
    case 'html':
      // No scripts, no same-origin: the page cannot reach JupyterLab.
      body = (
        <iframe
          className="jp-mlops-ArtifactHtml"
          sandbox=""
          srcDoc={preview.html}
          title={preview.path}
        />
      );
      break;
    case 'notebook':
      body = (
        <button
          className="jp-mlops-Button"
          onClick={() => props.openNotebook(preview.path, preview.text)}
        >
          {trans.__('Open %1 in JupyterLab', baseName(preview.path))}
        </button>
      );
      break;
    case 'binary':
      body = (
        <div className="jp-mlops-Muted">
          {trans.__('No preview for this file type.')}
        </div>
      );
      break;
  }
  const path = preview.kind === 'none' ? null : preview.path;
  return (
    <div className="jp-mlops-Artifacts">
      <div className="jp-mlops-Artifacts-tree">
        <Folder
          client={client}
          run={run}
          path=""
          depth={0}
          selected={path}
          onSelect={f => void select(f)}
          trans={trans}
          registerModel={props.registerModel}
        />
      </div>
      <div className="jp-mlops-Artifacts-preview">
        {path ? (
          <div className="jp-mlops-Artifacts-path">
            {path}{' '}
            <a
              href={url(path)}
              target="_blank"
              rel="noopener noreferrer"
              download
            >
              {trans.__('download')}
            </a>
          </div>
        ) : null}
        {body}
      </div>
    </div>
  );
}
