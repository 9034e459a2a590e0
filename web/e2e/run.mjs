// End-to-end test of the web UI in a real browser: Debian's Chromium,
// headless, driven by playwright-core, against `ai-orchestrator serve` on
// 127.0.0.1 (a free port) with the offline demo agents and a gate agent
// (tests/fakes/gate-agent) that waits for a file this test creates, so
// "mid-run" is a state, not a time. Checks: submit a task, its steps
// complete live, reload mid-run and the run goes on with no gap and no
// repeat, open a generated file, edit and save it (the file on disk
// changes, a backup is made), a follow-up runs in the same workspace,
// sessions, agents, themes, phone width. Saves a screenshot of each view.
//
// Usage: node e2e/run.mjs --binary <ai-orchestrator> --source <repo>
//          --out <artifacts dir> [--docs <dir to copy the screenshots to>]
//          [--chromium /usr/bin/chromium]
import { chromium } from 'playwright-core';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';

const args = process.argv.slice(2);
const opt = (name, def) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : def;
};
const binary = opt('binary');
const source = path.resolve(opt('source', '..'));
const out = path.resolve(opt('out', 'e2e-artifacts'));
const docs = opt('docs', process.env.ORCH_E2E_DOCS ?? '');
const chromiumPath = opt('chromium', '/usr/bin/chromium');
if (!binary) {
  console.error('usage: run.mjs --binary <ai-orchestrator> --source <repo> --out <dir>');
  process.exit(2);
}
const DEADLINE = 60_000;

let passed = 0;
let failed = 0;
function check(name, cond, detail = '') {
  if (cond) {
    console.log(`ok   ${name}`);
    passed++;
  } else {
    console.log(`FAIL ${name}${detail !== '' ? ': ' + (typeof detail === 'string' ? detail : JSON.stringify(detail)) : ''}`);
    failed++;
  }
  return cond;
}

/** Polls `cond` until it returns a truthy value, at most `ms`. */
async function waitFor(what, cond, ms = DEADLINE) {
  const end = Date.now() + ms;
  for (;;) {
    const v = await cond();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

// -- the environment: temp HOME/state, a config with the demo agents and the gate
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'orch-web-e2e-'));
const gate = path.join(tmp, 'gate');
const wsRoot = path.join(tmp, 'ws');
for (const d of [gate, wsRoot, path.join(tmp, 'home'), out]) fs.mkdirSync(d, { recursive: true });
const demo = path.join(source, 'examples', 'demo-agents');
const config = path.join(tmp, 'e2e.yaml');
fs.writeFileSync(
  config,
  `agents:
  demo-codex:
    adapter: codex
    command: ${demo}/demo-codex
    role: implementation
    description: "DEMO agent: offline stand-in for codex"
    deadlines: {first_output: 30, idle: 30, total: 60}
  demo-gemini:
    adapter: gemini
    command: ${demo}/demo-gemini
    role: review
    description: "DEMO agent: offline stand-in for gemini"
    deadlines: {first_output: 30, idle: 30, total: 60}
  gate:
    adapter: command
    command: ${source}/tests/fakes/gate-agent
    env: [GATE_DIR]
    role: review
    description: "waits until the test lets it finish"
    deadlines: {first_output: 90, idle: 90, total: 120}
workflows:
  default:
    description: "e2e: implement, review, then a step that waits for the test"
    max_iterations: 1
    min_suggestions_threshold: 0
    steps:
      - {agent: demo-codex, task: implement}
      - {agent: demo-gemini, task: review}
      - {agent: gate, task: implement}
  quick:
    description: "implement only"
    max_iterations: 1
    steps:
      - {agent: demo-codex, task: implement}
settings:
  workspace_dir: ${wsRoot}
  kill_grace: 2
`,
);
const env = {
  ...process.env,
  HOME: path.join(tmp, 'home'),
  XDG_STATE_HOME: path.join(tmp, 'state'),
  XDG_CONFIG_HOME: path.join(tmp, 'xdg'),
  GATE_DIR: gate,
  NO_COLOR: '1',
};

