// A dev-only mock of the `ai-orchestrator serve` API (see API.md): scripted
// runs with live SSE events, files in a temp workspace, sessions in memory.
// Serves web/dist too. Usage: node dev/mock-server.mjs [port] [--token T]
// Env MOCK_STEP_MS: ms between events (default 400).
import http from 'node:http';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const dist = path.join(here, '..', 'dist');
const args = process.argv.slice(2);
const port = Number(args.find((a) => /^\d+$/.test(a)) ?? 8765);
const tokenIdx = args.indexOf('--token');
const token = tokenIdx >= 0 ? args[tokenIdx + 1] : '';
const stepMs = Number(process.env.MOCK_STEP_MS ?? 400);
const root = fs.mkdtempSync(path.join(os.tmpdir(), 'orch-mock-'));

const agents = [
  { name: 'demo-codex', enabled: true, available: true, reason: '', breaker: 'closed', max_concurrency: 2, role: 'implementation' },
  { name: 'demo-gemini', enabled: true, available: true, reason: '', breaker: 'closed', max_concurrency: 2, role: 'review' },
  { name: 'demo-claude', enabled: true, available: true, reason: '', breaker: 'half_open', max_concurrency: 2, role: 'refinement' },
  { name: 'demo-copilot', enabled: false, available: false, reason: 'disabled in the config', breaker: 'closed', max_concurrency: 1 },
];
const workflows = [
  { name: 'default', description: 'implement, review, refine', max_iterations: 3, steps: [
    { agent: 'demo-codex', task: 'implement' }, { agent: 'demo-gemini', task: 'review' }, { agent: 'demo-claude', task: 'refine' }] },
  { name: 'quick', description: 'implement only', max_iterations: 1, steps: [{ agent: 'demo-codex', task: 'implement' }] },
];
const runs = new Map();
const sessions = new Map();
let runCounter = 0;

function send(res, status, body, headers = {}) {
  res.writeHead(status, { 'Content-Type': 'application/json; charset=utf-8', ...headers });
  res.end(JSON.stringify(body));
}
const err = (res, status, code, message) => send(res, status, { error: { code, message } });

function authorized(req, url) {
  if (!token) return true;
  return req.headers.authorization === `Bearer ${token}` || url.searchParams.get('token') === token;
}

function readBody(req) {
  return new Promise((resolve) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks)));
  });
}

function emit(run, ev) {
  const full = { seq: run.events.length + 1, run_id: run.id, iteration: 0, step_index: 0, step_count: 0, agent: '', task_kind: '', text: '', ok: true, elapsed_ms: 0, ...ev };
  run.events.push(full);
  for (const sub of run.subs) writeEvent(sub, full);
  if (full.kind === 'run_finished') {
    run.state = 'finished';
    for (const sub of run.subs) sub.end();
    run.subs.clear();
  }
}
function writeEvent(res, ev) {
  res.write(`id: ${ev.seq}\nevent: ${ev.kind}\ndata: ${JSON.stringify(ev)}\n\n`);
}

function startRun(task, workflow, maxIter, ws, session) {
  const id = `mock-${++runCounter}`;
  const wf = workflows.find((w) => w.name === workflow) ?? workflows[0];
  fs.mkdirSync(ws, { recursive: true });
  const run = { id, task, workflow: wf.name, workspace: ws, state: 'running', events: [], subs: new Set(), started_ms: Date.now(), session };
  runs.set(id, run);
  const script = [];
  const iterations = [];
  const n = Math.min(maxIter, wf.max_iterations);
  for (let it = 1; it <= n; it++) {
    const steps = [];
    script.push({ kind: 'iteration_started', iteration: it, text: '' });
    wf.steps.forEach((s, i) => {
      const base = { iteration: it, step_index: i, step_count: wf.steps.length, agent: s.agent, task_kind: s.task };
      const file = i === 0 ? `app/main_${it}.py` : '';
      const findings = s.task === 'review' ? Array.from({ length: n - it }, (_, k) => ({ severity: 'medium', file: 'app/main.py', line: 10 + k, text: `issue ${k + 1}` })) : [];
      const step = { step: i + 1, agent: s.agent, task: s.task, status: 'ok', failure: 'none', message: '', duration_ms: stepMs * 2, usage: { input_tokens: 1000, output_tokens: 200, cached_tokens: 0, cost_usd: 0.0123 }, findings, files: file ? [file] : [], output: `[mock] ${s.task} done for: ${task}` };
      steps.push(step);
      script.push({ kind: 'step_started', ...base });
      script.push({ kind: 'agent_event', ...base, text: `tool_call: shell ls` });
      if (file) script.push({ kind: 'agent_event', ...base, text: `file_change: ${file}`, write: file });
      script.push({ kind: 'step_finished', ...base, ok: true, elapsed_ms: stepMs * 2, step });
    });
    iterations.push({ iteration: it, open_findings: n - it, steps });
  }
  const result = { run_id: id, workflow: wf.name, task, status: 'converged', message: '0 open finding(s) <= threshold 0', workspace: ws, duration_ms: stepMs * script.length, usage: { input_tokens: 1000 * n * 3, output_tokens: 600 * n, cached_tokens: 0, cost_usd: 0.0369 * n }, iterations, findings: [], files: [] };
  script.unshift({ kind: 'run_started', text: task });
  script.push({ kind: 'run_finished', ok: true, text: 'converged', result });
  let i = 0;
  const tick = () => {
    if (run.cancelled) return emit(run, { kind: 'run_finished', ok: false, text: 'cancelled', result: { ...result, status: 'cancelled' } });
    const ev = script[i++];
    if (!ev) return;
    if (ev.write) {
      const p = path.join(ws, ev.write);
      fs.mkdirSync(path.dirname(p), { recursive: true });
      fs.writeFileSync(p, `# ${task}\ndef main():\n    print("hello from iteration ${ev.iteration}")\n`);
      result.files.push(ev.write);
      delete ev.write;
    }
    emit(run, ev);
    if (i < script.length) setTimeout(tick, stepMs);
  };
  setTimeout(tick, stepMs);
  return run;
}

