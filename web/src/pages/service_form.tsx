/** The "new Docker service" form: name, image, command, memory limit, restart policy, ports
 * (container port, optional host port, bind address) and an optional proxy. A GraphQL error is
 * shown next to the field (or the port row) it is about. */
import { useState } from "preact/hooks";
import { GqlError, request } from "../client";
import type { VariablesOf } from "../graphql";
import { CreateDockerService } from "../ops";
import { READ_ONLY_REASON } from "../session";
import { ErrorText, useWritable } from "../ui";

type Input = VariablesOf<typeof CreateDockerService>["input"];

interface PortRow {
  key: number;
  containerPort: string;
  hostPort: string;
  bindAddress: string;
}

/** Which field of this form an error message is about (first rule that matches wins; the
 * messages come from proxyd's validation, e.g. "memoryLimit must look like 512m ..."). */
const RULES: [RegExp, string][] = [
  [/\bmemoryLimit\b|\bmemory\b/i, "memoryLimit"],
  [/\bcommand\b/, "command"],
  [/\bimage\b|\bdockerfilePath\b/, "image"],
  [/\bhostname\b|\ba proxy for\b/, "hostname"],
  [/\bport\b|\bcontainerPort\b|\bhostPort\b|\bbindAddress\b|\bprotocol\b/i, "ports"],
  [/\bservice name\b|\bservice named\b|\bname\b/, "name"],
];

export function errorField(message: string, ports: PortRow[]): string | null {
  const rule = RULES.find(([pattern]) => pattern.test(message));
  if (!rule) return null;
  if (rule[1] !== "ports") return rule[1];
  // the port row the message names by number (e.g. "port 80 is outside the service port range")
  const numbers: string[] = message.match(/\d+/g) ?? [];
  const index = ports.findIndex((p) => numbers.includes(p.hostPort.trim()) || numbers.includes(p.containerPort.trim()));
  return index >= 0 ? `ports.${index}` : "ports";
}

function wholePort(text: string, what: string): number {
  const value = Number(text.trim());
  if (!Number.isInteger(value) || value < 1 || value > 65535) throw new Error(`${what} must be a whole number from 1 to 65535.`);
  return value;
}

let nextKey = 1;
const emptyPort = (): PortRow => ({ key: nextKey++, containerPort: "", hostPort: "", bindAddress: "127.0.0.1" });

