import { describe, it, expect } from 'vitest';
import { buildRun, applyResult, runUsage, finalOutput, formatMs, formatCost } from '../src/runState';
import { ev } from './fakeEventSource';
import type { ProgressEvent } from '../src/types';

const step1 = { step: 1, agent: 'demo-codex', task: 'implement', status: 'ok', duration_ms: 1200, usage: { input_tokens: 100, output_tokens: 20, cost_usd: 0.5 }, files: ['a.py'], findings: [], output: 'implemented' };
const step2 = { step: 2, agent: 'demo-gemini', task: 'review', status: 'failed', message: 'boom', duration_ms: 300, usage: { input_tokens: 50, output_tokens: 5, cost_usd: null }, findings: [{ severity: 'high', file: 'a.py', line: 3, text: 'bad' }] };

const events = [
  ev(1, 'run_started', { iteration: 0, text: 'Build it', agent: '', task_kind: '' }),
  ev(2, 'iteration_started', { agent: '', task_kind: '' }),
  ev(3, 'step_started'),
  ev(4, 'agent_event', { text: 'tool_call: shell ls' }),
  ev(5, 'agent_event', { text: 'file_change: a.py' }),
  ev(6, 'step_finished', { elapsed_ms: 1200, step: step1 }),
  ev(7, 'step_started', { step_index: 1, agent: 'demo-gemini', task_kind: 'review' }),
  ev(8, 'step_notice', { step_index: 1, agent: 'demo-gemini', task_kind: 'review', text: 'retry 1/2 in 1s' }),
] as ProgressEvent[];

describe('buildRun', () => {
  it('shows each step live: status, streamed lines by kind, elapsed', () => {
    const run = buildRun('r1', events);
    expect(run.state).toBe('running');
    expect(run.task).toBe('Build it');
    expect(run.lastSeq).toBe(8);
    expect(run.iterations).toHaveLength(1);
    const [a, b] = run.iterations[0].steps;
    expect(a).toMatchObject({ agent: 'demo-codex', task: 'implement', status: 'ok', elapsedMs: 1200 });
    expect(a.lines.map((l) => l.kind)).toEqual(['tool', 'file']);
    expect(b).toMatchObject({ agent: 'demo-gemini', status: 'running', elapsedMs: null });
    expect(b.lines[0]).toMatchObject({ kind: 'notice', text: 'retry 1/2 in 1s' });
    expect(run.log).toHaveLength(8);
    expect(run.log[3]).toContain('#4 agent_event it1 1/2 demo-codex·implement: tool_call: shell ls');
  });

  it('collects findings per iteration and marks failed steps', () => {
    const run = buildRun('r1', [...events, ev(9, 'step_finished', { step_index: 1, agent: 'demo-gemini', ok: false, step: step2 }) as ProgressEvent]);
    const it1 = run.iterations[0];
    expect(it1.steps[1].status).toBe('failed');
    expect(it1.findings).toEqual(step2.findings);
  });

  it('keeps parallel steps (same index, other agent) apart', () => {
    const run = buildRun('r1', [
      ev(1, 'step_started', { step_index: 1, agent: 'demo-gemini' }),
      ev(2, 'step_started', { step_index: 1, agent: 'demo-copilot' }),
    ] as ProgressEvent[]);
    expect(run.iterations[0].steps.map((s) => s.agent)).toEqual(['demo-gemini', 'demo-copilot']);
  });

  it('takes the final document of run_finished as the truth', () => {
    const result = {
      status: 'max_iterations',
      task: 'Build it',
      usage: { input_tokens: 150, output_tokens: 25, cost_usd: 0.5 },
      iterations: [{ iteration: 1, open_findings: 1, steps: [step1, step2] }],
      files: ['a.py'],
    };
    const run = buildRun('r1', [...events, ev(9, 'run_finished', { result }) as ProgressEvent]);
    expect(run.state).toBe('finished');
    expect(run.result?.status).toBe('max_iterations');
    expect(run.iterations[0].openFindings).toBe(1);
    expect(run.iterations[0].steps[1].status).toBe('failed');
    expect(run.iterations[0].findings).toHaveLength(1);
    expect(runUsage(run)).toEqual(result.usage);
    expect(finalOutput(run)).toBe('implemented');
  });

  it('sums step usage while running', () => {
    const run = buildRun('r1', events);
    expect(runUsage(run)).toMatchObject({ input_tokens: 100, output_tokens: 20, cost_usd: 0.5 });
  });

  it('applyResult adds steps it had not seen (a run loaded after the fact)', () => {
    const run = buildRun('r2', []);
    applyResult(run, { iterations: [{ iteration: 2, open_findings: 0, steps: [step1] }] });
    expect(run.iterations[0]).toMatchObject({ iteration: 2, openFindings: 0 });
    expect(run.iterations[0].steps[0]).toMatchObject({ agent: 'demo-codex', status: 'ok' });
  });
});

describe('formatting', () => {
  it('formats durations and costs', () => {
    expect(formatMs(12)).toBe('12 ms');
    expect(formatMs(1500)).toBe('1.5 s');
    expect(formatMs(125000)).toBe('2m 5s');
    expect(formatMs(null)).toBe('');
    expect(formatCost(null)).toBe('—');
    expect(formatCost(0.01234)).toBe('$0.0123');
  });
});
