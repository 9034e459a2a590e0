import { describe, it, expect, beforeEach } from 'vitest';
import { RunStream, SeqFilter, loadSavedRun, saveRun, RUN_KEY } from '../src/stream';
import { FakeEventSource, ev } from './fakeEventSource';
import type { ProgressEvent } from '../src/types';

function manualTimers() {
  const pending: { fn: () => void; ms: number }[] = [];
  return {
    pending,
    setTimer: (fn: () => void, ms: number) => {
      const t = { fn, ms };
      pending.push(t);
      return t;
    },
    clearTimer: (t: unknown) => {
      const i = pending.indexOf(t as any);
      if (i >= 0) pending.splice(i, 1);
    },
    fire() {
      const t = pending.shift();
      t?.fn();
      return t;
    },
  };
}

describe('SeqFilter', () => {
  it('accepts increasing seqs, drops repeats, counts gaps', () => {
    const f = new SeqFilter();
    expect([1, 2, 2, 1, 3, 5, 4, 6].map((seq) => f.accept({ seq }))).toEqual([true, true, false, false, true, true, false, true]);
    expect(f.lastSeq).toBe(6);
    expect(f.duplicates).toBe(3);
    expect(f.gaps).toBe(1);
  });
  it('starts after a saved seq', () => {
    const f = new SeqFilter(10);
    expect(f.accept({ seq: 10 })).toBe(false);
    expect(f.accept({ seq: 11 })).toBe(true);
  });
  it('drops events without a numeric seq', () => {
    expect(new SeqFilter().accept({ seq: Number.NaN })).toBe(false);
  });
});

describe('RunStream', () => {
  beforeEach(() => FakeEventSource.reset());

  function make(since = 0) {
    const got: ProgressEvent[] = [];
    const statuses: string[] = [];
    const timers = manualTimers();
    const s = new RunStream({
      runId: 'r1',
      since,
      onEvent: (e) => got.push(e),
      onStatus: (st) => statuses.push(st),
      factory: (u) => new FakeEventSource(u),
      setTimer: timers.setTimer,
      clearTimer: timers.clearTimer,
    });
    return { s, got, statuses, timers };
  }

  it('opens the stream from the given seq and delivers named events', () => {
    const { s, got, statuses } = make(4);
    s.start();
    const es = FakeEventSource.last();
    expect(es.url).toBe('/api/tasks/r1/events?since=4');
    es.open();
    es.emit(ev(5, 'step_started'));
    es.emit(ev(6, 'agent_event', { text: 'tool_call: ls' }));
    expect(got.map((e) => e.seq)).toEqual([5, 6]);
    expect(statuses).toEqual(['connecting', 'open']);
    expect(s.lastSeq).toBe(6);
  });

  it('after a drop reconnects from the last seq seen and drops the replayed events', () => {
    const { s, got, timers } = make();
    s.start();
    const first = FakeEventSource.last();
    first.open();
    [1, 2, 3].forEach((n) => first.emit(ev(n, n === 1 ? 'run_started' : 'agent_event')));
    first.fail();
    expect(first.closed).toBe(true);
    expect(s.status).toBe('reconnecting');
    expect(timers.pending).toHaveLength(1);
    timers.fire();
    const second = FakeEventSource.last();
    expect(second).not.toBe(first);
    expect(second.url).toBe('/api/tasks/r1/events?since=3');
    second.open();
    // A server that replays a little too much: 2 and 3 again, then new ones.
    [2, 3, 4, 5].forEach((n) => second.emit(ev(n, 'agent_event')));
    // Late events of the old connection are ignored too.
    first.emit(ev(6, 'agent_event'));
    expect(got.map((e) => e.seq)).toEqual([1, 2, 3, 4, 5]);
    expect(s.filter.duplicates).toBe(2);
    expect(s.reconnects).toBe(1);
  });

  it('backs off between failed attempts', () => {
    const { s, timers } = make();
    s.start();
    FakeEventSource.last().fail();
    expect(timers.pending[0].ms).toBe(500);
    timers.fire();
    FakeEventSource.last().fail();
    expect(timers.pending[0].ms).toBe(1000);
    timers.fire();
    FakeEventSource.last().open();
    FakeEventSource.last().fail();
    expect(timers.pending[0].ms).toBe(500);
  });

  it('closes after run_finished and does not reconnect', () => {
    const { s, got, timers, statuses } = make();
    s.start();
    const es = FakeEventSource.last();
    es.open();
    es.emit(ev(1, 'run_started'));
    es.emit(ev(2, 'run_finished', { result: { status: 'converged' } }));
    expect(es.closed).toBe(true);
    es.fail();
    expect(timers.pending).toHaveLength(0);
    expect(FakeEventSource.all).toHaveLength(1);
    expect(got).toHaveLength(2);
    expect(statuses[statuses.length - 1]).toBe('closed');
  });

  it('takes the seq from the SSE id when the data has none', () => {
    const { s, got } = make();
    s.start();
    const es = FakeEventSource.last();
    es.onmessage?.({ data: JSON.stringify({ kind: 'agent_event', run_id: 'r1' }), lastEventId: '7' } as MessageEvent);
    expect(got[0].seq).toBe(7);
  });

  it('stop() closes and cancels a pending reconnect', () => {
    const { s, timers } = make();
    s.start();
    FakeEventSource.last().fail();
    s.stop();
    expect(timers.pending).toHaveLength(0);
    expect(s.status).toBe('closed');
  });

  it('reconnectNow() replaces the connection at once', () => {
    const { s } = make();
    s.start();
    const es = FakeEventSource.last();
    es.open();
    es.emit(ev(1, 'run_started'));
    s.reconnectNow();
    expect(es.closed).toBe(true);
    expect(FakeEventSource.last().url).toContain('since=1');
  });
});

describe('saved run', () => {
  beforeEach(() => sessionStorage.clear());
  it('round-trips through sessionStorage', () => {
    saveRun({ runId: 'r9', lastSeq: 3, events: [ev(1, 'run_started') as ProgressEvent], session: 's1' });
    expect(loadSavedRun()).toEqual({ runId: 'r9', lastSeq: 3, events: [ev(1, 'run_started')], session: 's1' });
    saveRun(null);
    expect(loadSavedRun()).toBeNull();
  });
  it('ignores garbage', () => {
    sessionStorage.setItem(RUN_KEY, '{not json');
    expect(loadSavedRun()).toBeNull();
    sessionStorage.setItem(RUN_KEY, JSON.stringify({ runId: 1 }));
    expect(loadSavedRun()).toBeNull();
  });
  it('keeps the id and replays from 0 when the events do not fit', () => {
    const store = new Map<string, string>();
    const limited = {
      getItem: (k: string) => store.get(k) ?? null,
      setItem: (k: string, v: string) => {
        if (v.length > 200) throw new Error('QuotaExceededError');
        store.set(k, v);
      },
      removeItem: (k: string) => store.delete(k),
    } as unknown as Storage;
    const events = Array.from({ length: 20 }, (_, i) => ev(i + 1, 'agent_event') as ProgressEvent);
    saveRun({ runId: 'big', lastSeq: 20, events }, limited);
    expect(loadSavedRun(limited)).toEqual({ runId: 'big', lastSeq: 0, events: [], session: undefined });
  });
});