export function CreateServiceForm({ onCreated }: { onCreated: (name: string) => void }) {
  const writable = useWritable();
  const [texts, setTexts] = useState({ name: "", image: "", command: "", memoryLimit: "", restartPolicy: "", hostname: "" });
  const [autoProxy, setAutoProxy] = useState(false);
  const [ports, setPorts] = useState<PortRow[]>([emptyPort()]);
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [other, setOther] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  function build(): { input: Input; local: Record<string, string> } {
    const local: Record<string, string> = {};
    const input: Record<string, unknown> = { name: texts.name.trim(), image: texts.image.trim() };
    if (!input.name) local.name = "A name is required.";
    if (!input.image) local.image = "An image is required (proxyd does not pull: it must be on the Docker host).";
    if (texts.command.trim()) input.command = [texts.command.trim()]; // proxyd splits it like a shell
    if (texts.memoryLimit.trim()) input.memoryLimit = texts.memoryLimit.trim();
    if (texts.restartPolicy) input.restartPolicy = texts.restartPolicy;
    const out: Record<string, unknown>[] = [];
    ports.forEach((row, i) => {
      if (!row.containerPort.trim() && !row.hostPort.trim()) return;
      try {
        const port: Record<string, unknown> = { containerPort: wholePort(row.containerPort, "Container port") };
        if (row.hostPort.trim()) port.hostPort = wholePort(row.hostPort, "Host port");
        if (row.bindAddress !== "127.0.0.1") port.bindAddress = row.bindAddress;
        out.push(port);
      } catch (err) {
        local[`ports.${i}`] = (err as Error).message;
      }
    });
    if (out.length) input.ports = out;
    if (autoProxy) input.autoProxy = true;
    if (texts.hostname.trim()) input.hostname = texts.hostname.trim();
    return { input: input as Input, local };
  }

  async function submit(event: Event) {
    event.preventDefault();
    const { input, local } = build();
    setErrors(local);
    setOther(null);
    if (Object.keys(local).length) return;
    setBusy(true);
    try {
      const data = await request(CreateDockerService, { input });
      onCreated(data.createService.name);
    } catch (err) {
      const items = err instanceof GqlError ? err.errors : [{ message: (err as Error).message }];
      const byField: Record<string, string> = {};
      const rest: string[] = [];
      for (const item of items) {
        const field = errorField(item.message, ports);
        if (field && !byField[field]) byField[field] = item.message;
        else rest.push(item.message);
      }
      setErrors(byField);
      setOther(rest.length ? rest.join(" ") : null);
    } finally {
      setBusy(false);
    }
  }

  const lock = { disabled: !writable, title: writable ? undefined : READ_ONLY_REASON };
  const field = (name: keyof typeof texts, label: string, help?: string, placeholder?: string) => {
    const id = `create-service-${name}`;
    const error = errors[name];
    return (
      <div class={`field ${error ? "invalid" : ""}`} data-field={name}>
        <label for={id}>{label}</label>
        <input
          id={id}
          type="text"
          autocomplete="off"
          spellcheck={false}
          {...lock}
          placeholder={placeholder}
          value={texts[name]}
          aria-invalid={error ? true : undefined}
          aria-describedby={error ? `${id}-error` : undefined}
          onInput={(e) => setTexts({ ...texts, [name]: e.currentTarget.value })}
        />
        {help ? <small class="muted">{help}</small> : null}
        {error ? <p class="field-error" id={`${id}-error`} role="alert">{error}</p> : null}
      </div>
    );
  };
  const setPort = (i: number, change: Partial<PortRow>) => setPorts(ports.map((p, j) => (j === i ? { ...p, ...change } : p)));

  return (
    <form id="create-service" class="spec-form" onSubmit={submit} noValidate>
      <fieldset>
        <legend>Container</legend>
        {field("name", "Name", "lower-case letters, digits, - and _; the container is proxyd-NAME")}
        {field("image", "Image", "present on the Docker host (proxyd does not pull)", "busybox:latest")}
        {field("command", "Command", "optional; split like a shell would")}
        {field("memoryLimit", "Memory limit", "optional: 64m, 1g or bytes")}
        <div class="field" data-field="restartPolicy">
          <label for="create-service-restartPolicy">Restart policy</label>
          <select
            id="create-service-restartPolicy"
            {...lock}
            value={texts.restartPolicy}
            onChange={(e) => setTexts({ ...texts, restartPolicy: e.currentTarget.value })}
          >
            <option value="">(default: unless-stopped)</option>
            {["no", "always", "unless-stopped", "on-failure"].map((p) => <option key={p} value={p}>{p}</option>)}
          </select>
        </div>
      </fieldset>
      <fieldset class="ports-fieldset" data-field="ports" aria-describedby={errors.ports ? "create-service-ports-error" : undefined}>
        <legend>Ports</legend>
        {ports.map((row, i) => {
          const error = errors[`ports.${i}`];
          const errorId = `create-service-port-${row.key}-error`;
          const invalid = {
            "aria-invalid": error ? true : undefined,
            "aria-describedby": error ? errorId : undefined,
          } as const;
          return (
            <div class={`port-row ${error ? "invalid" : ""}`} key={row.key} data-field={`ports.${i}`}>
              <div class="field">
                <label for={`port-${row.key}-container`}>Container port</label>
                <input id={`port-${row.key}-container`} type="number" min={1} max={65535} {...lock} {...invalid} value={row.containerPort} onInput={(e) => setPort(i, { containerPort: e.currentTarget.value })} />
              </div>
              <div class="field">
                <label for={`port-${row.key}-host`}>Host port</label>
                <input id={`port-${row.key}-host`} type="number" min={1} max={65535} placeholder="allocated" {...lock} {...invalid} value={row.hostPort} onInput={(e) => setPort(i, { hostPort: e.currentTarget.value })} />
              </div>
              <div class="field">
                <label for={`port-${row.key}-bind`}>Bind address</label>
                <select id={`port-${row.key}-bind`} {...lock} value={row.bindAddress} onChange={(e) => setPort(i, { bindAddress: e.currentTarget.value })}>
                  <option value="127.0.0.1">127.0.0.1 (this host only)</option>
                  <option value="0.0.0.0">0.0.0.0 (every interface)</option>
                </select>
              </div>
              <button type="button" {...lock} aria-label={`Remove port row ${i + 1}`} onClick={() => setPorts(ports.filter((_, j) => j !== i))}>
                Remove
              </button>
              {error ? <p class="field-error" id={errorId} role="alert">{error}</p> : null}
            </div>
          );
        })}
        {errors.ports ? <p class="field-error" id="create-service-ports-error" role="alert">{errors.ports}</p> : null}
        <div>
          <button type="button" {...lock} onClick={() => setPorts([...ports, emptyPort()])}>Add port</button>
        </div>
      </fieldset>
      <fieldset>
        <legend>Proxy</legend>
        <div class="field check" data-field="autoProxy">
          <input id="create-service-autoProxy" type="checkbox" {...lock} checked={autoProxy} onChange={(e) => setAutoProxy(e.currentTarget.checked)} />
          <label for="create-service-autoProxy">Make a proxy for it (NAME.BASE_DOMAIN, or the hostname below)</label>
        </div>
        {field("hostname", "Proxy hostname", "optional; giving one also makes the proxy")}
      </fieldset>
      <ErrorText error={other} />
      <div class="form-actions">
        <span title={writable ? undefined : READ_ONLY_REASON}>
          <button type="submit" class="primary" disabled={!writable || busy}>
            {busy ? "Creating…" : "Create service"}
          </button>
        </span>
      </div>
    </form>
  );
}
