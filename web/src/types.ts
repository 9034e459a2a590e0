// Shapes of the server's JSON (see the HTTP API contract of `ai-orchestrator serve`).

export type EventKind =
  | 'run_started'
  | 'iteration_started'
  | 'step_started'
  | 'agent_event'
  | 'step_finished'
  | 'step_notice'
  | 'run_finished';

export interface Usage {
  input_tokens?: number;
  output_tokens?: number;
  cached_tokens?: number;
  cost_usd?: number | null;
}

export interface Finding {
  severity?: string;
  file?: string;
  line?: number;
  text?: string;
}

export interface StepJson {
  step?: number;
  agent?: string;
  task?: string;
  status?: string;
  failure?: string;
  message?: string;
  duration_ms?: number;
  usage?: Usage;
  findings?: Finding[];
  files?: string[];
  output?: string;
  ran_as?: string;
  cached?: boolean;
}

export interface IterationJson {
  iteration: number;
  open_findings?: number | null;
  steps: StepJson[];
}

export interface RunResult {
  run_id?: string;
  workflow?: string;
  task?: string;
  status?: string;
  message?: string;
  workspace?: string;
  duration_ms?: number;
  usage?: Usage;
  iterations?: IterationJson[];
  findings?: Finding[];
  files?: string[];
}

export interface ProgressEvent {
  seq: number;
  kind: EventKind;
  run_id: string;
  iteration?: number;
  step_index?: number;
  step_count?: number;
  agent?: string;
  task_kind?: string;
  text?: string;
  ok?: boolean;
  elapsed_ms?: number;
  step?: StepJson;
  result?: RunResult;
}

/** A circuit breaker: a state name, or `{state, open_until_ms, reason}`. */
export type BreakerInfo = string | { state?: string; open_until_ms?: number | null; reason?: string };

export interface AgentInfo {
  name: string;
  enabled?: boolean;
  available?: boolean;
  /** "available" | "unavailable" | "disabled" | ... (agents --json) */
  status?: string;
  detail?: string;
  reason?: string;
  adapter?: string;
  breaker?: BreakerInfo;
  max_concurrency?: number;
  role?: string;
  description?: string;
}

export interface WorkflowStep {
  agent?: string;
  task?: string;
  parallel?: WorkflowStep[];
}

export interface WorkflowInfo {
  name: string;
  description?: string;
  max_iterations?: number;
  steps: WorkflowStep[];
}

export interface SessionInfo {
  name: string;
  workflow?: string;
  conversation?: boolean;
  tasks?: number;
  workspace?: string;
  updated_ms?: number;
}

export interface FileEntry {
  path: string;
  size: number;
  mtime_ms?: number;
}

export interface HealthInfo {
  status: string;
  version?: string;
  agents?: Record<string, { status?: string; reason?: string; breaker?: BreakerInfo }>;
  uptime_seconds?: number;
  active_sessions?: number;
}
