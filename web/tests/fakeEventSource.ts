import type { EventSourceLike } from '../src/stream';

/** An EventSource stand-in driven by the test. */
export class FakeEventSource implements EventSourceLike {
  static all: FakeEventSource[] = [];
  onopen: ((ev: any) => any) | null = null;
  onerror: ((ev: any) => any) | null = null;
  onmessage: ((ev: MessageEvent) => any) | null = null;
  readyState = 0;
  closed = false;
  listeners = new Map<string, ((ev: MessageEvent) => void)[]>();
  constructor(public url: string) {
    FakeEventSource.all.push(this);
  }
  addEventListener(type: string, l: (ev: MessageEvent) => void): void {
    this.listeners.set(type, [...(this.listeners.get(type) ?? []), l]);
  }
  close(): void {
    this.closed = true;
    this.readyState = 2;
  }
  open(): void {
    this.readyState = 1;
    this.onopen?.({});
  }
  /** Delivers one SSE event as the browser would (named event → its listeners). */
  emit(ev: { seq: number; kind: string; [k: string]: unknown }): void {
    const msg = { data: JSON.stringify(ev), lastEventId: String(ev.seq) } as MessageEvent;
    const ls = this.listeners.get(ev.kind);
    if (ls && ls.length) ls.forEach((l) => l(msg));
    else this.onmessage?.(msg);
  }
  fail(): void {
    this.onerror?.({});
  }
  static last(): FakeEventSource {
    return FakeEventSource.all[FakeEventSource.all.length - 1];
  }
  static reset(): void {
    FakeEventSource.all = [];
  }
}

export function ev(seq: number, kind: string, extra: Record<string, unknown> = {}) {
  return { seq, kind, run_id: 'r1', iteration: 1, step_index: 0, step_count: 2, agent: 'demo-codex', task_kind: 'implement', text: '', ok: true, elapsed_ms: 0, ...extra };
}