// -- the server
const serverErr = fs.openSync(path.join(out, 'serve.stderr.log'), 'w');
const server = spawn(binary, ['serve', '--config', config, '--listen', '127.0.0.1:0'], {
  env,
  stdio: ['ignore', 'pipe', serverErr],
});
const base = await new Promise((resolve, reject) => {
  const rl = readline.createInterface({ input: server.stdout });
  const timer = setTimeout(() => reject(new Error('serve did not print its address')), DEADLINE);
  rl.on('line', (line) => {
    const m = line.match(/listening on (http:\/\/127\.0\.0\.1:\d+)/);
    if (m) {
      clearTimeout(timer);
      resolve(m[1]);
    }
  });
  server.on('exit', (code) => reject(new Error(`serve exited with ${code}`)));
});
console.log(`serve at ${base}`);

async function api(p) {
  const r = await fetch(base + p);
  return { status: r.status, body: r.headers.get('content-type')?.includes('json') ? await r.json() : await r.text() };
}

/** Every event of a finished run, as the server sends them (the stream closes after run_finished). */
async function serverEvents(runId) {
  const r = await fetch(`${base}/api/tasks/${encodeURIComponent(runId)}/events?since=0`);
  const text = await r.text();
  return [...text.matchAll(/^id: (\d+)$/gm)].map((m) => Number(m[1]));
}

// -- the browser
const profile = fs.mkdtempSync(path.join(tmp, 'chromium-profile-'));
const context = await chromium.launchPersistentContext(profile, {
  executablePath: chromiumPath,
  headless: true,
  args: [
    '--headless',
    '--no-sandbox',
    '--disable-gpu',
    '--disable-quic',
    '--no-first-run',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
  ],
  viewport: { width: 1280, height: 900 },
  colorScheme: 'dark',
});
const shots = [];
async function shot(page, name, fullPage = false) {
  const file = path.join(out, `${name}.png`);
  await page.screenshot({ path: file, fullPage });
  shots.push(file);
}

