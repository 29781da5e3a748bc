/** Forms described by field specs: each input is labelled, and the GraphQL error about a field
 * is shown next to that field (aria-describedby), the rest above the submit button. */
import type { ComponentChildren } from "preact";
import { useEffect, useRef, useState } from "preact/hooks";
import { ErrorText, splitErrors, useWritable } from "./ui";
import { READ_ONLY_REASON } from "./session";

export type FieldKind = "text" | "url" | "email" | "password" | "number" | "float" | "bool" | "list" | "json" | "select";

export interface FieldSpec {
  name: string;
  label: string;
  kind: FieldKind;
  section?: string;
  options?: string[];
  help?: string;
  required?: boolean;
  /** Only when creating (e.g. the hostname, which is the key). */
  createOnly?: boolean;
}

export type Values = Record<string, unknown>;

function toText(kind: FieldKind, value: unknown): string {
  if (value === null || value === undefined) return "";
  if (kind === "list") return (value as string[]).join("\n");
  if (kind === "json") return JSON.stringify(value, null, 2);
  return String(value);
}

/** Form text -> GraphQL input value; throws with a message naming the field for bad JSON. */
function fromText(spec: FieldSpec, text: string): unknown {
  const trimmed = text.trim();
  if (spec.kind === "list") {
    return trimmed ? trimmed.split(/[\n,]+/).map((s) => s.trim()).filter(Boolean) : [];
  }
  if (spec.kind === "json") {
    if (!trimmed) return null;
    try {
      return JSON.parse(trimmed);
    } catch {
      throw new Error(`${spec.name} must be valid JSON.`);
    }
  }
  if (spec.kind === "number") {
    if (trimmed === "") return null;
    const value = Number(trimmed);
    if (!Number.isInteger(value)) throw new Error(`${spec.name} must be a whole number.`);
    return value;
  }
  if (spec.kind === "float") {
    if (trimmed === "") return null;
    const value = Number(trimmed);
    if (!Number.isFinite(value)) throw new Error(`${spec.name} must be a number.`);
    return value;
  }
  return trimmed === "" ? null : trimmed;
}

