// Reads a process's memory and CPU from /proc, and the plugin's own time per call from its request log.
import { readFileSync, readlinkSync, realpathSync } from "node:fs";
import { fmt, summarize } from "./stats.js";
import { table } from "./report.js";

const CLOCK_TICKS_PER_SECOND = 100;

/**
 * The pid of the node process behind `pid`: spawnIn's nsenter execs into it, so usually `pid` itself.
 * Told by its executable, the node running this benchmark: Node 24 names its main thread "MainThread",
 * so /proc/PID/comm no longer says "node".
 */
export function nodePid(pid: number): number {
  const exe = readlinkSync(`/proc/${pid}/exe`);
  if (exe === realpathSync(process.execPath)) return pid;
  const children = readFileSync(`/proc/${pid}/task/${pid}/children`, "utf8").trim().split(/\s+/);
  const child = children.map(Number).find((c) => c > 0);
  if (child === undefined) throw new Error(`pid ${pid} (${exe}) is not ${process.execPath} and has no child`);
  return nodePid(child);
}

/** Peak and current resident memory in MiB (VmHWM, VmRSS). */
export function memoryMiB(pid: number): { peak: number; current: number } {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const kib = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(status)?.[1] ?? NaN);
  return { peak: kib("VmHWM") / 1024, current: kib("VmRSS") / 1024 };
}

/** CPU seconds used so far (utime + stime). */
export function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  // Fields after the command name, which is in parentheses and may contain spaces: state is field 3.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  const utime = Number(fields[11]);
  const stime = Number(fields[12]);
  return (utime + stime) / CLOCK_TICKS_PER_SECOND;
}

/** One request line of the plugin's log. */
export type RequestLine = { call: string; durationMs: number; status: number; time: number };

/** The plugin's request lines (`{"msg":"request",...}`) among its structured log lines. */
export function requestLines(logs: readonly Record<string, unknown>[]): RequestLine[] {
  return logs
    .filter((line) => line.msg === "request" && typeof line.durationMs === "number")
    .map((line) => ({
      call: String(line.call),
      durationMs: line.durationMs as number,
      status: Number(line.status),
      time: Date.parse(String(line.time)),
    }));
}

/** The order in which a container's life calls the plugin, for a readable table. */
const CALL_ORDER = [
  "IpamDriver.RequestAddress",
  "NetworkDriver.CreateEndpoint",
  "NetworkDriver.Join",
  "NetworkDriver.EndpointOperInfo",
  "NetworkDriver.Leave",
  "NetworkDriver.DeleteEndpoint",
  "IpamDriver.ReleaseAddress",
];

/** A table of the plugin's time per call: count, p50, p90, p99, max (ms). */
export function perCallTable(lines: readonly RequestLine[]): string {
  const byCall = new Map<string, number[]>();
  for (const line of lines) byCall.set(line.call, [...(byCall.get(line.call) ?? []), line.durationMs]);
  const rank = (call: string) => {
    const index = CALL_ORDER.indexOf(call);
    return index < 0 ? CALL_ORDER.length : index;
  };
  const calls = [...byCall.keys()].sort((a, b) => rank(a) - rank(b) || a.localeCompare(b));
  return table(
    ["plugin call", "n", "p50 ms", "p90 ms", "p99 ms", "max ms"],
    calls.map((call) => {
      const s = summarize(byCall.get(call)!);
      return [`\`${call}\``, String(s.n), fmt(s.median), fmt(s.p90), fmt(s.p99), fmt(s.max)];
    }),
  );
}
