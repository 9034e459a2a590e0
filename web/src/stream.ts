// The live event stream of one run: Server-Sent Events resumed from the last
// sequence number seen, events deduplicated by seq, and the run id, last seq
// and events kept in sessionStorage so a page reload resumes where it was.

import type { ProgressEvent } from './types';

export const EVENT_KINDS = [
  'run_started',
  'iteration_started',
  'step_started',
  'agent_event',
  'step_finished',
  'step_notice',
  'run_finished',
] as const;

export const RUN_KEY = 'orch.run';

/** What is kept in sessionStorage about the run on screen. */
export interface SavedRun {
  runId: string;
  lastSeq: number;
  events: ProgressEvent[];
  /** The owner of the run's files: a session name when the run went through one. */
  session?: string;
}

export function loadSavedRun(storage: Storage = sessionStorage): SavedRun | null {
  try {
    const raw = storage.getItem(RUN_KEY);
    if (!raw) return null;
    const v = JSON.parse(raw);
    if (!v || typeof v.runId !== 'string' || typeof v.lastSeq !== 'number') return null;
    return { runId: v.runId, lastSeq: v.lastSeq, events: Array.isArray(v.events) ? v.events : [], session: v.session };
  } catch {
    return null;
  }
}

export function saveRun(run: SavedRun | null, storage: Storage = sessionStorage): void {
  try {
    if (!run) {
      storage.removeItem(RUN_KEY);
      return;
    }
    try {
      storage.setItem(RUN_KEY, JSON.stringify(run));
    } catch {
      // Too big for the storage: keep the id only, and replay from the start
      // after a reload (the server buffers the run's events).
      storage.setItem(RUN_KEY, JSON.stringify({ runId: run.runId, lastSeq: 0, events: [], session: run.session }));
    }
  } catch {
    /* no storage at all */
  }
}

/**
 * Accepts events in order: drops every event whose seq was already seen
 * (a replay after a reconnect), counts gaps (seq jumping past last+1).
 */
export class SeqFilter {
  lastSeq: number;
  gaps = 0;
  duplicates = 0;
  constructor(lastSeq = 0) {
    this.lastSeq = lastSeq;
  }
  accept(ev: { seq: number }): boolean {
    if (typeof ev.seq !== 'number' || !Number.isFinite(ev.seq)) return false;
    if (ev.seq <= this.lastSeq) {
      this.duplicates++;
      return false;
    }
    if (ev.seq > this.lastSeq + 1) this.gaps++;
    this.lastSeq = ev.seq;
    return true;
  }
}

export type StreamStatus = 'connecting' | 'open' | 'reconnecting' | 'closed' | 'error';

/** The subset of EventSource used here (so tests can pass a fake). */
export interface EventSourceLike {
  onopen: ((this: any, ev: any) => any) | null;
  onerror: ((this: any, ev: any) => any) | null;
  onmessage: ((this: any, ev: MessageEvent) => any) | null;
  addEventListener(type: string, listener: (ev: MessageEvent) => void): void;
  close(): void;
  readyState: number;
}

export type EventSourceFactory = (url: string) => EventSourceLike;

export interface RunStreamOptions {
  runId: string;
  since?: number;
  onEvent: (ev: ProgressEvent) => void;
  onStatus?: (s: StreamStatus, detail?: string) => void;
  /** Builds the stream URL (adds the token). */
  url?: (runId: string, since: number) => string;
  factory?: EventSourceFactory;
  /** ms before reconnecting, growing to maxRetryMs. */
  retryMs?: number;
  maxRetryMs?: number;
  setTimer?: (fn: () => void, ms: number) => unknown;
  clearTimer?: (t: unknown) => void;
}

export function defaultStreamUrl(runId: string, since: number): string {
  return `/api/tasks/${encodeURIComponent(runId)}/events?since=${since}`;
}

/**
 * One run's event stream. On any error the EventSource is closed and a new
 * one opened with `?since=<last seq>`, so no event is lost; events seen
 * already are dropped, so none is shown twice. Stops after `run_finished`.
 */
export class RunStream {
  readonly runId: string;
  readonly filter: SeqFilter;
  status: StreamStatus = 'closed';
  reconnects = 0;
  private es: EventSourceLike | null = null;
  private timer: unknown = null;
  private stopped = false;
  private finished = false;
  private delay: number;

  constructor(private opts: RunStreamOptions) {
    this.runId = opts.runId;
    this.filter = new SeqFilter(opts.since ?? 0);
    this.delay = opts.retryMs ?? 500;
  }

  get lastSeq(): number {
    return this.filter.lastSeq;
  }

  start(): void {
    this.stopped = false;
    this.open();
  }

  stop(): void {
    this.stopped = true;
    this.clear();
    this.setStatus('closed');
  }

  /** Drops the connection now and reconnects at once (e.g. back online). */
  reconnectNow(): void {
    if (this.stopped || this.finished) return;
    this.clear();
    this.open();
  }

  private clear(): void {
    if (this.timer !== null) {
      (this.opts.clearTimer ?? ((t) => clearTimeout(t as number)))(this.timer);
      this.timer = null;
    }
    if (this.es) {
      this.es.onopen = this.es.onerror = this.es.onmessage = null;
      this.es.close();
      this.es = null;
    }
  }

  private setStatus(s: StreamStatus, detail?: string): void {
    this.status = s;
    this.opts.onStatus?.(s, detail);
  }

  private open(): void {
    const url = (this.opts.url ?? defaultStreamUrl)(this.runId, this.filter.lastSeq);
    const factory = this.opts.factory ?? ((u: string) => new EventSource(u) as unknown as EventSourceLike);
    this.setStatus(this.reconnects > 0 ? 'reconnecting' : 'connecting');
    const es = factory(url);
    this.es = es;
    es.onopen = () => {
      this.delay = this.opts.retryMs ?? 500;
      this.setStatus('open');
    };
    es.onerror = () => {
      if (this.es !== es) return;
      this.scheduleReconnect();
    };
    // Only the current connection counts (a closed one may still deliver).
    const handler = (msg: MessageEvent) => {
      if (this.es === es) this.handle(msg);
    };
    es.onmessage = handler;
    for (const k of EVENT_KINDS) es.addEventListener(k, handler);
  }

  private scheduleReconnect(): void {
    this.clear();
    if (this.stopped || this.finished) return;
    this.reconnects++;
    this.setStatus('reconnecting');
    const wait = this.delay;
    this.delay = Math.min(this.delay * 2, this.opts.maxRetryMs ?? 5000);
    this.timer = (this.opts.setTimer ?? ((fn, ms) => setTimeout(fn, ms)))(() => {
      this.timer = null;
      if (!this.stopped) this.open();
    }, wait);
  }

  private handle(msg: MessageEvent): void {
    let ev: ProgressEvent;
    try {
      ev = JSON.parse(String(msg.data));
    } catch {
      return;
    }
    if (typeof ev.seq !== 'number' && msg.lastEventId) ev.seq = Number(msg.lastEventId);
    if (!this.filter.accept(ev)) return;
    this.opts.onEvent(ev);
    if (ev.kind === 'run_finished') {
      this.finished = true;
      this.clear();
      this.setStatus('closed', 'finished');
    }
  }
}
