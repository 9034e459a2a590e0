// The page's state and what changes it: one reactive store, no framework.

import { reactive } from 'vue';
import { ApiError, getJson, postJson, request, setToken, getToken, withToken } from './api';
import { applyEvent, buildRun, emptyRun, applyResult, type RunView } from './runState';
import { RunStream, loadSavedRun, saveRun, defaultStreamUrl, type StreamStatus, type EventSourceFactory } from './stream';
import type { AgentInfo, HealthInfo, ProgressEvent, RunResult, SessionInfo, WorkflowInfo } from './types';

export type Tab = 'output' | 'iterations' | 'logs' | 'files' | 'editor';
export type Theme = 'dark' | 'light';

export interface TaskInput {
  task: string;
  workflow: string;
  maxIterations: number;
  /** One agent name per workflow step ('' = the step's own). */
  agents: string[];
}

export const THEME_KEY = 'orch.theme';

function initialTheme(): Theme {
  try {
    const t = localStorage.getItem(THEME_KEY);
    if (t === 'dark' || t === 'light') return t;
  } catch {
    /* no storage */
  }
  return typeof matchMedia === 'function' && matchMedia('(prefers-color-scheme: light)').matches ? 'light' : 'dark';
}

export const store = reactive({
  authRequired: false,
  authChecked: false,
  loginError: '',
  connection: 'idle' as StreamStatus | 'idle',
  health: null as HealthInfo | null,
  agents: [] as AgentInfo[],
  workflows: [] as WorkflowInfo[],
  defaultWorkflow: '',
  sessions: [] as SessionInfo[],
  session: '' as string,
  sessionWorkflow: '' as string,
  conversation: false,
  run: emptyRun() as RunView,
  events: [] as ProgressEvent[],
  tab: 'output' as Tab,
  theme: initialTheme() as Theme,
  error: '',
  notice: '',
  busy: false,
  openFile: '' as string,
});

let stream: RunStream | null = null;
let esFactory: EventSourceFactory | undefined;

/** Tests replace the EventSource. */
export function setEventSourceFactory(f: EventSourceFactory | undefined): void {
  esFactory = f;
}

export function showError(e: unknown): void {
  if (e instanceof ApiError) {
    if (e.status === 401) {
      store.authRequired = true;
      store.loginError = getToken() ? 'The token was refused.' : '';
    }
    store.error = `${e.message} (${e.code})`;
  } else store.error = e instanceof Error ? e.message : String(e);
}

export function applyTheme(t: Theme): void {
  store.theme = t;
  try {
    localStorage.setItem(THEME_KEY, t);
  } catch {
    /* ignore */
  }
  if (typeof document !== 'undefined') document.documentElement.dataset.theme = t;
}

export async function checkAuth(): Promise<boolean> {
  try {
    const r = await getJson<{ required: boolean }>('/api/auth');
    store.authRequired = !!r.required && !getToken();
  } catch {
    store.authRequired = false;
  }
  store.authChecked = true;
  return !store.authRequired;
}

export async function login(token: string): Promise<boolean> {
  setToken(token.trim());
  try {
    await getJson('/api/agents');
    store.authRequired = false;
    store.loginError = '';
    return true;
  } catch (e) {
    setToken('');
    store.authRequired = true;
    store.loginError = e instanceof ApiError && e.status === 401 ? 'The token was refused.' : String(e);
    return false;
  }
}

export function logout(): void {
  setToken('');
  store.authRequired = true;
}

export async function loadAgents(): Promise<void> {
  try {
    const r = await getJson<{ agents: AgentInfo[] }>('/api/agents');
    store.agents = r.agents ?? [];
  } catch (e) {
    showError(e);
  }
  try {
    const h = await getJson<HealthInfo>('/health');
    store.health = h;
  } catch {
    // /health answers 503-like bodies too; keep what we had.
  }
}

export async function loadWorkflows(): Promise<void> {
  try {
    const r = await getJson<{ workflows: WorkflowInfo[]; default?: string }>('/api/workflows');
    store.workflows = r.workflows ?? [];
    store.defaultWorkflow = r.default ?? store.workflows[0]?.name ?? '';
  } catch (e) {
    showError(e);
  }
}

export async function loadSessions(): Promise<void> {
  try {
    const r = await getJson<{ sessions: SessionInfo[] }>('/api/sessions');
    store.sessions = r.sessions ?? [];
  } catch (e) {
    showError(e);
  }
}

function persist(): void {
  if (!store.run.runId) return;
  saveRun({ runId: store.run.runId, lastSeq: store.run.lastSeq, events: store.events, session: store.session || undefined });
}

function onEvent(ev: ProgressEvent): void {
  store.events.push(ev);
  applyEvent(store.run, ev);
  persist();
  if (ev.kind === 'run_finished') {
    void loadSessions();
    void loadAgents();
  }
}

/** Starts following a run: from `since`, after the given events already seen. */
export function follow(runId: string, events: ProgressEvent[] = [], since = 0): void {
  stream?.stop();
  store.events = [...events];
  store.run = buildRun(runId, events);
  store.run.lastSeq = Math.max(store.run.lastSeq, since);
  persist();
  if (store.run.state === 'finished') {
    store.connection = 'closed';
    return;
  }
  stream = new RunStream({
    runId,
    since: store.run.lastSeq,
    onEvent,
    onStatus: (s) => (store.connection = s),
    url: (id, n) => withToken(defaultStreamUrl(id, n)),
    factory: esFactory,
  });
  stream.start();
}

export function currentStream(): RunStream | null {
  return stream;
}

