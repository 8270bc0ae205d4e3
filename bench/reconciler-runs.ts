// bench/reconciler.ts several times, each in its own process on its own control plane, with the p99 of each run
// and the medians over the runs. On the 2-core development machine the time a storm takes varies by a third
// from run to run, more than the differences one wants to see, so decisions rest on medians of several runs.
//
//   npm run bench:reconciler:runs -- [--runs 5] [--sessions 200] [--datastore etcd,kine]
//
// With several datastores, each gets its runs (alternating, so a machine that slows down over time slows both)
// and its own medians: kine over SQLite is what a single-server K3s runs.
import { spawn } from 'node:child_process';
import { parseArgs } from 'node:util';
import { percentile } from './support.ts';

const { values } = parseArgs({
  options: { runs: { type: 'string', default: '5' }, sessions: { type: 'string', default: '200' }, datastore: { type: 'string', default: 'etcd' } },
});
const RUNS = Number(values.runs);
const N = values.sessions;
const DATASTORES = values.datastore.split(',').map((d) => d.trim());

/** The p99 (ms) a line of bench/reconciler.ts reports for a storm, by the line's label. */
const LINES = {
  bare: /baseline bare pods: all Running after [\d.]+ s; create→Running p50 [\d.]+ ms {2}p99 ([\d.]+) ms/,
  direct: /same objects written directly, no reconciler: all Running after [\d.]+ s; create→Running p50 [\d.]+ ms {2}p99 ([\d.]+) ms/,
  sessions: /sessions: +all Running after [\d.]+ s; create→Running p50 [\d.]+ ms {2}p99 ([\d.]+) ms/,
};
type Run = Record<keyof typeof LINES, number>;

function runOnce(datastore: string): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--expose-gc', 'bench/reconciler.ts', '--sessions', N, '--large', N], {
      env: { ...process.env, NODE_ENV: 'production', VDI_DATASTORE: datastore },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (out += chunk));
    child.on('error', reject);
    child.on('close', (code) => {
      const run: Partial<Run> = {};
      for (const [k, re] of Object.entries(LINES)) {
        const m = re.exec(out);
        if (m) run[k as keyof Run] = Number(m[1]);
      }
      if (code !== 0 || Object.keys(run).length !== Object.keys(LINES).length) {
        reject(new Error(`bench/reconciler.ts exited with ${code}; its output:\n${out}`));
      } else resolve(run as Run);
    });
  });
}

const median = (xs: number[]) =>
  percentile(
    [...xs].sort((a, b) => a - b),
    50,
  );
const s = (ms: number) => `${(ms / 1000).toFixed(2)} s`;

const runs = new Map<string, Run[]>(DATASTORES.map((d) => [d, []]));
for (let i = 1; i <= RUNS; i++) {
  for (const datastore of DATASTORES) {
    const r = await runOnce(datastore);
    runs.get(datastore)!.push(r);
    console.log(
      `run ${i}/${RUNS} on ${datastore}: p99 bare pods ${s(r.bare)}, same objects written directly ${s(r.direct)}, sessions ${s(r.sessions)}; ` +
        `sessions − direct ${s(r.sessions - r.direct)}, sessions − bare ${s(r.sessions - r.bare)}`,
    );
  }
}
const range = (xs: number[]) => `${s(Math.min(...xs))}–${s(Math.max(...xs))}`;
for (const [datastore, rs] of runs) {
  const col = (f: (r: Run) => number) => rs.map(f);
  console.log(`reconciler storms on ${datastore}: ${N} sessions, ${RUNS} runs; p99 median (range)`);
  console.log(`  bare pods:                     ${s(median(col((r) => r.bare)))} (${range(col((r) => r.bare))})`);
  console.log(`  same objects written directly: ${s(median(col((r) => r.direct)))} (${range(col((r) => r.direct))})`);
  console.log(`  sessions (the reconciler):     ${s(median(col((r) => r.sessions)))} (${range(col((r) => r.sessions))})`);
  console.log(`  added beyond the direct writes: ${s(median(col((r) => r.sessions - r.direct)))} (${range(col((r) => r.sessions - r.direct))})`);
  console.log(`  added beyond bare pods:         ${s(median(col((r) => r.sessions - r.bare)))} (${range(col((r) => r.sessions - r.bare))})`);
}
