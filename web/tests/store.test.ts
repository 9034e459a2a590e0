import { describe, it, expect, beforeEach, vi } from 'vitest';
import { nextTick } from 'vue';
import { store, submitTask, sendFollowUp, resume, setEventSourceFactory, taskBody, follow, checkAuth, login } from '../src/store';
import { emptyRun } from '../src/runState';
import { saveRun, loadSavedRun } from '../src/stream';
import { setToken } from '../src/api';
import { FakeEventSource, ev } from './fakeEventSource';
import type { ProgressEvent } from '../src/types';

interface Call {
  method: string;
  url: string;
  body: unknown;
  headers: Record<string, string>;
}

function mockFetch(routes: Record<string, (c: Call) => [number, unknown]>) {
  const calls: Call[] = [];
  const f = vi.fn(async (url: string, init: RequestInit = {}) => {
    const c: Call = {
      method: init.method ?? 'GET',
      url,
      body: init.body ? JSON.parse(String(init.body)) : undefined,
      headers: (init.headers ?? {}) as Record<string, string>,
    };
    calls.push(c);
    const key = `${c.method} ${url.split('?')[0]}`;
    const h = routes[key];
    const [status, body] = h ? h(c) : [404, { error: { code: 'not_found', message: key } }];
    return new Response(JSON.stringify(body), { status, headers: { 'Content-Type': 'application/json' } });
  });
  vi.stubGlobal('fetch', f);
  return calls;
}

const wf = { name: 'default', max_iterations: 3, steps: [{ agent: 'codex', task: 'implement' }, { agent: 'gemini', task: 'review' }] };

beforeEach(() => {
  sessionStorage.clear();
  FakeEventSource.reset();
  setEventSourceFactory((u) => new FakeEventSource(u));
  Object.assign(store, { session: '', sessionWorkflow: '', conversation: false, run: emptyRun(), events: [], error: '', notice: '', workflows: [wf], authRequired: false });
  setToken('');
});

describe('taskBody', () => {
  it('sends agents per step only when one was chosen, defaulting the others', () => {
    expect(taskBody({ task: 't', workflow: 'default', maxIterations: 2, agents: ['', ''] }, wf)).toEqual({ task: 't', workflow: 'default', max_iterations: 2 });
    expect(taskBody({ task: 't', workflow: 'default', maxIterations: 2, agents: ['', 'claude'] }, wf)).toEqual({
      task: 't',
      workflow: 'default',
      max_iterations: 2,
      agents: ['codex', 'claude'],
    });
  });
});

describe('submitTask', () => {
  it('creates the page session once, posts the task through it and follows its events', async () => {
    const calls = mockFetch({
      'POST /api/sessions': () => [201, { name: 'web-1', conversation: false }],
      'GET /api/sessions': () => [200, { sessions: [] }],
      'POST /api/tasks': () => [202, { id: 'r1', state: 'running' }],
    });
    const id = await submitTask({ task: 'Build it', workflow: 'default', maxIterations: 2, agents: [] });
    expect(id).toBe('r1');
    const post = calls.find((c) => c.method === 'POST' && c.url === '/api/tasks')!;
    expect(post.body).toEqual({ task: 'Build it', workflow: 'default', max_iterations: 2, session: 'web-1' });
    expect(calls.find((c) => c.url === '/api/sessions' && c.method === 'POST')!.body).toEqual({ conversation: false, workflow: 'default' });
    expect(FakeEventSource.last().url).toBe('/api/tasks/r1/events?since=0');
    FakeEventSource.last().emit(ev(1, 'run_started', { text: 'Build it' }));
    FakeEventSource.last().emit(ev(2, 'step_started'));
    expect(store.run.iterations[0].steps[0].status).toBe('running');
    expect(loadSavedRun()).toMatchObject({ runId: 'r1', lastSeq: 2, session: 'web-1' });
    expect(loadSavedRun()!.events.map((e) => e.seq)).toEqual([1, 2]);

    await submitTask({ task: 'Again', workflow: 'default', maxIterations: 1, agents: [] });
    expect(calls.filter((c) => c.url === '/api/sessions' && c.method === 'POST')).toHaveLength(1);
    expect(calls.filter((c) => c.method === 'PATCH')).toHaveLength(0);
  });

  it('switches the session to the workflow chosen', async () => {
    store.session = 'web-1';
    store.sessionWorkflow = 'default';
    const calls = mockFetch({
      'PATCH /api/sessions/web-1': () => [200, { name: 'web-1' }],
      'POST /api/tasks': () => [202, { id: 'r3', state: 'running' }],
    });
    expect(await submitTask({ task: 'x', workflow: 'quick', maxIterations: 1, agents: [] })).toBe('r3');
    expect(calls[0]).toMatchObject({ method: 'PATCH', url: '/api/sessions/web-1', body: { workflow: 'quick' } });
    expect(store.sessionWorkflow).toBe('quick');
  });

  it('refuses an empty task and an iteration limit outside 1..10 without a request', async () => {
    const calls = mockFetch({});
    expect(await submitTask({ task: '  ', workflow: 'default', maxIterations: 2, agents: [] })).toBeNull();
    expect(store.error).toMatch(/task/);
    expect(await submitTask({ task: 'x', workflow: 'default', maxIterations: 11, agents: [] })).toBeNull();
    expect(store.error).toMatch(/1 to 10/);
    expect(calls).toHaveLength(0);
  });

  it('shows the server error message', async () => {
    mockFetch({
      'POST /api/sessions': () => [201, { name: 'web-1' }],
      'GET /api/sessions': () => [200, { sessions: [] }],
      'POST /api/tasks': () => [400, { error: { code: 'bad_field', message: 'workflow: unknown workflow nope' } }],
    });
    expect(await submitTask({ task: 'x', workflow: 'nope', maxIterations: 1, agents: [] })).toBeNull();
    expect(store.error).toBe('workflow: unknown workflow nope (bad_field)');
  });
});

