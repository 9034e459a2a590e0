// Builds what the page shows of a run from its progress events (a pure
// reduction: the same events give the same view, after a reload too).

import type { Finding, ProgressEvent, RunResult, StepJson, Usage } from './types';

export type StepStatus = 'pending' | 'running' | 'ok' | 'failed';

export interface StreamLine {
  seq: number;
  kind: 'tool' | 'file' | 'notice' | 'error' | 'text';
  text: string;
}

export interface StepView {
  key: string;
  iteration: number;
  index: number;
  agent: string;
  task: string;
  status: StepStatus;
  /** Client time the step was seen starting (for the live elapsed time). */
  startedAt: number;
  elapsedMs: number | null;
  lines: StreamLine[];
  step: StepJson | null;
}

export interface IterationView {
  iteration: number;
  steps: StepView[];
  findings: Finding[];
  openFindings: number | null;
}

export interface RunView {
  runId: string;
  task: string;
  state: 'idle' | 'running' | 'finished';
  iterations: IterationView[];
  result: RunResult | null;
  lastSeq: number;
  log: string[];
}

export function emptyRun(runId = ''): RunView {
  return { runId, task: '', state: runId ? 'running' : 'idle', iterations: [], result: null, lastSeq: 0, log: [] };
}

function lineKind(text: string): StreamLine['kind'] {
  if (text.startsWith('tool_call:')) return 'tool';
  if (text.startsWith('file_change:')) return 'file';
  if (text.startsWith('error:')) return 'error';
  if (text.startsWith('rate_limit:')) return 'notice';
  return 'text';
}

function iterationOf(run: RunView, n: number): IterationView {
  let it = run.iterations.find((i) => i.iteration === n);
  if (!it) {
    it = { iteration: n, steps: [], findings: [], openFindings: null };
    run.iterations.push(it);
    run.iterations.sort((a, b) => a.iteration - b.iteration);
  }
  return it;
}

function stepOf(run: RunView, ev: ProgressEvent): StepView {
  const it = iterationOf(run, ev.iteration ?? 1);
  const index = ev.step_index ?? 0;
  const agent = ev.agent ?? '';
  // Parallel steps share an index: told apart by agent.
  let s = it.steps.find((x) => x.index === index && (x.agent === agent || !agent));
  if (!s) {
    s = {
      key: `${it.iteration}.${index}.${agent}`,
      iteration: it.iteration,
      index,
      agent,
      task: ev.task_kind ?? '',
      status: 'pending',
      startedAt: Date.now(),
      elapsedMs: null,
      lines: [],
      step: null,
    };
    it.steps.push(s);
    it.steps.sort((a, b) => a.index - b.index);
  }
  return s;
}

function fmtLog(ev: ProgressEvent): string {
  const where = ev.iteration ? ` it${ev.iteration}` + (ev.step_count ? ` ${(ev.step_index ?? 0) + 1}/${ev.step_count}` : '') : '';
  const who = ev.agent ? ` ${ev.agent}${ev.task_kind ? '·' + ev.task_kind : ''}` : '';
  return `#${ev.seq} ${ev.kind}${where}${who}${ev.text ? ': ' + ev.text : ''}`;
}

