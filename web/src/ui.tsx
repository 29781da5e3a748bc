/** Small shared components: data loading, tables with search and sort, forms whose GraphQL
 * errors appear next to their fields, guarded (read-only aware) buttons, badges. */
import type { ComponentChildren, JSX } from "preact";
import { useCallback, useEffect, useMemo, useState } from "preact/hooks";
import { GqlError } from "./client";
import { canWrite, READ_ONLY_REASON, session } from "./session";
import { useSignal } from "./signal";

export function useLoad<T>(load: () => Promise<T>, deps: unknown[]) {
  const [data, setData] = useState<T | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [tick, setTick] = useState(0);
  useEffect(() => {
    let alive = true;
    load().then(
      (value) => alive && (setData(value), setError(null)),
      (err: unknown) => alive && setError(err instanceof Error ? err.message : String(err)),
    );
    return () => {
      alive = false;
    };
  }, [...deps, tick]);
  const reload = useCallback(() => setTick((t) => t + 1), []);
  return { data, error, reload };
}

export function useWritable(): boolean {
  return canWrite(useSignal(session));
}

/** A button for a mutation: disabled, with the reason as its tooltip, for read-only sessions. */
export function ActionButton(
  props: JSX.ButtonHTMLAttributes<HTMLButtonElement> & { children: ComponentChildren },
) {
  const writable = useWritable();
  const { disabled, title, ...rest } = props;
  const button = (
    <button
      type="button"
      {...rest}
      disabled={!writable || Boolean(disabled)}
      aria-disabled={!writable || Boolean(disabled)}
      title={writable ? (title as string | undefined) : READ_ONLY_REASON}
    />
  );
  return writable ? button : <span class="readonly" title={READ_ONLY_REASON}>{button}</span>;
}

export function ErrorText({ error }: { error: string | null | undefined }) {
  return error ? (
    <p class="error" role="alert">
      {error}
    </p>
  ) : null;
}

export function Loading({ error }: { error: string | null }) {
  return error ? <ErrorText error={error} /> : <p class="muted">Loading…</p>;
}

export function Badge({ tone, children }: { tone: "ok" | "warn" | "bad" | "info" | "off"; children: ComponentChildren }) {
  return <span class={`badge ${tone}`}>{children}</span>;
}

export function formatTime(value: string | number | null | undefined): string {
  if (value === null || value === undefined || value === "") return "—";
  const date = typeof value === "number" ? new Date(value * 1000) : new Date(value);
  return Number.isNaN(date.getTime()) ? String(value) : date.toISOString().replace("T", " ").slice(0, 19);
}

export function ms(value: number | null | undefined): string {
  return value === null || value === undefined ? "—" : `${value.toFixed(1)} ms`;
}

const camel = (snake: string) => snake.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());
const snake = (name: string) => name.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);

/** Which field a GraphQL error is about: its message names the field (snake_case from the
 * store's validation, camelCase from GraphQL's own input coercion). */
export function splitErrors(error: unknown, fields: string[]): { byField: Record<string, string>; other: string | null } {
  const byField: Record<string, string> = {};
  const other: string[] = [];
  const items =
    error instanceof GqlError
      ? error.errors
      : [{ message: error instanceof Error ? error.message : String(error) }];
  const sorted = [...fields].sort((a, b) => b.length - a.length);
  for (const item of items) {
    const message = item.message;
    const field = sorted.find((name) => {
      const pattern = new RegExp(`(^|[^A-Za-z_])(${snake(name)}|${name})([^A-Za-z_]|$)`);
      return pattern.test(message);
    });
    if (field && !byField[field]) byField[field] = message;
    else other.push(message);
  }
  return { byField, other: other.length ? other.join(" ") : null };
}
export { camel };

export type SortDir = 1 | -1;

export interface Column<T> {
  key: string;
  label: string;
  value: (row: T) => string | number | boolean | null | undefined;
  render?: (row: T) => ComponentChildren;
}

/** A table with a search box and sortable columns. */
export function DataTable<T>(props: {
  caption: string;
  rows: T[];
  columns: Column<T>[];
  rowKey: (row: T) => string;
  initialSort?: string;
  initialDir?: SortDir;
  onRowClick?: (row: T) => void;
  actions?: (row: T) => ComponentChildren;
  filters?: ComponentChildren;
  empty?: string;
}) {
  const [search, setSearch] = useState("");
  const [sortKey, setSortKey] = useState(props.initialSort ?? props.columns[0].key);
  const [dir, setDir] = useState<SortDir>(props.initialDir ?? 1);
  const rows = useMemo(() => {
    const needle = search.trim().toLowerCase();
    const column = props.columns.find((c) => c.key === sortKey) ?? props.columns[0];
    const filtered = needle
      ? props.rows.filter((row) =>
          props.columns.some((c) => String(c.value(row) ?? "").toLowerCase().includes(needle)),
        )
      : props.rows;
    return [...filtered].sort((a, b) => {
      const x = column.value(a) ?? "";
      const y = column.value(b) ?? "";
      if (typeof x === "number" && typeof y === "number") return (x - y) * dir;
      return String(x).localeCompare(String(y)) * dir;
    });
  }, [props.rows, props.columns, search, sortKey, dir]);
  const id = `search-${props.caption.replace(/\W+/g, "-").toLowerCase()}`;
  return (
    <div class="table-wrap">
      <div class="toolbar">
        <label for={id}>Search</label>
        <input id={id} type="search" value={search} onInput={(e) => setSearch(e.currentTarget.value)} />
        {props.filters}
        <span class="muted">
          {rows.length} of {props.rows.length}
        </span>
      </div>
      <div class="scroll" tabIndex={0} role="region" aria-label={`${props.caption} table`}>
      <table>
        <caption class="sr-only">{props.caption}</caption>
        <thead>
          <tr>
            {props.columns.map((c) => (
              <th key={c.key} scope="col" aria-sort={sortKey === c.key ? (dir === 1 ? "ascending" : "descending") : "none"}>
                <button
                  type="button"
                  class="sort"
                  onClick={() => {
                    if (sortKey === c.key) setDir(dir === 1 ? -1 : 1);
                    else {
                      setSortKey(c.key);
                      setDir(1);
                    }
                  }}
                >
                  {c.label}
                  {sortKey === c.key ? (dir === 1 ? " ▲" : " ▼") : ""}
                </button>
              </th>
            ))}
            {props.actions ? <th scope="col">Actions</th> : null}
          </tr>
        </thead>
        <tbody>
          {rows.length === 0 ? (
            <tr>
              <td colSpan={props.columns.length + (props.actions ? 1 : 0)} class="muted">
                {props.empty ?? "Nothing here yet."}
              </td>
            </tr>
          ) : (
            rows.map((row) => (
              <tr key={props.rowKey(row)} class={props.onRowClick ? "clickable" : undefined} onClick={props.onRowClick ? () => props.onRowClick!(row) : undefined}>
                {props.columns.map((c) => (
                  <td key={c.key}>{c.render ? c.render(row) : String(c.value(row) ?? "—")}</td>
                ))}
                {props.actions ? (
                  <td class="actions" onClick={(e) => e.stopPropagation()}>
                    {props.actions(row)}
                  </td>
                ) : null}
              </tr>
            ))
          )}
        </tbody>
      </table>
      </div>
    </div>
  );
}

/** Ask before a destructive action. */
export function confirmed(message: string): boolean {
  return window.confirm(message);
}
