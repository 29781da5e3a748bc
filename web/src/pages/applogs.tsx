/** Application logs (scope admin): the answering process's recent ring buffer, followed live by
 * polling every two seconds (there is no subscription for it yet). */
import { useEffect, useState } from "preact/hooks";
import { request } from "../client";
import type { ResultOf } from "../graphql";
import { ApplicationLogsQuery } from "../ops";
import { Badge, DataTable, ErrorText, formatTime } from "../ui";

type Line = ResultOf<typeof ApplicationLogsQuery>["applicationLogs"][number];

export function AppLogsPage() {
  const [level, setLevel] = useState("");
  const [lines, setLines] = useState<Line[]>([]);
  const [error, setError] = useState<string | null>(null);
  const [follow, setFollow] = useState(true);
  useEffect(() => {
    let alive = true;
    const load = () =>
      request(ApplicationLogsQuery, { level: level || null, limit: 200 }).then(
        (d) => alive && (setLines(d.applicationLogs), setError(null)),
        (e: Error) => alive && setError(e.message),
      );
    void load();
    const timer = follow ? setInterval(load, 2000) : undefined;
    return () => {
      alive = false;
      clearInterval(timer);
    };
  }, [level, follow]);
  return (
    <section>
      <h1>Application logs</h1>
      <ErrorText error={error} />
      <DataTable
        caption="Application log lines"
        rows={lines}
        rowKey={(l) => `${l.timestamp}-${l.component}-${l.message}`}
        initialSort="time"
        initialDir={-1}
        filters={
          <>
            <label for="applog-level">Level</label>
            <select id="applog-level" value={level} onChange={(e) => setLevel(e.currentTarget.value)}>
              <option value="">all</option>
              {["DEBUG", "INFO", "WARNING", "ERROR"].map((l) => <option key={l}>{l}</option>)}
            </select>
            <label class="check-inline">
              <input type="checkbox" checked={follow} onChange={(e) => setFollow(e.currentTarget.checked)} /> Follow
            </label>
          </>
        }
        columns={[
          { key: "time", label: "Time", value: (l) => l.timestamp, render: (l) => formatTime(l.timestamp) },
          { key: "level", label: "Level", value: (l) => l.level, render: (l) => <Badge tone={l.level === "ERROR" ? "bad" : l.level === "WARNING" ? "warn" : "info"}>{l.level}</Badge> },
          { key: "component", label: "Component", value: (l) => l.component },
          { key: "message", label: "Message", value: (l) => l.message },
        ]}
      />
    </section>
  );
}