let exitCode = 1;
const extraServers = [];
try {
  const page = context.pages()[0] ?? (await context.newPage());
  const pageErrors = [];
  page.on('pageerror', (e) => pageErrors.push(e.message));
  const streamUrls = [];
  page.on('request', (r) => {
    if (r.url().includes('/events?since=')) streamUrls.push(r.url());
  });
  const offsite = [];
  page.on('request', (r) => {
    if (!r.url().startsWith(base) && !r.url().startsWith('data:') && !r.url().startsWith('blob:')) offsite.push(r.url());
  });
  page.setDefaultTimeout(DEADLINE);
  const tid = (id) => page.getByTestId(id);
  const steps = () => page.locator('[data-testid=step]');
  const statuses = () => steps().evaluateAll((els) => els.map((e) => `${e.getAttribute('data-agent')}:${e.getAttribute('data-status')}`));

  // 1. the page, the agents
  await page.goto(base + '/');
  await waitFor('the agents', async () => (await page.locator('[data-testid=agent]').count()) === 3);
  check('the UI is served at /', (await page.title()) === 'ai-orchestrator');
  const deep = await api('/some/client/route');
  check('an unknown path gets index.html', deep.status === 200 && String(deep.body).includes('<div id="app">'));
  const agentStates = await page.locator('[data-testid=agent]').evaluateAll((els) => els.map((e) => `${e.getAttribute('data-agent')}:${e.getAttribute('data-state')}:${e.querySelector('[data-testid=breaker]')?.textContent?.trim()}`));
  // (the gate agent has no --version: its probe says "error", it still runs)
  check('agents listed with their state and breaker', agentStates.join(' ') === 'demo-codex:available:⚡ closed demo-gemini:available:⚡ closed gate:error:⚡ closed', agentStates);
  check('workflows in the select', (await tid('workflow-select').locator('option').allTextContents()).join(',') === 'default,quick');

  // 2. submit with Ctrl+Enter; steps complete live while the gate holds the run
  await tid('task-input').fill('Build a shopping list CLI');
  await tid('task-input').press('Control+Enter');
  await waitFor('the gate step running', async () => {
    const s = await statuses();
    return s.join(' ') === 'demo-codex:ok demo-gemini:ok gate:running' ? s : null;
  });
  const runId = (await tid('run-id').textContent()).trim();
  check('steps complete live, the gate step runs', true);
  check('the run is running', (await tid('run-badge').textContent()).trim() === 'running');
  await waitFor('the gate agent started', () => fs.readdirSync(gate).some((f) => f.startsWith('started-') && !f.endsWith('.tmp')));
  const streamedLines = await page.locator('[data-testid=step] .stream li').count();
  check('tool calls and file changes streamed into the steps', streamedLines > 0, streamedLines);
  await shot(page, '01-task-running');

  // 3. reload mid-run: the stream resumes from the last seq, nothing lost or repeated
  const lastSeqBefore = await page.evaluate(() => JSON.parse(sessionStorage.getItem('orch.run')).lastSeq);
  check('the run id and last seq are kept in sessionStorage', lastSeqBefore > 0, lastSeqBefore);
  const urlsBefore = streamUrls.length;
  await page.reload();
  await waitFor('the stream reopened after the reload', () => streamUrls.length > urlsBefore);
  check('after the reload the stream resumes with ?since=<last seq>', streamUrls[urlsBefore].includes(`since=${lastSeqBefore}`), streamUrls[urlsBefore]);
  check('the steps seen before the reload are back', (await statuses()).join(' ') === 'demo-codex:ok demo-gemini:ok gate:running', await statuses());
  fs.writeFileSync(path.join(gate, 'release-all'), '');
  await waitFor('the run finished', async () => (await tid('run-badge').textContent()).trim() !== 'running');
  check('the run finished', ['converged', 'completed', 'max_iterations'].includes((await tid('run-badge').textContent()).trim()), await tid('run-badge').textContent());
  check('every step ok', (await statuses()).every((s) => s.endsWith(':ok')), await statuses());
  const serverSeqs = await serverEvents(runId);
  await tid('tab-logs').click();
  const logs = await tid('logs').textContent();
  const uiSeqs = [...logs.matchAll(/^#(\d+) /gm)].map((m) => Number(m[1]));
  check('no gap and no repeat: the UI saw exactly the server events', JSON.stringify(uiSeqs) === JSON.stringify(serverSeqs) && uiSeqs.length > 5, { ui: uiSeqs, server: serverSeqs });
  check('the seqs are 1..N', uiSeqs.every((s, i) => s === i + 1));

  // 4. output and iterations
  await tid('tab-output').click();
  await waitFor('the output', async () => (await page.locator('.output-text').count()) > 0);
  check('the output tab shows the final answer', ((await page.locator('.output-text').textContent()) ?? '').length > 0);
  check('usage and cost in the run header', /tokens/.test(await tid('run-head').textContent()));
  await shot(page, '02-finished-output');
  await tid('tab-iterations').click();
  check('findings per iteration', /high|medium|low/.test(await tid('iterations-tab').textContent()), await tid('iterations-tab').textContent());
  await shot(page, '03-iterations');

  // 5. files and the editor: the file on disk changes, a backup is made
  const task = (await api(`/api/tasks/${runId}`)).body;
  const ws = task.workspace ?? task.result?.workspace;
  check('the run has a workspace', !!ws && fs.existsSync(ws), task);
  await tid('tab-files').click();
  await waitFor('the file tree', async () => (await page.locator('[data-testid=file]').count()) > 0);
  const listed = await page.locator('[data-testid=file]').evaluateAll((els) => els.map((e) => e.getAttribute('data-path')));
  check('the file tree lists the generated files', listed.includes('app/main.py'), listed);
  await shot(page, '04-files');
  const [download] = await Promise.all([page.waitForEvent('download'), page.getByTestId('download-app/main.py').click()]);
  const dlPath = path.join(tmp, 'downloaded-main.py');
  await download.saveAs(dlPath);
  check('a file downloads with its bytes', fs.readFileSync(dlPath, 'utf8') === fs.readFileSync(path.join(ws, 'app/main.py'), 'utf8'));
  await page.locator('[data-testid=file][data-path="app/main.py"]').click();
  await waitFor('the editor loaded', async () => (await tid('editor-status').textContent()).includes('loaded'));
  check('the editor highlights Python', (await page.locator('.cm-content span').count()) > 3);
  const marker = '# edited in the browser by web.e2e';
  await page.locator('.cm-content').click();
  await page.keyboard.press('Control+End');
  await page.keyboard.insertText(`\n${marker}\n`);
  await tid('editor-save').click();
  await waitFor('the save', async () => (await tid('editor-status').textContent()).startsWith('saved'));
  const onDisk = fs.readFileSync(path.join(ws, 'app/main.py'), 'utf8');
  check('the edited file is on disk', onDisk.includes(marker));
  const status = await tid('editor-status').textContent();
  const backup = status.match(/backup: (.+)\)$/)?.[1];
  check('the save made a backup of the old file', !!backup && fs.existsSync(path.join(ws, backup)) && !fs.readFileSync(path.join(ws, backup), 'utf8').includes(marker), status);
  await shot(page, '05-editor');

  // 6. a follow-up in the same workspace
  await tid('followup-input').fill('add input validation to the CLI');
  await tid('followup-submit').click();
  await waitFor('the follow-up run', async () => (await tid('run-id').textContent()).trim() !== runId);
  const followId = (await tid('run-id').textContent()).trim();
  await waitFor('the follow-up finished', async () => (await tid('run-badge').textContent()).trim() !== 'running');
  const follow = (await api(`/api/tasks/${followId}`)).body;
  check('the follow-up ran in the same workspace', (follow.workspace ?? follow.result?.workspace) === ws, { first: ws, follow });
  const followSeqs = await serverEvents(followId);
  await tid('tab-logs').click();
  const followUi = [...(await tid('logs').textContent()).matchAll(/^#(\d+) /gm)].map((m) => Number(m[1]));
  check('the follow-up streamed every event once', JSON.stringify(followUi) === JSON.stringify(followSeqs), { ui: followUi, server: followSeqs });
  await tid('tab-output').click();

  // 7. sessions: the page's session, saved
  await waitFor('the session listed', async () => (await page.locator('[data-testid=session]').count()) > 0);
  const sessionName = (await page.locator('[data-testid=session].current .name').textContent()).replace('current', '').trim();
  await tid('session-save').click();
  await waitFor('the saved session', async () => /Saved as /.test((await page.locator('[data-testid=notice]').textContent().catch(() => '')) ?? ''));
  const saved = path.join(tmp, 'state', 'ai-orchestrator', 'sessions', `${sessionName}.json`);
  check('the session was saved to the state folder', fs.existsSync(saved), saved);
  const sessions = (await api('/api/sessions')).body.sessions ?? [];
  check('the sessions list has it with its two tasks', sessions.some((s) => s.name === sessionName && s.tasks >= 2), sessions);
  await page.locator('.sidebar').screenshot({ path: path.join(out, '06-sessions-agents.png') });
  shots.push(path.join(out, '06-sessions-agents.png'));

  // 8. themes and phone width
  check('dark theme first (the browser prefers dark)', (await page.evaluate(() => document.documentElement.dataset.theme)) === 'dark');
  await shot(page, '07-dark');
  await tid('theme-toggle').click();
  check('the toggle switches to the light theme', (await page.evaluate(() => document.documentElement.dataset.theme)) === 'light');
  const bg = await page.evaluate(() => getComputedStyle(document.body).backgroundColor);
  check('the light theme has a light background', bg === 'rgb(245, 247, 250)', bg);
  await shot(page, '08-light');
  await page.setViewportSize({ width: 375, height: 812 });
  const overflow = await page.evaluate(() => {
    const wide = [];
    for (const e of document.querySelectorAll('body *')) {
      const r = e.getBoundingClientRect();
      if (r.right > window.innerWidth + 1 && !e.closest('.tabs, .cm-editor, pre, .stream')) wide.push(`${e.tagName.toLowerCase()}.${e.className} ${Math.round(r.right)}px`);
    }
    return { by: document.documentElement.scrollWidth - window.innerWidth, wide: wide.slice(0, 8) };
  });
  check('no horizontal scrolling at 375 px', overflow.by <= 0, overflow);
  await shot(page, '09-phone');
  await tid('theme-toggle').click();
  await page.evaluate(() => document.querySelector('[data-testid=steps]')?.scrollIntoView());
  await shot(page, '10-phone-dark-run');

  // 9. a server that asks for a token: the login box, then Bearer and ?token=
  const errLog2 = path.join(out, 'serve-token.stderr.log');
  const server2 = spawn(binary, ['serve', '--config', config, '--listen', '127.0.0.1:0', '--token-required'], {
    env,
    stdio: ['ignore', 'pipe', fs.openSync(errLog2, 'w')],
  });
  extraServers.push(server2);
  const base2 = await new Promise((resolve, reject) => {
    const rl = readline.createInterface({ input: server2.stdout });
    rl.on('line', (line) => {
      const m = line.match(/listening on (http:\/\/127\.0\.0\.1:\d+)/);
      if (m) resolve(m[1]);
    });
    server2.on('exit', (code) => reject(new Error(`serve --token-required exited with ${code}`)));
  });
  const token = await waitFor('the token on stderr', () => {
    const lines = fs.readFileSync(errLog2, 'utf8').split('\n');
    const i = lines.findIndex((l) => l.startsWith('API token'));
    return i >= 0 && lines[i + 1] ? lines[i + 1].trim() : null;
  });
  const page2 = await context.newPage();
  page2.setDefaultTimeout(DEADLINE);
  await page2.goto(base2 + '/');
  await page2.getByTestId('login').waitFor();
  check('a token-protected server shows the login box', await page2.getByTestId('login').isVisible());
  await page2.locator('[data-testid=login] input').fill('wrong-token');
  await page2.locator('[data-testid=login] button').click();
  await page2.getByText('The token was refused.').waitFor();
  check('a wrong token is refused', true);
  await page2.locator('[data-testid=login] input').fill(token);
  await page2.locator('[data-testid=login] button').click();
  await waitFor('the agents behind the token', async () => (await page2.locator('[data-testid=agent]').count()) === 3);
  check('the right token opens the UI', true);
  await page2.getByTestId('workflow-select').selectOption('quick');
  await page2.getByTestId('task-input').fill('Build a shopping list CLI');
  await page2.getByTestId('submit').click();
  await waitFor('the quick run finished', async () => {
    const t = (await page2.getByTestId('run-badge').textContent().catch(() => '')) ?? '';
    return t.trim() !== '' && t.trim() !== 'running';
  });
  check('the run streamed with the token (?token=) to its end', (await page2.locator('[data-testid=step][data-status=ok]').count()) === 1);
  await page2.close();

  check('no script errors in the page', pageErrors.length === 0, pageErrors);
  check('no request left 127.0.0.1 (nothing from a CDN)', offsite.length === 0, offsite);
  exitCode = failed === 0 ? 0 : 1;
} catch (e) {
  console.log(`FAIL ${e instanceof Error ? e.stack : e}`);
  failed++;
  exitCode = 1;
} finally {
  await context.close().catch(() => {});
  for (const p of [server, ...extraServers]) if (p.exitCode === null) p.kill('SIGTERM');
  for (const p of extraServers) await new Promise((r) => (p.exitCode !== null ? r() : p.once('exit', r)));
  await new Promise((r) => (server.exitCode !== null ? r() : server.once('exit', r)));
  if (docs && exitCode === 0) {
    fs.mkdirSync(docs, { recursive: true });
    for (const f of shots) fs.copyFileSync(f, path.join(docs, path.basename(f)));
    console.log(`screenshots copied to ${docs}`);
  }
  console.log(`screenshots in ${out}`);
  fs.rmSync(tmp, { recursive: true, force: true });
}
console.log(`${passed} passed, ${failed} failed`);
process.exit(exitCode);