export function SpecForm(props: {
  id: string;
  specs: FieldSpec[];
  initial: Values;
  mode: "create" | "edit";
  submitLabel: string;
  onSubmit: (values: Values) => Promise<unknown>;
  onDone?: (result: unknown) => void;
  /** When set, submitting first asks for confirmation with this title and text (an inline
   * alertdialog); only "Confirm" sends the values. */
  confirm?: { title: string; text: string; action: string };
  /** Which field an error that names none is about (e.g. "port 80 is restricted" -> hostPort). */
  fieldOf?: (message: string, values: Values) => string | null;
  children?: ComponentChildren;
}) {
  const writable = useWritable();
  const specs = props.specs.filter((s) => props.mode === "create" || !s.createOnly);
  const [texts, setTexts] = useState<Record<string, string>>(() =>
    Object.fromEntries(specs.filter((s) => s.kind !== "bool").map((s) => [s.name, toText(s.kind, props.initial[s.name])])),
  );
  const [bools, setBools] = useState<Record<string, boolean>>(() =>
    Object.fromEntries(specs.filter((s) => s.kind === "bool").map((s) => [s.name, Boolean(props.initial[s.name])])),
  );
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [other, setOther] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const [saved, setSaved] = useState(false);
  const [pending, setPending] = useState<Values | null>(null);

  async function submit(event: Event) {
    event.preventDefault();
    setSaved(false);
    const values: Values = {};
    const local: Record<string, string> = {};
    for (const spec of specs) {
      if (spec.kind === "bool") {
        if (props.mode === "create" || bools[spec.name] !== Boolean(props.initial[spec.name])) {
          values[spec.name] = bools[spec.name];
        }
        continue;
      }
      const text = texts[spec.name] ?? "";
      if (props.mode === "edit" && text === toText(spec.kind, props.initial[spec.name])) continue;
      try {
        const value = fromText(spec, text);
        if (spec.kind === "password" && value === null) continue; // write-only: blank keeps it
        if (props.mode === "create" && (value === null || (Array.isArray(value) && value.length === 0))) continue;
        values[spec.name] = value;
      } catch (err) {
        local[spec.name] = (err as Error).message;
      }
    }
    setErrors(local);
    setOther(null);
    if (Object.keys(local).length) return;
    if (props.confirm) setPending(values);
    else await send(values);
  }

  async function send(values: Values) {
    setPending(null);
    setBusy(true);
    try {
      const result = await props.onSubmit(values);
      setSaved(true);
      props.onDone?.(result);
    } catch (err) {
      const split = splitErrors(err, specs.map((s) => s.name));
      const field = split.other && props.fieldOf ? props.fieldOf(split.other, values) : null;
      if (field && split.other && !split.byField[field]) {
        split.byField[field] = split.other;
        split.other = null;
      }
      setErrors(split.byField);
      setOther(split.other);
    } finally {
      setBusy(false);
    }
  }

  const sections: string[] = [];
  for (const spec of specs) if (!sections.includes(spec.section ?? "")) sections.push(spec.section ?? "");

  return (
    <form id={props.id} class="spec-form" onSubmit={submit} noValidate>
      {sections.map((section) => (
        <fieldset key={section}>
          {section ? <legend>{section}</legend> : null}
          {specs
            .filter((s) => (s.section ?? "") === section)
            .map((spec) => {
              const inputId = `${props.id}-${spec.name}`;
              const errorId = `${inputId}-error`;
              const error = errors[spec.name];
              const common = {
                id: inputId,
                name: spec.name,
                disabled: !writable,
                title: writable ? undefined : READ_ONLY_REASON,
                "aria-invalid": error ? true : undefined,
                "aria-describedby": error ? errorId : undefined,
              };
              let control;
              if (spec.kind === "bool") {
                control = (
                  <input
                    type="checkbox"
                    {...common}
                    checked={bools[spec.name]}
                    onChange={(e) => setBools({ ...bools, [spec.name]: e.currentTarget.checked })}
                  />
                );
              } else if (spec.kind === "select") {
                control = (
                  <select {...common} value={texts[spec.name]} onChange={(e) => setTexts({ ...texts, [spec.name]: e.currentTarget.value })}>
                    {props.mode === "create" ? <option value="">(default)</option> : null}
                    {spec.options!.map((o) => (
                      <option key={o} value={o}>
                        {o}
                      </option>
                    ))}
                  </select>
                );
              } else if (spec.kind === "list" || spec.kind === "json") {
                control = (
                  <textarea
                    {...common}
                    rows={spec.kind === "json" ? 3 : 2}
                    value={texts[spec.name]}
                    placeholder={spec.kind === "list" ? "one per line" : "{}"}
                    onInput={(e) => setTexts({ ...texts, [spec.name]: e.currentTarget.value })}
                  />
                );
              } else {
                control = (
                  <input
                    type={spec.kind === "float" ? "number" : spec.kind}
                    step={spec.kind === "float" ? "any" : undefined}
                    {...common}
                    required={spec.required}
                    autocomplete={spec.kind === "password" ? "new-password" : "off"}
                    placeholder={spec.kind !== "password" ? undefined : props.mode === "edit" ? "write-only: leave blank to keep" : "write-only"}
                    value={texts[spec.name]}
                    onInput={(e) => setTexts({ ...texts, [spec.name]: e.currentTarget.value })}
                  />
                );
              }
              return (
                <div class={`field ${spec.kind === "bool" ? "check" : ""} ${error ? "invalid" : ""}`} key={spec.name} data-field={spec.name}>
                  <label for={inputId}>{spec.label}</label>
                  {control}
                  {spec.help ? <small class="muted">{spec.help}</small> : null}
                  {error ? (
                    <p class="field-error" id={errorId} role="alert">
                      {error}
                    </p>
                  ) : null}
                </div>
              );
            })}
        </fieldset>
      ))}
      {props.children}
      <ErrorText error={other} />
      {pending && props.confirm ? (
        <ConfirmBox
          id={`${props.id}-confirm`}
          {...props.confirm}
          onConfirm={() => void send(pending)}
          onCancel={() => setPending(null)}
        />
      ) : null}
      <div class="form-actions">
        <span title={writable ? undefined : READ_ONLY_REASON}>
          <button type="submit" class="primary" disabled={!writable || busy || pending !== null}>
            {busy ? "Saving…" : props.submitLabel}
          </button>
        </span>
        {saved ? <span class="ok-text" role="status">Saved.</span> : null}
      </div>
    </form>
  );
}

/** An inline confirmation (alertdialog) that takes the focus; Escape cancels. */
export function ConfirmBox(props: {
  id: string;
  title: string;
  text: string;
  action: string;
  busy?: boolean;
  error?: string | null;
  onConfirm: () => void;
  onCancel: () => void;
}) {
  const box = useRef<HTMLDivElement>(null);
  useEffect(() => box.current?.focus(), []);
  return (
    <div
      class="confirm"
      ref={box}
      tabIndex={-1}
      role="alertdialog"
      aria-labelledby={`${props.id}-title`}
      aria-describedby={`${props.id}-text`}
      onKeyDown={(e) => e.key === "Escape" && props.onCancel()}
    >
      <h3 id={`${props.id}-title`}>{props.title}</h3>
      <p id={`${props.id}-text`}>{props.text}</p>
      <ErrorText error={props.error} />
      <div class="form-actions">
        <button type="button" class="primary" disabled={props.busy} onClick={props.onConfirm}>
          {props.action}
        </button>
        <button type="button" onClick={props.onCancel}>Cancel</button>
      </div>
    </div>
  );
}