function listFiles(dir, base = '') {
  const out = [];
  for (const e of fs.readdirSync(path.join(dir, base), { withFileTypes: true })) {
    const rel = base ? `${base}/${e.name}` : e.name;
    if (e.isDirectory()) out.push(...listFiles(dir, rel));
    else if (e.isFile()) {
      const st = fs.statSync(path.join(dir, rel));
      out.push({ path: rel, size: st.size, mtime_ms: Math.round(st.mtimeMs) });
    }
  }
  return out;
}

function safePath(ws, rel) {
  if (!rel || rel.startsWith('/') || rel.split('/').includes('..')) return null;
  return path.join(ws, rel);
}

async function files(req, res, url, ws) {
  if (!ws) return err(res, 404, 'not_found', 'no workspace');
  const sub = url.pathname.replace(/^.*\/files/, '');
  if (sub === '' && req.method === 'GET') {
    fs.mkdirSync(ws, { recursive: true });
    return send(res, 200, { files: listFiles(ws) });
  }
  if (sub === '/content') {
    const rel = url.searchParams.get('path') ?? '';
    const p = safePath(ws, rel);
    if (!p) return err(res, 400, 'bad_path', `path: not allowed: ${rel}`);
    if (req.method === 'GET') {
      if (!fs.existsSync(p)) return err(res, 404, 'not_found', `no file ${rel}`);
      const h = { 'Content-Type': 'text/plain; charset=utf-8' };
      if (url.searchParams.get('download')) h['Content-Disposition'] = `attachment; filename="${path.basename(p)}"`;
      res.writeHead(200, h);
      return res.end(fs.readFileSync(p));
    }
    if (req.method === 'PUT') {
      const body = await readBody(req);
      let backup = null;
      if (fs.existsSync(p)) {
        backup = `.orchestrator/backups/web/${rel}.~1~`;
        fs.mkdirSync(path.dirname(path.join(ws, backup)), { recursive: true });
        fs.copyFileSync(p, path.join(ws, backup));
      }
      fs.mkdirSync(path.dirname(p), { recursive: true });
      fs.writeFileSync(p, body);
      return send(res, 200, { path: rel, size: body.length, backup });
    }
  }
  return err(res, 405, 'method', 'method not allowed');
}

function sessionInfo(s) {
  return { name: s.name, workflow: s.workflow, conversation: s.conversation, tasks: s.history.length, workspace: s.workspace, updated_ms: s.updated_ms };
}

function serveStatic(res, pathname) {
  let p = path.join(dist, path.normalize(pathname).replace(/^(\.\.[/\\])+/, ''));
  if (!p.startsWith(dist) || !fs.existsSync(p) || fs.statSync(p).isDirectory()) p = path.join(dist, 'index.html');
  if (!fs.existsSync(p)) {
    res.writeHead(200, { 'Content-Type': 'text/html' });
    return res.end('<p>UI not built: run npm run build in web/</p>');
  }
  const types = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript', '.css': 'text/css', '.svg': 'image/svg+xml' };
  res.writeHead(200, { 'Content-Type': types[path.extname(p)] ?? 'application/octet-stream' });
  res.end(fs.readFileSync(p));
}