describe('sendFollowUp', () => {
  it('sends the message to the session as an explicit follow-up', async () => {
    store.session = 'web-1';
    const calls = mockFetch({
      'POST /api/sessions/web-1/messages': () => [202, { id: 'r2', followup: true }],
    });
    expect(await sendFollowUp('add a README')).toBe('r2');
    expect(calls.map((c) => `${c.method} ${c.url}`)).toEqual(['POST /api/sessions/web-1/messages']);
    expect(calls[0].body).toEqual({ text: 'add a README', mode: 'followup' });
    expect(store.notice).toMatch(/same workspace/);
    expect(store.run.runId).toBe('r2');
    expect(FakeEventSource.last().url).toBe('/api/tasks/r2/events?since=0');
  });
  it('needs a previous task', async () => {
    mockFetch({});
    expect(await sendFollowUp('add x')).toBeNull();
    expect(store.error).toMatch(/Run a task first/);
  });
});

describe('resume after a reload', () => {
  it('rebuilds the view from the saved events and streams from the last seq', async () => {
    const events = [ev(1, 'run_started', { text: 'Build it' }), ev(2, 'step_started'), ev(3, 'agent_event', { text: 'tool_call: x' })] as ProgressEvent[];
    saveRun({ runId: 'r1', lastSeq: 3, events, session: 'web-1' });
    mockFetch({ 'GET /api/tasks/r1': () => [200, { id: 'r1', state: 'running' }] });
    await resume();
    expect(store.session).toBe('web-1');
    expect(store.run.iterations[0].steps[0].lines).toHaveLength(1);
    const es = FakeEventSource.last();
    expect(es.url).toBe('/api/tasks/r1/events?since=3');
    es.emit(ev(3, 'agent_event', { text: 'tool_call: x' }));
    es.emit(ev(4, 'step_finished', { step: { status: 'ok' } }));
    expect(store.events.map((e) => e.seq)).toEqual([1, 2, 3, 4]);
    expect(store.run.iterations[0].steps[0].lines).toHaveLength(1);
    expect(store.run.iterations[0].steps[0].status).toBe('ok');
  });

  it('forgets a run the server does not know', async () => {
    saveRun({ runId: 'gone', lastSeq: 1, events: [ev(1, 'run_started') as ProgressEvent] });
    mockFetch({});
    await resume();
    await nextTick();
    expect(store.run.runId).toBe('');
    expect(loadSavedRun()).toBeNull();
  });

  it('does not reconnect to a finished run', () => {
    follow('r1', [ev(1, 'run_started'), ev(2, 'run_finished', { result: { status: 'converged' } })] as ProgressEvent[], 2);
    expect(FakeEventSource.all).toHaveLength(0);
    expect(store.run.state).toBe('finished');
  });

  it('sends the token as ?token= on the event stream', () => {
    setToken('s3cret');
    follow('r1');
    expect(FakeEventSource.last().url).toBe('/api/tasks/r1/events?since=0&token=s3cret');
  });
});

describe('auth', () => {
  it('asks for a token when the server requires one, and sends it as Bearer', async () => {
    const calls = mockFetch({
      'GET /api/auth': () => [200, { required: true }],
      'GET /api/agents': (c) => (c.headers.Authorization === 'Bearer good' ? [200, { agents: [] }] : [401, { error: { code: 'unauthorized', message: 'bad token' } }]),
    });
    expect(await checkAuth()).toBe(false);
    expect(store.authRequired).toBe(true);
    expect(await login('bad')).toBe(false);
    expect(store.loginError).toMatch(/refused/);
    expect(sessionStorage.getItem('orch.token')).toBeNull();
    expect(await login('good')).toBe(true);
    expect(store.authRequired).toBe(false);
    expect(sessionStorage.getItem('orch.token')).toBe('good');
    expect(calls[calls.length - 1].headers.Authorization).toBe('Bearer good');
  });
});
