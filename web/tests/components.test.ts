import { describe, it, expect, vi, afterEach } from 'vitest';
import { mount, flushPromises } from '@vue/test-utils';
import TaskForm from '../src/components/TaskForm.vue';
import StepList from '../src/components/StepList.vue';
import AgentsPanel from '../src/components/AgentsPanel.vue';
import FileTree from '../src/components/FileTree.vue';
import SessionsPanel from '../src/components/SessionsPanel.vue';
import CodeEditor from '../src/components/CodeEditor.vue';
import { buildRun } from '../src/runState';
import { treeRows, languageOf } from '../src/tree';
import { ev } from './fakeEventSource';
import type { ProgressEvent } from '../src/types';

const workflows = [
  { name: 'default', description: 'impl and review', max_iterations: 3, steps: [{ agent: 'codex', task: 'implement' }, { agent: 'gemini', task: 'review' }] },
  { name: 'quick', max_iterations: 1, steps: [{ agent: 'codex', task: 'implement' }] },
];
const agents = [
  { name: 'codex', enabled: true, available: true, breaker: 'closed' },
  { name: 'claude', enabled: true, available: false, reason: 'claude: not on PATH', breaker: 'open' },
  { name: 'old', enabled: false },
];

afterEach(() => vi.unstubAllGlobals());

describe('TaskForm', () => {
  function mountForm() {
    return mount(TaskForm, { props: { workflows, agents, defaultWorkflow: 'default', busy: false, conversation: false } });
  }
  it('submits with Ctrl+Enter: task, workflow, iteration limit and agents per step', async () => {
    const w = mountForm();
    expect((w.get('[data-testid=iterations]').element as HTMLInputElement).value).toBe('3');
    await w.get('[data-testid=task-input]').setValue('Build a CLI');
    await w.get('[data-testid=iterations]').setValue('5');
    await w.get('[data-testid=step-agent-1]').setValue('codex');
    await w.get('[data-testid=task-input]').trigger('keydown', { key: 'Enter', ctrlKey: true });
    expect(w.emitted('submit')).toEqual([[{ task: 'Build a CLI', workflow: 'default', maxIterations: 5, agents: ['', 'codex'] }]]);
  });
  it('Cmd+Enter works too; plain Enter does not submit', async () => {
    const w = mountForm();
    await w.get('[data-testid=task-input]').setValue('x');
    await w.get('[data-testid=task-input]').trigger('keydown', { key: 'Enter' });
    expect(w.emitted('submit')).toBeUndefined();
    await w.get('[data-testid=task-input]').trigger('keydown', { key: 'Enter', metaKey: true });
    expect(w.emitted('submit')).toHaveLength(1);
  });
  it('refuses an iteration limit outside 1..10 and an empty task', async () => {
    const w = mountForm();
    await w.get('form').trigger('submit');
    expect(w.get('[data-testid=form-error]').text()).toMatch(/task/);
    await w.get('[data-testid=task-input]').setValue('x');
    await w.get('[data-testid=iterations]').setValue('11');
    await w.get('form').trigger('submit');
    expect(w.get('[data-testid=form-error]').text()).toMatch(/1 to 10/);
    expect(w.emitted('submit')).toBeUndefined();
  });
  it('lists a step per workflow step, disabled agents left out, unavailable ones greyed', async () => {
    const w = mountForm();
    const opts = w.get('[data-testid=step-agent-0]').findAll('option');
    expect(opts.map((o) => o.text())).toEqual(['codex (workflow\'s)', 'codex', 'claude (unavailable)']);
    expect(opts[2].attributes('disabled')).toBeDefined();
    await w.get('[data-testid=workflow-select]').setValue('quick');
    expect(w.findAll('[data-testid^=step-agent-]')).toHaveLength(1);
    expect((w.get('[data-testid=iterations]').element as HTMLInputElement).value).toBe('1');
  });
  it('emits the conversation toggle', async () => {
    const w = mountForm();
    await w.get('[data-testid=conversation-toggle] input').setValue(true);
    expect(w.emitted('conversation')).toEqual([[true]]);
  });
});

describe('StepList', () => {
  it('shows each step with status, streamed lines, usage and findings count', () => {
    const run = buildRun('r1', [
      ev(1, 'step_started'),
      ev(2, 'agent_event', { text: 'tool_call: shell pytest' }),
      ev(3, 'step_finished', { elapsed_ms: 2500, step: { status: 'ok', usage: { input_tokens: 10, output_tokens: 2, cost_usd: 0.25 }, findings: [{ text: 'a' }], files: ['x'] } }),
      ev(4, 'step_started', { step_index: 1, agent: 'gemini', task_kind: 'review' }),
    ] as ProgressEvent[]);
    const w = mount(StepList, { props: { run } });
    const steps = w.findAll('[data-testid=step]');
    expect(steps.map((s) => s.attributes('data-status'))).toEqual(['ok', 'running']);
    expect(steps[0].text()).toContain('tool_call: shell pytest');
    expect(steps[0].text()).toContain('2.5 s');
    expect(steps[0].text()).toContain('10 in / 2 out tokens');
    expect(steps[0].text()).toContain('$0.2500');
    expect(steps[0].text()).toContain('1 finding(s)');
    expect(steps[1].text()).toContain('gemini');
    w.unmount();
  });
});