const server = http.createServer(async (req, res) => {
  const url = new URL(req.url, 'http://x');
  const p = url.pathname;
  if (p === '/api/auth') return send(res, 200, { required: !!token });
  if (p === '/health') return send(res, 200, { status: 'healthy', version: '0.1.0-mock', agents: Object.fromEntries(agents.map((a) => [a.name, { status: a.available ? 'available' : 'unavailable', reason: a.reason, breaker: a.breaker }])), uptime_seconds: process.uptime(), active_sessions: sessions.size });
  if (!p.startsWith('/api/')) return serveStatic(res, p);
  if (!authorized(req, url)) return err(res, 401, 'unauthorized', 'missing or bad token');
  let m;
  if (p === '/api/agents') return send(res, 200, { agents });
  if (p === '/api/workflows') return send(res, 200, { workflows, default: 'default' });
  if (p === '/api/tasks' && req.method === 'GET')
    return send(res, 200, { tasks: [...runs.values()].reverse().map((r) => ({ id: r.id, state: r.state, task: r.task, workflow: r.workflow, workspace: r.workspace, started_ms: r.started_ms })) });
  if (p === '/api/tasks' && req.method === 'POST') {
    let b;
    try {
      b = JSON.parse((await readBody(req)).toString() || '{}');
    } catch {
      return err(res, 400, 'bad_json', 'invalid JSON');
    }
    if (typeof b.task !== 'string' || !b.task) return err(res, 400, 'bad_field', 'task: required string');
    if (b.max_iterations !== undefined && !(b.max_iterations >= 1 && b.max_iterations <= 10)) return err(res, 400, 'bad_field', 'max_iterations: 1..10');
    let ws = path.join(root, `ws-${runCounter + 1}`);
    const s = b.session ? sessions.get(b.session) : null;
    if (b.session && !s) return err(res, 404, 'not_found', `no session ${b.session}`);
    if (s) {
      if (!(s.conversation && s.workspace)) s.workspace = ws;
      ws = s.workspace;
    }
    const run = startRun(b.task, b.workflow, b.max_iterations ?? 3, ws, s?.name);
    if (s) {
      s.history.push({ role: 'user', content: b.task });
      s.updated_ms = Date.now();
    }
    return send(res, 202, { id: run.id, state: 'running' });
  }
  if ((m = p.match(/^\/api\/tasks\/([^/]+)(\/.*)?$/))) {
    const run = runs.get(decodeURIComponent(m[1]));
    if (!run) return err(res, 404, 'not_found', `no task ${m[1]}`);
    const rest = m[2] ?? '';
    if (rest === '') return send(res, 200, { id: run.id, state: run.state, task: run.task, workflow: run.workflow, workspace: run.workspace, ...(run.state === 'finished' ? { result: run.events.at(-1).result } : {}) });
    if (rest === '/cancel') {
      run.cancelled = run.state !== 'finished';
      return send(res, 200, { cancelled: run.cancelled });
    }
    if (rest === '/events') {
      const since = Number(req.headers['last-event-id'] ?? url.searchParams.get('since') ?? 0);
      res.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-cache', Connection: 'keep-alive' });
      res.write(': hello\n\n');
      for (const ev of run.events) if (ev.seq > since) writeEvent(res, ev);
      if (run.state === 'finished') return res.end();
      run.subs.add(res);
      req.on('close', () => run.subs.delete(res));
      return;
    }
    if (rest.startsWith('/files')) return files(req, res, url, run.workspace);
  }
  if (p === '/api/sessions' && req.method === 'GET') return send(res, 200, { sessions: [...sessions.values()].map(sessionInfo) });
  if (p === '/api/sessions' && req.method === 'POST') {
    const b = JSON.parse((await readBody(req)).toString() || '{}');
    const name = b.name || `web-${sessions.size + 1}`;
    const s = { name, workflow: b.workflow ?? 'default', conversation: !!b.conversation, history: [], workspace: '', updated_ms: Date.now() };
    sessions.set(name, s);
    return send(res, 201, sessionInfo(s));
  }
  if ((m = p.match(/^\/api\/sessions\/([^/]+)(\/.*)?$/))) {
    const s = sessions.get(decodeURIComponent(m[1]));
    if (!s) return err(res, 404, 'not_found', `no session ${m[1]}`);
    const rest = m[2] ?? '';
    if (rest === '' && req.method === 'GET') return send(res, 200, { ...sessionInfo(s), history: s.history });
    if (rest === '' && req.method === 'DELETE') {
      sessions.delete(s.name);
      return send(res, 200, { deleted: s.name });
    }
    if (rest === '' && req.method === 'PATCH') {
      const b = JSON.parse((await readBody(req)).toString() || '{}');
      if (typeof b.conversation === 'boolean') s.conversation = b.conversation;
      if (typeof b.workflow === 'string') s.workflow = b.workflow;
      return send(res, 200, sessionInfo(s));
    }
    if (rest === '/save') return send(res, 200, { saved: s.name });
    if (rest === '/messages') {
      const b = JSON.parse((await readBody(req)).toString() || '{}');
      const followup = (b.mode === 'followup' || (s.conversation && b.mode !== 'new_task')) && !!s.workspace;
      if (!followup) s.workspace = path.join(root, `ws-${runCounter + 1}`);
      const run = startRun(b.text, s.workflow, 1, s.workspace, s.name);
      s.history.push({ role: 'user', content: b.text });
      return send(res, 202, { id: run.id, followup });
    }
    if (rest.startsWith('/files')) return files(req, res, url, s.workspace);
  }
  return err(res, 404, 'not_found', `no route ${p}`);
});
server.listen(port, '127.0.0.1', () => console.log(`mock API on http://127.0.0.1:${port} (workspaces in ${root})`));