/** Applies one event (in seq order) to the view, in place. */
export function applyEvent(run: RunView, ev: ProgressEvent): RunView {
  if (!run.runId) run.runId = ev.run_id;
  run.lastSeq = Math.max(run.lastSeq, ev.seq);
  run.log.push(fmtLog(ev));
  switch (ev.kind) {
    case 'run_started':
      run.state = 'running';
      if (ev.text && !run.task) run.task = ev.text;
      break;
    case 'iteration_started':
      iterationOf(run, ev.iteration ?? 1);
      break;
    case 'step_started': {
      const s = stepOf(run, ev);
      s.status = 'running';
      s.startedAt = Date.now();
      break;
    }
    case 'agent_event': {
      const s = stepOf(run, ev);
      if (s.status === 'pending') s.status = 'running';
      s.lines.push({ seq: ev.seq, kind: lineKind(ev.text ?? ''), text: ev.text ?? '' });
      break;
    }
    case 'step_notice': {
      const s = stepOf(run, ev);
      s.lines.push({ seq: ev.seq, kind: 'notice', text: ev.text ?? '' });
      break;
    }
    case 'step_finished': {
      const s = stepOf(run, ev);
      const ok = ev.step?.status ? ev.step.status === 'ok' : ev.ok !== false;
      s.status = ok ? 'ok' : 'failed';
      s.elapsedMs = ev.elapsed_ms ?? ev.step?.duration_ms ?? Date.now() - s.startedAt;
      if (ev.step) {
        s.step = ev.step;
        const it = iterationOf(run, s.iteration);
        for (const f of ev.step.findings ?? []) it.findings.push(f);
      }
      break;
    }
    case 'run_finished':
      run.state = 'finished';
      if (ev.result) applyResult(run, ev.result);
      break;
  }
  return run;
}

/** Fills the view from the final `run --json` document (authoritative). */
export function applyResult(run: RunView, result: RunResult): RunView {
  run.result = result;
  run.state = 'finished';
  if (result.task && !run.task) run.task = result.task;
  for (const itj of result.iterations ?? []) {
    const it = iterationOf(run, itj.iteration);
    it.openFindings = itj.open_findings ?? null;
    it.findings = [];
    itj.steps.forEach((sj, i) => {
      const index = (sj.step ?? i + 1) - 1;
      let s = it.steps.find((x) => x.index === index && x.agent === (sj.agent ?? x.agent));
      if (!s) {
        s = stepOf(run, { seq: 0, kind: 'step_finished', run_id: run.runId, iteration: it.iteration, step_index: index, agent: sj.agent, task_kind: sj.task });
      }
      s.step = sj;
      s.status = sj.status === 'ok' ? 'ok' : 'failed';
      s.elapsedMs = sj.duration_ms ?? s.elapsedMs;
      for (const f of sj.findings ?? []) it.findings.push(f);
    });
  }
  return run;
}

export function buildRun(runId: string, events: ProgressEvent[]): RunView {
  const run = emptyRun(runId);
  for (const ev of events) applyEvent(run, ev);
  return run;
}

export function addUsage(a: Usage, b: Usage | undefined): Usage {
  if (!b) return a;
  const cost = a.cost_usd == null && b.cost_usd == null ? null : (a.cost_usd ?? 0) + (b.cost_usd ?? 0);
  return {
    input_tokens: (a.input_tokens ?? 0) + (b.input_tokens ?? 0),
    output_tokens: (a.output_tokens ?? 0) + (b.output_tokens ?? 0),
    cached_tokens: (a.cached_tokens ?? 0) + (b.cached_tokens ?? 0),
    cost_usd: cost,
  };
}

/** The run's usage: the result's, else the sum of the finished steps'. */
export function runUsage(run: RunView): Usage {
  if (run.result?.usage) return run.result.usage;
  let u: Usage = { input_tokens: 0, output_tokens: 0, cached_tokens: 0, cost_usd: null };
  for (const it of run.iterations) for (const s of it.steps) u = addUsage(u, s.step?.usage);
  return u;
}

export function formatMs(ms: number | null | undefined): string {
  if (ms == null || !Number.isFinite(ms)) return '';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(1)} s`;
  const m = Math.floor(s / 60);
  return `${m}m ${Math.round(s - m * 60)}s`;
}

export function formatCost(c: number | null | undefined): string {
  return c == null ? '—' : `$${c.toFixed(4)}`;
}

/** The final answer text: the last step with output. */
export function finalOutput(run: RunView): string {
  const steps = run.iterations.flatMap((i) => i.steps);
  for (let i = steps.length - 1; i >= 0; i--) {
    const out = steps[i].step?.output;
    if (out) return out;
  }
  return '';
}
