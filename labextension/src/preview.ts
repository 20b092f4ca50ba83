/** Artifact previews: which kind a file gets, and parsing CSV for a table. */
import { baseName } from './rows';

/** How a file is previewed, from its extension. */
export type PreviewKind =
  'image' | 'text' | 'csv' | 'html' | 'notebook' | 'binary';

/** The preview kind of a path. */
export function previewKind(path: string): PreviewKind {
  const ext = path.toLowerCase().split('.').pop() ?? '';
  if (['png', 'jpg', 'jpeg', 'gif', 'svg', 'webp', 'bmp'].includes(ext)) {
    return 'image';
  }
  if (['csv', 'tsv'].includes(ext)) {
    return 'csv';
  }
  if (['html', 'htm'].includes(ext)) {
    return 'html';
  }
  if (ext === 'ipynb') {
    return 'notebook';
  }
  if (
    [
      'txt',
      'log',
      'json',
      'yaml',
      'yml',
      'md',
      'py',
      'toml',
      'cfg',
      'ini',
      'sh',
      'r',
      'sql',
      'xml',
      'mlmodel',
      'requirements',
      'conda'
    ].includes(ext) ||
    !path.includes('.') ||
    baseName(path) === 'MLmodel'
  ) {
    return 'text';
  }
  return 'binary';
}

/** Most characters of a text preview. */
export const MAX_TEXT = 512 * 1024;
/** Most rows of a CSV preview. */
export const MAX_ROWS = 500;

/** Split delimited text into rows (quotes honoured; good enough for previews). */
export function parseDelimited(text: string, delimiter = ','): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let cell = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') {
        cell += '"';
        i++;
      } else if (c === '"') {
        quoted = false;
      } else {
        cell += c;
      }
    } else if (c === '"') {
      quoted = true;
    } else if (c === delimiter) {
      row.push(cell);
      cell = '';
    } else if (c === '\n' || c === '\r') {
      if (c === '\r' && text[i + 1] === '\n') {
        i++;
      }
      row.push(cell);
      rows.push(row);
      row = [];
      cell = '';
      if (rows.length > MAX_ROWS) {
        return rows;
      }
    } else {
      cell += c;
    }
  }
  if (cell !== '' || row.length) {
    row.push(cell);
    rows.push(row);
  }
  return rows;
}

/** A byte count for people. */
export function formatBytes(n: number): string {
  if (!Number.isFinite(n)) {
    return '';
  }
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return `${i ? n.toFixed(1) : n} ${units[i]}`;
}
