/**
 * Reads a V8 .cpuprofile (what `node --cpu-prof` writes) without an external tool: self time (samples
 * whose top frame is the function), total time (samples with the function anywhere on the stack, each
 * sample counted once per function even under recursion) and self time by file.
 */
export interface CpuProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number; columnNumber: number };
  children?: number[];
}

export interface CpuProfile {
  nodes: CpuProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

/**
 * The stages of the write path (README: authenticate → authorise → validate → exclude → pseudonymise →
 * persist → audit) by the files that do their work. A sample counts for the stage of its innermost frame
 * in one of these files (a better-sqlite3 call from the store is persist; a FHIRPath evaluation is the
 * stage's that asked for it), or for `other`. The first matching prefix wins. Samples of the server's
 * start-up (anything under `createServer` or the CLI's entry) count as `start-up`, whatever they run.
 */
const STAGES: [stage: string, prefixes: string[]][] = [
  ['journal (intent, durable)', ['src/ingest/journal.ts']],
  ['audit', ['src/audit/', 'src/fhir/audit.ts']],
  ['authenticate + authorise', ['src/auth/', 'src/ingest/authorise.ts', 'jose/']],
  [
    'validate',
    [
      'src/validation/',
      'src/ingest/validate.ts',
      'src/ingest/check.ts',
      'src/ingest/questionnaire-stage.ts',
      'src/ingest/scope.ts',
      'src/research/approvalCheck.ts',
    ],
  ],
  ['references', ['src/ingest/references.ts', 'src/fhir/reference.ts', 'src/store/storedReferences.ts']],
  ['exclude (reservations, person lock)', ['src/ingest/exclude.ts', 'src/consent/']],
  ['pseudonymise', ['src/ingest/pseudonymise.ts', 'src/identity/']],
  ['persist (store)', ['src/ingest/persist.ts', 'src/store/']],
  ['follow-up', ['src/followup/']],
  [
    'HTTP (parse, guard, answer)',
    ['src/fhir/', 'express/', 'body-parser/', 'raw-body/', 'node:_http', 'node:net'],
  ],
];

const START_UP = new Set(['createServer', 'runCli']);

function stageOf(file: string): string | undefined {
  return STAGES.find(([, prefixes]) => prefixes.some((prefix) => file.startsWith(prefix)))?.[0];
}

/** V8's pseudo-frames: idle time and the collector are shown as such, not as functions. */
const PSEUDO = new Set(['(root)', '(program)', '(idle)', '(garbage collector)']);

function where(url: string, root: string): string {
  const file = url.replace(/^file:\/\//, '');
  // node_modules is a link to a shared install: a package is named from node_modules/ on.
  const inPackage = file.lastIndexOf('node_modules/');
  if (inPackage >= 0) return file.slice(inPackage + 'node_modules/'.length);
  return file.startsWith(root) ? file.slice(root.length + 1) : file;
}

/** `responses`: how many responses the profile covers, for the time per response by stage. */
export function summariseCpuProfile(
  profile: CpuProfile,
  options: { top: number; root: string; responses: number },
): string {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const node of profile.nodes) {
    for (const child of node.children ?? []) parent.set(child, node.id);
  }
  const key = (n: CpuProfileNode): string => {
    const { functionName, url, lineNumber } = n.callFrame;
    if (PSEUDO.has(functionName)) return functionName;
    return `${functionName || '(anonymous)'} ${where(url, options.root) || '(native)'}:${lineNumber + 1}`;
  };
  const self = new Map<string, number>();
  const total = new Map<string, number>();
  const byFile = new Map<string, number>();
  const byStage = new Map<string, number>();
  let all = 0;
  let idle = 0;
  profile.samples.forEach((id, i) => {
    // timeDeltas[i] is the time before sample i; the time a sample stands for is the next delta.
    const us = profile.timeDeltas[i + 1] ?? 0;
    const node = byId.get(id);
    if (!node) return;
    all += us;
    if (node.callFrame.functionName === '(idle)') {
      idle += us;
      return;
    }
    const k = key(node);
    self.set(k, (self.get(k) ?? 0) + us);
    const file = PSEUDO.has(node.callFrame.functionName)
      ? node.callFrame.functionName
      : where(node.callFrame.url, options.root) || '(native)';
    byFile.set(file, (byFile.get(file) ?? 0) + us);
    const seen = new Set<string>();
    let stage: string | undefined;
    let startUp = false;
    for (let n: CpuProfileNode | undefined = node; n; n = byId.get(parent.get(n.id) ?? -1)) {
      stage ??= stageOf(where(n.callFrame.url, options.root));
      startUp ||= START_UP.has(n.callFrame.functionName);
      const nk = key(n);
      if (nk === '(root)' || seen.has(nk)) continue;
      seen.add(nk);
      total.set(nk, (total.get(nk) ?? 0) + us);
    }
    const s = startUp
      ? 'start-up'
      : (stage ?? (PSEUDO.has(node.callFrame.functionName) ? node.callFrame.functionName : 'other'));
    byStage.set(s, (byStage.get(s) ?? 0) + us);
  });
  const busy = all - idle;
  const pct = (us: number): string => `${((100 * us) / busy).toFixed(1).padStart(5)} %`;
  const ms = (us: number): string => `${(us / 1000).toFixed(0).padStart(7)} ms`;
  const table = (title: string, m: Map<string, number>): string =>
    [
      title,
      ...[...m.entries()]
        .sort((a, b) => b[1] - a[1])
        .slice(0, options.top)
        .map(([k, us]) => `  ${ms(us)} ${pct(us)}  ${k}`),
    ].join('\n');
  const perResponse = [...byStage.entries()]
    .sort((a, b) => b[1] - a[1])
    .map(
      ([stage, us]) => `  ${(us / 1000 / options.responses).toFixed(3).padStart(7)} ms ${pct(us)}  ${stage}`,
    );
  return [
    `${(all / 1e6).toFixed(1)} s profiled, ${(busy / 1e6).toFixed(1)} s busy (percentages are of busy time)`,
    [
      `Busy time per response by stage (${options.responses} responses, enrolment and warm-up included; ` +
        'a synchronous fsync counts as busy):',
      ...perResponse,
    ].join('\n'),
    table('Top self time:', self),
    table('Top total time:', total),
    table('Self time by file:', byFile),
  ].join('\n\n');
}
