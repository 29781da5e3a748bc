/** Changing an existing Docker service from its panel: the "Edit" form (updateService: image,
 * command, environment, memory and CPU limits, restart policy, labels, networks) and its ports
 * (addServicePort, updateServicePort, removeServicePort). Each change recreates the container, so
 * a running service restarts: every form says so and asks for confirmation first. GraphQL errors
 * are shown next to the field they name, the rest above the buttons. */
import { useState } from "preact/hooks";
import { ConfirmBox, SpecForm, type FieldSpec, type Values } from "../forms";
import { request } from "../client";
import { readFragment, type ResultOf, type VariablesOf } from "../graphql";
import { AddServicePort, RemoveServicePort, ServiceFields, UpdateDockerService, UpdateServicePort } from "../ops";
import { ActionButton, Badge } from "../ui";

type ServiceRow = ResultOf<typeof ServiceFields>;
type PortRow = ServiceRow["ports"][number];

const RESTARTS = "Saving recreates the container to apply the change: a running service restarts (a short interruption).";
const POLICIES = ["no", "always", "unless-stopped", "on-failure"];

/** An argument as a shell would need it written (the command is stored split). */
export const shellQuote = (arg: string) => (/^[\w@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replace(/'/g, `'"'"'`)}'`);

const SERVICE_SPECS = (s: ServiceRow): FieldSpec[] => [
  { name: "image", label: "Image", kind: "text", help: "present on the Docker host (proxyd does not pull)" },
  { name: "command", label: "Command", kind: "text", help: "split like a shell would" },
  {
    name: "environment",
    label: "Environment",
    kind: "json",
    help: `a JSON object of strings; it replaces every variable (values are never shown${
      s.environmentKeys.length ? `; now set: ${s.environmentKeys.join(", ")}` : ""
    }). Leave blank to keep them.`,
  },
  { name: "memoryLimit", label: "Memory limit", kind: "text", help: "64m, 1g or bytes" },
  { name: "cpuLimit", label: "CPU limit", kind: "float", help: "CPUs, e.g. 0.5" },
  { name: "restartPolicy", label: "Restart policy", kind: "select", options: POLICIES },
  { name: "labels", label: "Labels", kind: "json", help: "a JSON object of strings; it replaces the labels" },
  { name: "networks", label: "Networks", kind: "list" },
];

/** What the mutations answer: the service with its notice ("... was recreated ... restarted."). */
export type Changed = (service: ServiceRow) => void;

export function EditServiceForm(props: { service: ServiceRow; onDone: Changed; onCancel: () => void }) {
  const s = props.service;
  const initial: Values = {
    image: s.image,
    command: s.command ? s.command.map(shellQuote).join(" ") : null,
    environment: null, // write-only
    memoryLimit: s.memoryLimit,
    cpuLimit: s.cpuLimit,
    restartPolicy: s.restartPolicy,
    labels: s.labels && Object.keys(s.labels as object).length ? s.labels : null,
    networks: s.networks,
  };
  return (
    <div class="card nested" role="region" aria-label={`Edit ${s.name}`}>
      <h3>Edit {s.name}</h3>
      <p class="muted">{RESTARTS}</p>
      <SpecForm
        id="edit-service"
        specs={SERVICE_SPECS(s)}
        initial={initial}
        mode="edit"
        submitLabel="Save and recreate"
        confirm={{ title: `Recreate ${s.name}?`, text: RESTARTS, action: "Save and restart" }}
        onSubmit={async (values) => {
          const input = { ...values };
          if (typeof input.command === "string") input.command = [input.command]; // proxyd splits it
          const variables = { name: s.name, input: input as VariablesOf<typeof UpdateDockerService>["input"] };
          return readFragment(ServiceFields, (await request(UpdateDockerService, variables)).updateService);
        }}
        onDone={(result) => props.onDone(result as ServiceRow)}
      >
        <button type="button" onClick={props.onCancel}>Close</button>
      </SpecForm>
    </div>
  );
}

const PORT_SPECS: FieldSpec[] = [
  { name: "name", label: "Port name", kind: "text", help: "optional: http for the first port, portN after", createOnly: true },
  { name: "containerPort", label: "Container port", kind: "number", required: true },
  { name: "hostPort", label: "Host port", kind: "number", help: "allocated from the port range when blank" },
  { name: "bindAddress", label: "Bind address", kind: "select", options: ["127.0.0.1", "0.0.0.0"], help: "127.0.0.1: this host only (default); 0.0.0.0: every interface" },
  { name: "protocol", label: "Protocol", kind: "select", options: ["tcp", "udp"] },
  { name: "token", label: "Access token", kind: "password", help: "optional, 16+ characters: proxyd publishes the port and requires Authorization: Bearer <token>" },
  { name: "description", label: "Description", kind: "text" },
];

/** "port 80 is restricted ...": the host port field when that is the port given. */
function portField(message: string, values: Values): string | null {
  const port = /\bport (\d+)\b/.exec(message)?.[1];
  if (port === undefined) return null;
  return Number(port) === values.hostPort ? "hostPort" : Number(port) === values.containerPort ? "containerPort" : null;
}

export function AddPortForm(props: { service: ServiceRow; onDone: Changed; onCancel: () => void }) {
  const name = props.service.name;
  return (
    <div class="card nested" role="region" aria-label={`Add a port to ${name}`}>
      <h4>Add a port</h4>
      <SpecForm
        id="add-service-port"
        specs={PORT_SPECS}
        initial={{}}
        mode="create"
        submitLabel="Add port"
        fieldOf={portField}
        confirm={{ title: `Add the port and recreate ${name}?`, text: RESTARTS, action: "Add and restart" }}
        onSubmit={async (values) => readFragment(ServiceFields, (await request(AddServicePort, { name, input: values as VariablesOf<typeof AddServicePort>["input"] })).addServicePort)}
        onDone={(result) => props.onDone(result as ServiceRow)}
      >
        <button type="button" onClick={props.onCancel}>Close</button>
      </SpecForm>
    </div>
  );
}

export function EditPortForm(props: { service: ServiceRow; port: PortRow; onDone: Changed; onCancel: () => void }) {
  const { service, port } = props;
  const specs: FieldSpec[] = [
    ...PORT_SPECS,
    ...(port.requireToken ? [{ name: "removeToken", label: "Remove the access token (Docker publishes the port again)", kind: "bool" as const }] : []),
  ];
  return (
    <div class="card nested" role="region" aria-label={`Edit port ${port.name}`}>
      <h4>Edit port {port.name}</h4>
      <SpecForm
        id="edit-service-port"
        specs={specs}
        initial={{ ...port, removeToken: false }}
        mode="edit"
        submitLabel="Save port"
        fieldOf={portField}
        confirm={{ title: `Change port ${port.name} and recreate ${service.name}?`, text: RESTARTS, action: "Save and restart" }}
        onSubmit={async (values) =>
          readFragment(ServiceFields, (await request(UpdateServicePort, { name: service.name, portName: port.name, input: values as VariablesOf<typeof UpdateServicePort>["input"] })).updateServicePort)
        }
        onDone={(result) => props.onDone(result as ServiceRow)}
      >
        <button type="button" onClick={props.onCancel}>Close</button>
      </SpecForm>
    </div>
  );
}

/** The ports table with add, edit and remove (each confirmed: the container restarts). */
export function PortsSection({ service, onDone }: { service: ServiceRow; onDone: Changed }) {
  const [adding, setAdding] = useState(false);
  const [editing, setEditing] = useState<string | null>(null);
  const [removing, setRemoving] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const editPort = service.ports.find((p) => p.name === editing);

  async function remove(portName: string) {
    setBusy(true);
    setError(null);
    try {
      const result = readFragment(ServiceFields, (await request(RemoveServicePort, { name: service.name, portName })).removeServicePort);
      setRemoving(null);
      onDone(result);
    } catch (err) {
      setError((err as Error).message);
    } finally {
      setBusy(false);
    }
  }

  return (
    <div class="service-ports">
      {service.ports.length ? (
        <table aria-label={`Ports of ${service.name}`}>
          <thead>
            <tr>
              <th scope="col">Name</th><th scope="col">Container</th><th scope="col">Host</th>
              <th scope="col">Bind</th><th scope="col">Published by</th><th scope="col">Actions</th>
            </tr>
          </thead>
          <tbody>
            {service.ports.map((p) => (
              <tr key={p.name} data-port={p.name}>
                <td>{p.name}</td>
                <td>{p.containerPort}/{p.protocol}</td>
                <td>{p.hostPort ?? "—"}</td>
                <td>{p.bindAddress}</td>
                <td>{p.publishedBy}{p.requireToken ? <> <Badge tone="info">token</Badge></> : null}</td>
                <td>
                  <ActionButton aria-label={`Edit port ${p.name}`} onClick={() => (setAdding(false), setRemoving(null), setEditing(p.name))}>
                    Edit
                  </ActionButton>{" "}
                  <ActionButton class="danger" aria-label={`Remove port ${p.name}`} onClick={() => (setEditing(null), setError(null), setRemoving(p.name))}>
                    Remove
                  </ActionButton>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      ) : (
        <p class="muted">No ports.</p>
      )}
      {removing ? (
        <ConfirmBox
          id="remove-port-confirm"
          title={`Remove port ${removing} of ${service.name}?`}
          text={`Its host port is released. ${RESTARTS.replace("Saving", "Removing it")}`}
          action={busy ? "Removing…" : `Remove ${removing} and restart`}
          busy={busy}
          error={error}
          onConfirm={() => void remove(removing)}
          onCancel={() => setRemoving(null)}
        />
      ) : null}
      {editPort ? (
        <EditPortForm
          key={editPort.name}
          service={service}
          port={editPort}
          onDone={(result) => (setEditing(null), onDone(result))}
          onCancel={() => setEditing(null)}
        />
      ) : null}
      {adding ? (
        <AddPortForm service={service} onDone={(result) => (setAdding(false), onDone(result))} onCancel={() => setAdding(false)} />
      ) : (
        <ActionButton onClick={() => (setEditing(null), setRemoving(null), setAdding(true))}>Add port</ActionButton>
      )}
    </div>
  );
}
