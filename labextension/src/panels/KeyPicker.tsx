/**
 * The runs table's key picker: which param, metric and tag columns to show,
 * or which param or tag to group by. An experiment may have thousands of
 * keys, so the picker asks the server (`v1/runs/keys`) only when opened, and
 * again as the search changes, for at most `KEY_LIMIT` matches of each kind.
 */
import type { TranslationBundle } from '@jupyterlab/translation';
import React, { useEffect, useRef, useState } from 'react';

import { describeError, IRunKeys, MLOpsClient } from '../api';

/** Keys of each kind the picker lists at once (type to narrow). */
export const KEY_LIMIT = 200;

/** The kinds of keys, as column prefixes. */
export type KeyKind = 'params' | 'metrics' | 'tags';

/** Props of `KeyPicker`. */
export interface IKeyPickerProps {
  client: MLOpsClient;
  experimentId: string;
  trans: TranslationBundle;
  /** Button label. */
  label: string;
  /** Kinds offered (columns: all three; grouping: params and tags). */
  kinds: readonly KeyKind[];
  /** Chosen columns (`params.x`, ...). */
  chosen: readonly string[];
  /** Many columns (ticks) or one (grouping: choosing again clears it). */
  multiple: boolean;
  onChange: (chosen: string[]) => void;
  /** Class of the picker (tests, styles). */
  className?: string;
}

/** The chosen keys first, then the server's matches, each kind apart. */
export function pickerEntries(
  keys: IRunKeys,
  kinds: readonly KeyKind[],
  chosen: readonly string[],
  search: string
): { kind: KeyKind; columns: string[]; more: boolean }[] {
  const needle = search.toLowerCase();
  return kinds.map(kind => {
    const picked = chosen.filter(
      c =>
        c.startsWith(`${kind}.`) &&
        c
          .slice(kind.length + 1)
          .toLowerCase()
          .includes(needle)
    );
    const rest = keys[kind]
      .map(k => `${kind}.${k}`)
      .filter(c => !picked.includes(c));
    return {
      kind,
      columns: [...picked, ...rest],
      more: keys[kind].length >= KEY_LIMIT
    };
  });
}

/** A button opening a searchable list of the experiment's keys. */
export function KeyPicker(props: IKeyPickerProps): JSX.Element {
  const { client, experimentId, trans, kinds, chosen, multiple } = props;
  const [open, setOpen] = useState(false);
  const [search, setSearch] = useState('');
  const [keys, setKeys] = useState<IRunKeys | null>(null);
  const [error, setError] = useState<string | null>(null);
  const root = useRef<HTMLDivElement>(null);

  // Ask the server when opened and as the search changes (debounced).
  useEffect(() => {
    if (!open) {
      return;
    }
    let live = true;
    const timer = window.setTimeout(
      () => {
        client
          .runKeys({
            experiment_ids: [experimentId],
            search,
            max_results: KEY_LIMIT
          })
          .then(answer => {
            if (live) {
              setKeys(answer);
              setError(null);
            }
          })
          .catch(reason => {
            if (live) {
              setError(describeError(reason));
            }
          });
      },
      keys === null ? 0 : 250
    );
    return () => {
      live = false;
      window.clearTimeout(timer);
    };
  }, [open, search, experimentId]);

  // Close on a click elsewhere, as menus do.
  useEffect(() => {
    if (!open) {
      return;
    }
    const away = (event: MouseEvent) => {
      if (root.current && !root.current.contains(event.target as Node)) {
        setOpen(false);
      }
    };
    document.addEventListener('mousedown', away);
    return () => document.removeEventListener('mousedown', away);
  }, [open]);

  const heading = (kind: KeyKind) =>
    kind === 'params'
      ? trans.__('Params')
      : kind === 'metrics'
        ? trans.__('Metrics')
        : trans.__('Tags');
  const toggle = (column: string, on: boolean) => {
    if (multiple) {
      props.onChange(
        on ? [...chosen, column] : chosen.filter(c => c !== column)
      );
    } else {
      props.onChange(on ? [column] : []);
      setOpen(false);
    }
  };

  return (
    <div
      className={'jp-mlops-KeyPicker ' + (props.className ?? '')}
      ref={root}
      onKeyDown={event => {
        if (event.key === 'Escape') {
          setOpen(false);
        }
      }}
    >
      <button
        type="button"
        className="jp-mlops-Button jp-mlops-KeyPicker-button"
        aria-expanded={open}
        aria-haspopup="dialog"
        onClick={() => setOpen(!open)}
      >
        {props.label}
      </button>
      {open ? (
        <div
          className="jp-mlops-KeyPicker-popup"
          role="dialog"
          aria-label={props.label}
        >
          <input
            className="jp-mlops-Input jp-mlops-KeyPicker-search"
            type="search"
            autoFocus
            placeholder={trans.__('Search keys')}
            aria-label={trans.__('Search keys')}
            value={search}
            onChange={e => setSearch(e.target.value)}
          />
          {!multiple && chosen.length ? (
            <button
              type="button"
              className="jp-mlops-Button jp-mlops-KeyPicker-clear"
              onClick={() => toggle(chosen[0], false)}
            >
              {trans.__('No grouping')}
            </button>
          ) : null}
          {error ? (
            <div className="jp-mlops-Filter-error" role="alert">
              {error}
            </div>
          ) : keys === null ? (
            <div className="jp-mlops-Muted">{trans.__('Loading keys…')}</div>
          ) : (
            <div className="jp-mlops-KeyPicker-list">
              {pickerEntries(keys, kinds, chosen, search).map(group => (
                <fieldset key={group.kind} data-kind={group.kind}>
                  <legend>{heading(group.kind)}</legend>
                  {group.columns.length ? (
                    group.columns.map(column => (
                      <label key={column} data-column={column}>
                        <input
                          type={multiple ? 'checkbox' : 'radio'}
                          name={multiple ? undefined : 'jp-mlops-group'}
                          checked={chosen.includes(column)}
                          onChange={e => toggle(column, e.target.checked)}
                        />{' '}
                        {column.slice(group.kind.length + 1)}
                      </label>
                    ))
                  ) : (
                    <span className="jp-mlops-Muted">{trans.__('None')}</span>
                  )}
                  {group.more ? (
                    <span className="jp-mlops-Muted">
                      {trans.__('More keys: type to narrow the list')}
                    </span>
                  ) : null}
                </fieldset>
              ))}
            </div>
          )}
        </div>
      ) : null}
    </div>
  );
}