describe('AgentsPanel', () => {
  it('shows availability and the breaker state', () => {
    const w = mount(AgentsPanel, { props: { agents, health: { status: 'degraded' } } });
    const rows = w.findAll('[data-testid=agent]');
    expect(rows[0].text()).toContain('available');
    expect(rows[1].text()).toContain('unavailable');
    expect(rows[1].text()).toContain('claude: not on PATH');
    expect(rows[1].get('[data-testid=breaker]').text()).toContain('open');
    expect(rows[1].get('[data-testid=breaker]').classes()).toContain('bad');
    expect(rows[2].text()).toContain('disabled');
    expect(w.text()).toContain('degraded');
  });
  it('reads the agents --json shape: status, detail and a breaker object', () => {
    const w = mount(AgentsPanel, {
      props: {
        agents: [
          { name: 'codex', enabled: true, status: 'available', detail: '', breaker: { state: 'half_open', open_until_ms: null, reason: '3 failures' } },
          { name: 'gemini', enabled: true, status: 'unavailable', detail: 'gemini: not on PATH', breaker: { state: 'closed' } },
        ],
        health: null,
      },
    });
    const rows = w.findAll('[data-testid=agent]');
    expect(rows.map((r) => r.attributes('data-state'))).toEqual(['available', 'unavailable']);
    expect(rows[0].get('[data-testid=breaker]').text()).toBe('⚡ half_open');
    expect(rows[0].get('[data-testid=breaker]').attributes('title')).toBe('circuit breaker half_open: 3 failures');
    expect(rows[1].text()).toContain('gemini: not on PATH');
    expect(rows[1].get('[data-testid=breaker]').text()).toBe('⚡ closed');
  });
});

describe('SessionsPanel', () => {
  it('loads, deletes and saves sessions', async () => {
    const w = mount(SessionsPanel, { props: { sessions: [{ name: 'a', workflow: 'default', tasks: 2 }, { name: 'b' }], current: 'a' } });
    expect(w.findAll('[data-testid=session]')).toHaveLength(2);
    await w.get('[data-testid=session-load-b]').trigger('click');
    await w.get('[data-testid=session-delete-a]').trigger('click');
    await w.get('form').trigger('submit');
    expect(w.emitted('load')).toEqual([['b']]);
    expect(w.emitted('delete')).toEqual([['a']]);
    expect(w.emitted('save')).toEqual([['a']]);
  });
});

describe('FileTree', () => {
  it('builds a sorted tree with each folder once', () => {
    const rows = treeRows([
      { path: 'src/b.py', size: 1 },
      { path: 'README.md', size: 2 },
      { path: 'src/a.py', size: 3 },
      { path: 'src/lib/c.py', size: 4 },
    ]);
    expect(rows.map((r) => `${r.depth}:${r.name}`)).toEqual(['0:README.md', '0:src/', '1:a.py', '1:b.py', '1:lib/', '2:c.py']);
  });
  it('lists the workspace files (backups hidden) and opens one', async () => {
    const f = vi.fn(async () => new Response(JSON.stringify({ files: [{ path: 'app/main.py', size: 10 }, { path: '.orchestrator/backups/x', size: 1 }] }), { status: 200 }));
    vi.stubGlobal('fetch', f);
    const w = mount(FileTree, { props: { owner: { kind: 'task', id: 'r 1' } } });
    await flushPromises();
    expect(f).toHaveBeenCalledWith('/api/tasks/r%201/files', expect.anything());
    const links = w.findAll('[data-testid=file]');
    expect(links.map((l) => l.attributes('data-path'))).toEqual(['app/main.py']);
    await links[0].trigger('click');
    expect(w.emitted('open')).toEqual([['app/main.py']]);
  });
  it('picks an editor language by extension', () => {
    expect(languageOf('a/b.py')).toBe('python');
    expect(languageOf('x.HPP')).toBe('cpp');
    expect(languageOf('Makefile')).toBe('text');
  });
});

describe('CodeEditor', () => {
  it('loads the file and saves the edited text with PUT', async () => {
    const calls: { url: string; method: string; body: unknown }[] = [];
    vi.stubGlobal(
      'fetch',
      vi.fn(async (url: string, init: RequestInit = {}) => {
        calls.push({ url, method: init.method ?? 'GET', body: init.body });
        if ((init.method ?? 'GET') === 'GET') return new Response('print("hi")\n', { status: 200 });
        return new Response(JSON.stringify({ path: 'app/main.py', size: 9, backup: '.orchestrator/backups/web/app/main.py.~1~' }), { status: 200 });
      }),
    );
    const w = mount(CodeEditor, { props: { owner: { kind: 'session', id: 's1' }, path: 'app/main.py', theme: 'dark' }, attachTo: document.body });
    await flushPromises();
    const view = (w.vm as any).view;
    expect(view.state.doc.toString()).toBe('print("hi")\n');
    view.dispatch({ changes: { from: 0, to: view.state.doc.length, insert: 'x = 1\n' } });
    await w.vm.$nextTick();
    expect(w.text()).toContain('modified');
    await w.get('[data-testid=editor-save]').trigger('click');
    await flushPromises();
    expect(calls[1]).toEqual({ url: '/api/sessions/s1/files/content?path=app%2Fmain.py', method: 'PUT', body: 'x = 1\n' });
    expect(w.get('[data-testid=editor-status]').text()).toContain('backup: .orchestrator/backups/web/app/main.py.~1~');
    expect(w.emitted('saved')).toHaveLength(1);
    w.unmount();
  });
});