/** After a page load: picks up the run that was on screen. */
export async function resume(): Promise<void> {
  const saved = loadSavedRun();
  if (!saved) return;
  store.session = saved.session ?? '';
  follow(saved.runId, saved.events, saved.lastSeq);
  if (store.run.state === 'finished') return;
  // The run may have ended while the page was away: the stream replays the
  // rest, but a run the server forgot is dropped from the page.
  try {
    await getJson(`/api/tasks/${encodeURIComponent(saved.runId)}`);
  } catch (e) {
    if (e instanceof ApiError && e.status === 404) {
      stream?.stop();
      saveRun(null);
      store.run = emptyRun();
      store.events = [];
    }
  }
}

async function ensureSession(workflow: string): Promise<string> {
  if (store.session) {
    if (workflow && workflow !== store.sessionWorkflow) {
      await postJson(`/api/sessions/${encodeURIComponent(store.session)}`, { workflow }, 'PATCH');
      store.sessionWorkflow = workflow;
    }
    return store.session;
  }
  const body: Record<string, unknown> = { conversation: store.conversation };
  if (workflow) body.workflow = workflow;
  const info = await postJson<SessionInfo>('/api/sessions', body);
  store.session = info.name;
  store.sessionWorkflow = info.workflow ?? workflow;
  void loadSessions();
  return info.name;
}

export function taskBody(input: TaskInput, wf: WorkflowInfo | undefined): Record<string, unknown> {
  const body: Record<string, unknown> = { task: input.task };
  if (input.workflow) body.workflow = input.workflow;
  if (input.maxIterations) body.max_iterations = input.maxIterations;
  if (wf && input.agents.some((a) => a)) {
    // --agents semantics: one name per step, each defaulting to the step's own.
    body.agents = wf.steps.map((s, i) => input.agents[i] || s.agent || s.parallel?.[0]?.agent || '');
  }
  return body;
}

/** Submits a task: through the session in conversation mode, else alone. */
export async function submitTask(input: TaskInput): Promise<string | null> {
  store.error = '';
  store.notice = '';
  if (!input.task.trim()) {
    store.error = 'Describe the task first.';
    return null;
  }
  if (!(input.maxIterations >= 1 && input.maxIterations <= 10)) {
    store.error = 'The iteration limit is 1 to 10.';
    return null;
  }
  store.busy = true;
  try {
    const wf = store.workflows.find((w) => w.name === input.workflow);
    const body = taskBody(input, wf);
    // Every task goes through the page's session, so a follow-up can
    // continue its workspace; with conversation mode off the session starts
    // each task afresh.
    body.session = await ensureSession(input.workflow);
    const r = await postJson<{ id: string }>('/api/tasks', body);
    const id = r.id;
    follow(id);
    store.run.task = input.task;
    store.tab = 'output';
    return id;
  } catch (e) {
    showError(e);
    return null;
  } finally {
    store.busy = false;
  }
}

/** A follow-up to the finished run, in its workspace (through a session). */
export async function sendFollowUp(text: string): Promise<string | null> {
  store.error = '';
  if (!text.trim()) return null;
  store.busy = true;
  try {
    const name = store.session;
    if (!name) {
      store.error = 'Run a task first: a follow-up continues its workspace.';
      return null;
    }
    // An explicit follow-up: it continues the session's previous task in
    // its workspace whatever conversation mode says.
    const r = await postJson<{ id: string; followup?: boolean }>(
      `/api/sessions/${encodeURIComponent(name)}/messages`,
      { text, mode: 'followup' },
    );
    store.notice = r.followup === false ? 'Read as a new task.' : 'Follow-up in the same workspace.';
    follow(r.id);
    store.run.task = text;
    store.tab = 'output';
    return r.id;
  } catch (e) {
    showError(e);
    return null;
  } finally {
    store.busy = false;
  }
}

export async function cancelRun(): Promise<void> {
  if (!store.run.runId) return;
  try {
    await postJson(`/api/tasks/${encodeURIComponent(store.run.runId)}/cancel`, {});
  } catch (e) {
    showError(e);
  }
}

export async function setConversation(on: boolean): Promise<void> {
  store.conversation = on;
  if (store.session) {
    try {
      await postJson(`/api/sessions/${encodeURIComponent(store.session)}`, { conversation: on }, 'PATCH');
    } catch (e) {
      showError(e);
    }
  }
}

export async function loadSession(name: string): Promise<void> {
  try {
    const info = await getJson<SessionInfo & { history?: unknown[] }>(`/api/sessions/${encodeURIComponent(name)}`);
    store.session = info.name ?? name;
    store.sessionWorkflow = info.workflow ?? '';
    store.conversation = info.conversation ?? true;
    store.notice = `Session ${store.session} loaded (${info.tasks ?? info.history?.length ?? 0} task(s)).`;
    stream?.stop();
    store.run = emptyRun();
    store.events = [];
    saveRun(null);
    store.tab = 'files';
  } catch (e) {
    showError(e);
  }
}

export async function saveSession(name: string): Promise<void> {
  try {
    const r = await postJson<{ saved: string }>(`/api/sessions/${encodeURIComponent(name)}/save`, {});
    store.notice = `Saved as ${r.saved}.`;
    await loadSessions();
  } catch (e) {
    showError(e);
  }
}

export async function deleteSession(name: string): Promise<void> {
  try {
    await request(`/api/sessions/${encodeURIComponent(name)}`, { method: 'DELETE' });
    if (store.session === name) store.session = '';
    await loadSessions();
  } catch (e) {
    showError(e);
  }
}

/** Whose files the Files tab shows: the run's, else the loaded session's. */
export function filesOwner(): { kind: 'task' | 'session'; id: string } | null {
  if (store.run.runId) return { kind: 'task', id: store.run.runId };
  if (store.session) return { kind: 'session', id: store.session };
  return null;
}

export function finishFromResult(result: RunResult): void {
  applyResult(store.run, result);
}
