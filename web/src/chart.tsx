/** A uPlot time-series chart (canvas; styles come from uPlot's bundled CSS). */
import { useEffect, useRef } from "preact/hooks";
import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";

export interface SeriesSpec {
  label: string;
  color: string;
}

export function TimeChart(props: { title: string; series: SeriesSpec[]; data: [number[], ...number[][]]; height?: number }) {
  const box = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);
  useEffect(() => {
    if (!box.current) return;
    const width = Math.max(280, box.current.clientWidth || 600);
    plot.current = new uPlot(
      {
        width,
        height: props.height ?? 180,
        series: [{}, ...props.series.map((s) => ({ label: s.label, stroke: s.color, width: 2 }))],
        axes: [{}, { size: 50 }],
        scales: { x: { time: true } },
        legend: { live: false },
      },
      props.data as uPlot.AlignedData,
      box.current,
    );
    return () => {
      plot.current?.destroy();
      plot.current = null;
    };
  }, [props.series.length]);
  useEffect(() => {
    plot.current?.setData(props.data as uPlot.AlignedData);
  }, [props.data]);
  return (
    <figure class="chart">
      <figcaption>{props.title}</figcaption>
      <div ref={box} role="img" aria-label={props.title} />
    </figure>
  );
}

/** "YYYYMMDD:HH" (UTC) -> epoch seconds. */
export function hourToEpoch(hour: string): number {
  const m = /^(\d{4})(\d{2})(\d{2}):(\d{2})$/.exec(hour);
  return m ? Date.UTC(+m[1], +m[2] - 1, +m[3], +m[4]) / 1000 : 0;
}

export function hourlySeries(hourly: { hour: string; requests: number; errors: number }[]): [number[], number[], number[]] {
  const rows = [...hourly].sort((a, b) => a.hour.localeCompare(b.hour));
  return [rows.map((r) => hourToEpoch(r.hour)), rows.map((r) => r.requests), rows.map((r) => r.errors)];
}
