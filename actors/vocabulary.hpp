#pragma once

// The message vocabulary of the runtime: payload structs, their `inspect`
// overloads (so every message can cross to another node), the atoms, the
// single type-ID block and the typed actor interfaces.

#include <cstdint>
#include <string>
#include <vector>

#include <caf/actor.hpp>
#include <caf/atom.hpp>
#include <caf/error.hpp>
#include <caf/meta/type_name.hpp>
#include <caf/replies_to.hpp>
#include <caf/type_id.hpp>
#include <caf/typed_actor.hpp>

#include "config/config.hpp"
#include "runtime/events.hpp"
#include "runtime/review.hpp"
#include "runtime/step_cache_store.hpp"

// -- atoms
// ----------------------------------------------------------------------

// Declared by hand (the same expansion as CAF_ADD_ATOM) because the typed
// interfaces below, and payloads holding them, need the atoms first.
#define ORCH_ATOM(name, text)                                                  \
  using name = caf::atom_constant<caf::atom(text)>;                            \
  constexpr name name##_v = name{};

namespace orch::atom {

ORCH_ATOM(run_step, "runStep")
ORCH_ATOM(run_task, "runTask")
ORCH_ATOM(cancel, "cancel")
ORCH_ATOM(progress, "progress")
ORCH_ATOM(tick, "orchTick")
ORCH_ATOM(flush, "orchFlush")
ORCH_ATOM(submit, "submit")
ORCH_ATOM(result, "result")
ORCH_ATOM(list, "list")
ORCH_ATOM(status, "status")
ORCH_ATOM(subscribe, "subscribe")
ORCH_ATOM(unsubscribe, "unsubscr")
ORCH_ATOM(admit, "admit")
ORCH_ATOM(retry, "orchRetry")
ORCH_ATOM(cache_get, "cacheGet")
ORCH_ATOM(cache_put, "cachePut")
// The session actor (actors/session_actor.hpp).
ORCH_ATOM(say, "sessSay")
ORCH_ATOM(history, "sessHist")
ORCH_ATOM(context, "sessCtx")
ORCH_ATOM(info, "sessInfo")
ORCH_ATOM(reset, "sessReset")
ORCH_ATOM(save, "sessSave")
ORCH_ATOM(load, "sessLoad")
ORCH_ATOM(set_workflow, "sessWflow")
ORCH_ATOM(set_agent, "sessAgent")
// -- h16b
// Worker nodes (actors/node.hpp, actors/node_pool.hpp).
ORCH_ATOM(node_hello, "nodeHello")
ORCH_ATOM(node_info, "nodeInfo")
ORCH_ATOM(node_run, "nodeRun")

} // namespace orch::atom

#undef ORCH_ATOM

namespace orch {

struct progress_event;

/// Receives live progress notices (the CLI display, later the web UI).
using progress_sink
  = caf::typed_actor<caf::reacts_to<atom::progress, progress_event>>;

// -- payloads -----------------------------------------------------------------

/// A path an agent named that was not written, and why.
struct refused_path {
  std::string path;
  std::string reason;
};

/// One step of one iteration, addressed to one agent actor.
struct step_request {
  std::string run_id;
  int32_t iteration = 1;
  int32_t step_index = 0;
  std::string agent;
  std::string task_kind;
  std::string prompt;
  /// Absolute workspace path; the agent's working directory.
  std::string workspace;
  /// True when the step's answer is read as review findings.
  bool review = false;
  /// Receives progress_event messages while the step runs (may be null).
  progress_sink progress;
  /// Set when an agent hands the step to one of its fallback agents: the
  /// agent it falls back from. Such a step falls back no further.
  std::string fallback_of;
  /// True when the step must run even if the step cache holds its outcome
  /// (`run --no-cache`); it is not stored either.
  bool no_cache = false;
};

/// One attempt of a step that was tried more than once (retries, quota
/// waits) or handed to a fallback agent.
struct attempt_record {
  /// The agent that ran (or refused) this attempt.
  std::string agent;
  /// none when the attempt succeeded.
  failure_kind failure = failure_kind::none;
  /// First line of the failure message.
  std::string message;
  int64_t started_ms = 0;
  int64_t duration_ms = 0;
  /// Workspace-relative files the attempt changed; a retry runs on the
  /// workspace as this attempt left it.
  std::vector<std::string> files;
};

/// What one step produced, judged.
struct step_result {
  std::string agent;
  std::string task_kind;
  int32_t iteration = 1;
  int32_t step_index = 0;
  step_outcome outcome;
  /// Findings parsed from a review step's answer.
  std::vector<finding> findings;
  /// Workspace-relative files written or changed by this step.
  std::vector<std::string> files;
  std::vector<refused_path> refused;
  /// Workspace-relative files that existed before the step and not after.
  std::vector<std::string> deleted;
  /// Workspace-relative backups made before this step overwrote a file.
  std::vector<std::string> backups;
  /// Files this step claims, workspace-relative and sorted: those its CLI
  /// said it changed (file_change events; absolute paths under the workspace
  /// made relative, others dropped) and those written from code blocks of its
  /// answer. Used to attribute changes between items of a parallel group
  /// (see attribute_group).
  std::vector<std::string> reported_files;
  /// Files (changed or deleted) that another item of the same parallel group
  /// claims too, or that several items saw change while none claimed them:
  /// whose content is on disk cannot be told (the last writer's).
  std::vector<std::string> conflicts;
  /// Workspace-relative file holding the step's whole final output when
  /// `outcome.final_text` was cut to an excerpt; empty when it is whole.
  std::string output_file;
  /// sha256 (hex) of the agent's argv, NUL-separated, for the audit log
  /// (the argv itself may hold the prompt); empty when no process ran.
  std::string argv_sha256;
  int64_t started_ms = 0;
  int64_t duration_ms = 0;
  /// Every attempt in order, the last one included, when there was more
  /// than one (retries, quota waits, fallbacks); empty for a single try.
  std::vector<attempt_record> attempts;
  /// The agent that really ran the step (`agent` asked for it); differs
  /// when a fallback agent took it over.
  std::string ran_as;
  /// Why the step went to `ran_as` instead of `agent` ("rate_limited:
  /// ..."); empty when no fallback happened.
  std::string fallback_reason;
  /// True when the step cache answered: no process ran, the stored outcome
  /// was replayed and its files written again.
  bool cached = false;
  /// When `listed`: the workspace's files after the step as a prompt lists
  /// them (workspace_listing of the snapshot taken after the agent, with the
  /// files written from its answer), so that the next step's prompt needs no
  /// walk of its own. Not part of the run's record: the workflow takes it.
  std::vector<std::string> workspace_files;
  bool listed = false;
};

/// Returns a result addressed like `req` (agent, task kind, iteration,
/// step), for the caller to fill in.
inline step_result result_for(const step_request& req) {
  step_result res;
  res.agent = req.agent;
  res.task_kind = req.task_kind;
  res.iteration = req.iteration;
  res.step_index = req.step_index;
  return res;
}

/// A whole task for a workflow-run actor.
struct run_request {
  std::string run_id;
  std::string task;
  std::string workflow;
  std::string workspace;
  /// Overrides the workflow's max_iterations when > 0.
  int32_t max_iterations = 0;
  progress_sink progress;
  /// The resolved workflow of this run (per-run `--agents` applied). When it
  /// has no steps, the workflow actor looks `workflow` up in its config.
  workflow_config workflow_def;
  /// Bypass the step cache for every step (`run --no-cache`).
  bool no_cache = false;
  /// A follow-up in a workspace an earlier run of the same session already
  /// preserved: the existing files are not copied to backups again.
  bool followup = false;
};

/// What a front door submits to the coordinator: a run before validation.
struct run_spec {
  std::string task;
  /// Workflow name.
  std::string workflow;
  /// `--agents` csv: one name for every step item, or one per item in order;
  /// empty keeps the workflow's agents.
  std::string agents;
  /// Overrides the workflow's max_iterations when > 0.
  int32_t max_iterations = 0;
  /// Empty: `<settings.workspace_dir>/<run id>`.
  std::string workspace;
  /// Who submits it, for the rate limiter and the audit log (the OS user
  /// for the CLI and shell, later an API token's owner); empty: the OS user
  /// of the coordinator's process.
  std::string user;
  /// Bypass the step cache (`run --no-cache`): every step runs, and none is
  /// stored.
  bool no_cache = false;
  /// A session's follow-up: runs in the workspace of the session's previous
  /// task without copying its existing files to backups again.
  bool followup = false;
  /// The submitter's name for the run (a batch task's id); empty: none. A
  /// node pool names the run's folder under `--out-dir` after it.
  std::string label;
};

/// How a run ended.
enum class run_status : uint8_t {
  /// A review reported open findings <= the threshold.
  converged,
  /// Every step of a workflow without review steps succeeded.
  completed,
  /// max_iterations rounds ran and findings were still open.
  max_iterations,
  /// A review repeated the previous review's findings.
  no_progress,
  /// A step failed; see the message and the step's failure kind.
  failed,
  /// Interrupted (Ctrl-C) or cancelled.
  cancelled,
};

std::string to_string(run_status x);

struct iteration_record {
  int32_t number = 1;
  std::vector<step_result> steps;
  /// Open findings after this iteration's last review (-1: no review ran).
  int32_t open_findings = -1;
};

struct run_result {
  std::string run_id;
  std::string task;
  std::string workflow;
  std::string workspace;
  run_status status = run_status::failed;
  std::string message;
  std::vector<iteration_record> iterations;
  /// Findings still open at the end.
  std::vector<finding> findings;
  /// Every file written in the run, sorted, unique.
  std::vector<std::string> files;
  /// Files that were in the workspace before the run, saved to its backup
  /// folder (`.orchestrator/backups/<run_id>/`) before the first step.
  int32_t preserved_files = 0;
  /// Why the existing files could not be saved, if so.
  std::string preserve_error;
  orch::usage tokens;
  int64_t duration_ms = 0;
};

/// A live progress notice for displays (CLI, later the web UI).
struct progress_event {
  enum class kind_t : uint8_t {
    run_started,
    iteration_started,
    step_started,
    agent_event,
    step_finished,
    run_finished,
    /// A step waits to be retried (retry n/m in t, a quota wait) or goes to
    /// a fallback agent; `text` says which.
    step_notice,
  };
  kind_t kind = kind_t::step_started;
  std::string run_id;
  int32_t iteration = 0;
  int32_t step_index = 0;
  int32_t step_count = 0;
  std::string agent;
  std::string task_kind;
  std::string text;
  bool ok = true;
  int64_t elapsed_ms = 0;
  /// Per-run sequence number, from 1, assigned by the coordinator's fan-out
  /// (0: not stamped, e.g. sent by a workflow actor directly).
  uint64_t seq = 0;
};

/// The rate limiter's answer to one submission.
struct admission {
  bool admitted = true;
  /// When refused: ms until the next run is allowed.
  int64_t wait_ms = 0;
  /// The bucket's key: the user, or "*" when one bucket is shared.
  std::string user;
  /// When refused: the error text ("rate limit: 20 runs per minute for user
  /// alice; next run allowed in 2.4s").
  std::string message;
};

/// The step cache's answer to a lookup.
struct cache_lookup {
  bool hit = false;
  /// Meaningful when `hit`.
  step_cache_entry entry;
};

/// Returns a progress event of `kind` about the step `req`, saying `text`.
inline progress_event event_for(const step_request& req,
                                progress_event::kind_t kind, std::string text) {
  progress_event pe;
  pe.kind = kind;
  pe.run_id = req.run_id;
  pe.iteration = req.iteration;
  pe.step_index = req.step_index;
  pe.agent = req.agent;
  pe.task_kind = req.task_kind;
  pe.text = std::move(text);
  return pe;
}

/// What the coordinator knows of one run.
struct run_info {
  std::string run_id;
  std::string workflow;
  std::string task;
  std::string workspace;
  /// queued, running or finished.
  std::string state;
  /// Meaningful once `state` is finished.
  run_status status = run_status::failed;
  /// Wall clock, ms since the epoch.
  int64_t started_ms = 0;
};

/// How a session reads a user message (see runtime/followup.hpp).
enum class followup_mode : uint8_t {
  /// Decide from the message and whether there is a previous task.
  detect,
  /// Continue the previous task (`/followup`, or "continue" after asking).
  followup,
  /// Start a new task.
  new_task,
};

/// What a session made of a user message.
enum class message_kind : uint8_t {
  /// Submitted as a new task.
  new_task,
  /// Submitted as a follow-up to the previous task.
  followup,
  /// Nothing submitted: ask the user (continue / new / cancel), then send
  /// the message again with followup_mode::followup or new_task.
  ambiguous,
};

/// A user message for a session actor.
struct session_message {
  std::string text;
  followup_mode mode = followup_mode::detect;
  /// When set, subscribed to the run's progress at the coordinator (from
  /// the first event) for the run this message starts.
  progress_sink progress;
  // -- h14c: per-message overrides of the run this message starts (a new
  // task or a follow-up alike); the session's own settings stay as they are.
  // Brace-initialised so `session_message{text, mode, sink}` stays free of
  // -Wmissing-field-initializers.
  /// The workflow of this run only; empty: the session's workflow.
  std::string workflow{};
  /// Overrides the workflow's max_iterations when > 0.
  int32_t max_iterations = 0;
  /// `run --agents` csv for this run; empty: the session's agent setting.
  std::string agents{};
  /// Bypass the step cache for this run (`run --no-cache`).
  bool no_cache = false;
};

/// A session's answer to a user message: the run started, or why not.
struct session_submitted {
  message_kind kind = message_kind::new_task;
  /// The run started; empty when ambiguous.
  std::string run_id;
  /// Why it was read so ("follow-up: short message with \"add\"").
  std::string reason;
  /// The task text submitted (a follow-up's carries the previous task's
  /// summary and files); empty when ambiguous.
  std::string task;
  std::string workspace;
  std::string workflow;
  /// The agent override the run used ("" = the workflow's agents).
  std::string agent;
};

/// One message of a session's conversation.
struct session_entry {
  /// "user" or "assistant".
  std::string role;
  std::string content;
  /// Workspace-relative files the answer generated (assistant only).
  std::vector<std::string> files;
  /// UTC, ISO 8601 ("2024-01-15T10:00:00Z").
  std::string timestamp;
  /// The run this message started or answered; may be empty.
  std::string run_id;
};

/// What a follow-up continues: the session's previous task.
struct session_context {
  /// False until a task has finished in this session.
  bool has_previous = false;
  /// The user's words of the previous task (not the nested prompt).
  std::string previous_task;
  /// A bounded summary of the previous output.
  std::string summary;
  /// Files generated so far in the workspace (workspace-relative, sorted).
  std::vector<std::string> files;
  std::string workspace;
  std::string workflow;
  /// UTC, ISO 8601, when the previous task finished.
  std::string timestamp;
  std::string run_id;
  run_status status = run_status::failed;
};

/// The state of a session, for /info, prompts and exit checks.
struct session_info {
  std::string session_id;
  /// The name it was last saved or loaded as; empty when never.
  std::string name;
  /// UTC, ISO 8601.
  std::string created_at;
  std::string workflow;
  /// `/switch` override: every step runs with this agent; empty = none.
  std::string agent;
  std::string workspace;
  int32_t messages = 0;
  /// Messages added since the last save or load (0 = nothing to lose).
  int32_t unsaved = 0;
  /// The run in progress; empty when idle.
  std::string running;
  /// Where it was last saved or loaded from; empty when never.
  std::string path;
};

// -- h16b
/// What a worker node says of itself (actors/node.hpp): at connect (the
/// answer to node_hello) and on `workers`.
struct node_status {
  /// ai-orchestrator version of the node (ORCH_VERSION).
  std::string version;
  /// Fingerprint of the node's message vocabulary (vocabulary_fingerprint).
  std::string vocabulary;
  /// Runs the node takes at once.
  int32_t slots = 1;
  /// Runs it is running now.
  int32_t running = 0;
  /// The enabled agents that can run there (installed, not disabled).
  std::vector<std::string> agents;
  /// The enabled agents that cannot, each "name: why".
  std::vector<std::string> unavailable;
  /// Runs it finished since it started.
  int64_t finished = 0;
};

/// One worker node as a node pool last heard from it (the answer to
/// coordinator_actor's node_info; a local coordinator has none).
struct node_report {
  /// "host:port" as given to --workers.
  std::string address;
  /// Connected now.
  bool alive = false;
  /// Why not, when not.
  std::string error;
  /// What it said when it joined: the agents it can run, its slots.
  node_status status;
};

/// One file a run wrote, brought back from a worker node (or one a run
/// starts from, sent to it).
struct run_file {
  /// Workspace-relative, '/'-separated.
  std::string path;
  std::string content;
};

/// One run for a worker node: a pool's task id (the run id on the pool's
/// side), the attempt (a task requeued after its node died runs again with
/// the next one) and the spec, run there in the node's own workspace.
struct node_task {
  std::string task_id;
  int32_t attempt = 1;
  run_spec spec;
  /// The files the run starts from (the pool side's workspace named by the
  /// spec, e.g. a session's, size-bounded): written into a fresh workspace
  /// on the node before the run. Empty: a fresh empty workspace.
  std::vector<run_file> seed;
};

/// What a worker node answers for a node_task: the run's result and the
/// files it wrote, size-bounded (node_deps::max_result_bytes): a file that
/// would take the total over the bound, or that cannot be read safely, is
/// left out and named in `omitted` ("path: why").
struct node_outcome {
  std::string task_id;
  int32_t attempt = 1;
  /// The node's address as the node sees itself ("host:port").
  std::string node;
  run_result result;
  std::vector<run_file> files;
  std::vector<std::string> omitted;
};

// -- inspect (CAF 0.17 form) --------------------------------------------------

template<class Inspector>
typename Inspector::result_type inspect(Inspector& f, usage& x) {
  return f(caf::meta::type_name("orch::usage"), x.input_tokens, x.output_tokens,
           x.cached_tokens, x.cost_usd, x.has_cost);
}

template<class Inspector>
typename Inspector::result_type inspect(Inspector& f, finding& x) {
  return f(caf::meta::type_name("orch::finding"), x.severity, x.file, x.line,
           x.text);
}

template<class Inspector>
typename Inspector::result_type inspect(Inspector& f, step_outcome& x) {
  return f(caf::meta::type_name("orch::step_outcome"), x.ok, x.failure,
           x.message, x.final_text, x.session_id, x.tokens, x.reported_files,
           x.exit_code, x.truncated, x.retry_at_ms);
}

template<class Inspector>
typename Inspector::result_type inspect(Inspector& f, refused_path& x) {
  return f(caf::meta::type_name("orch::refused_path"), x.path, x.reason);
}

template<class Inspector>
typename Inspector::result_type inspect(Inspector& f, step_request& x) {
  return f(caf::meta::type_name("orch::step_request"), x.run_id, x.iteration,
           x.step_index, x.agent, x.task_kind, x.prompt, x.workspace, x.review,
           x.progress, x.fallback_of, x.no_cache);
}

template<class Inspector>
typename Inspector::result_type inspect(Inspector& f, attempt_record& x) {
  return f(caf::meta::type_name("orch::attempt_record"), x.agent, x.failure,
           x.message, x.started_ms, x.duration_ms, x.files);
}

template<class Inspector>
typename Inspector::result_type inspect(Inspector& f, step_result& x) {
  return f(caf::meta::type_name("orch::step_result"), x.agent, x.task_kind,
           x.iteration, x.step_index, x.outcome, x.findings, x.files, x.refused,
           x.deleted, x.backups, x.reported_files, x.conflicts, x.output_file,
           x.argv_sha256, x.started_ms, x.duration_ms, x.attempts, x.ran_as,
           x.fallback_reason, x.cached, x.workspace_files, x.listed);
}

template<class Inspector>
typename Inspector::result_type inspect(Inspector& f, step_item& x) {
  return f(caf::meta::type_name("orch::step_item"), x.agent, x.task,
           x.description);
}

template<class Inspector>
typename Inspector::result_type inspect(Inspector& f, step_config& x) {
  return f(caf::meta::type_name("orch::step_config"), x.items);
}

template<class Inspector>
typename Inspector::result_type inspect(Inspector& f, workflow_config& x) {
  return f(caf::meta::type_name("orch::workflow_config"), x.name, x.description,
           x.max_iterations, x.min_suggestions_threshold, x.steps);
}

template<class Inspector>
typename Inspector::result_type inspect(Inspector& f, run_request& x) {
  return f(caf::meta::type_name("orch::run_request"), x.run_id, x.task,
           x.workflow, x.workspace, x.max_iterations, x.progress,
           x.workflow_def, x.no_cache, x.followup);
}

template<class Inspector>
typename Inspector::result_type inspect(Inspector& f, run_spec& x) {
  return f(caf::meta::type_name("orch::run_spec"), x.task, x.workflow, x.agents,
           x.max_iterations, x.workspace, x.user, x.no_cache, x.followup,
           x.label);
}

template<class Inspector>
typename Inspector::result_type inspect(Inspector& f, admission& x) {
  return f(caf::meta::type_name("orch::admission"), x.admitted, x.wait_ms,
           x.user, x.message);
}

template<class Inspector>
typename Inspector::result_type inspect(Inspector& f, cached_file& x) {
  return f(caf::meta::type_name("orch::cached_file"), x.path, x.content);
}

template<class Inspector>
typename Inspector::result_type inspect(Inspector& f, cached_refusal& x) {
  return f(caf::meta::type_name("orch::cached_refusal"), x.path, x.reason);
}

template<class Inspector>
typename Inspector::result_type inspect(Inspector& f, step_cache_entry& x) {
  return f(caf::meta::type_name("orch::step_cache_entry"), x.key, x.created_ms,
           x.agent, x.task_kind, x.outcome, x.findings, x.files, x.deleted,
           x.reported_files, x.refused, x.duration_ms);
}

template<class Inspector>
typename Inspector::result_type inspect(Inspector& f, cache_lookup& x) {
  return f(caf::meta::type_name("orch::cache_lookup"), x.hit, x.entry);
}

template<class Inspector>
typename Inspector::result_type inspect(Inspector& f, run_info& x) {
  return f(caf::meta::type_name("orch::run_info"), x.run_id, x.workflow, x.task,
           x.workspace, x.state, x.status, x.started_ms);
}

template<class Inspector>
typename Inspector::result_type inspect(Inspector& f, iteration_record& x) {
  return f(caf::meta::type_name("orch::iteration_record"), x.number, x.steps,
           x.open_findings);
}

template<class Inspector>
typename Inspector::result_type inspect(Inspector& f, run_result& x) {
  return f(caf::meta::type_name("orch::run_result"), x.run_id, x.task,
           x.workflow, x.workspace, x.status, x.message, x.iterations,
           x.findings, x.files, x.preserved_files, x.preserve_error, x.tokens,
           x.duration_ms);
}

template<class Inspector>
typename Inspector::result_type inspect(Inspector& f, progress_event& x) {
  return f(caf::meta::type_name("orch::progress_event"), x.kind, x.run_id,
           x.iteration, x.step_index, x.step_count, x.agent, x.task_kind,
           x.text, x.ok, x.elapsed_ms, x.seq);
}

template<class Inspector>
typename Inspector::result_type inspect(Inspector& f, session_message& x) {
  return f(caf::meta::type_name("orch::session_message"), x.text, x.mode,
           x.progress, x.workflow, x.max_iterations, x.agents, x.no_cache);
}

template<class Inspector>
typename Inspector::result_type inspect(Inspector& f, session_submitted& x) {
  return f(caf::meta::type_name("orch::session_submitted"), x.kind, x.run_id,
           x.reason, x.task, x.workspace, x.workflow, x.agent);
}

template<class Inspector>
typename Inspector::result_type inspect(Inspector& f, session_entry& x) {
  return f(caf::meta::type_name("orch::session_entry"), x.role, x.content,
           x.files, x.timestamp, x.run_id);
}

template<class Inspector>
typename Inspector::result_type inspect(Inspector& f, session_context& x) {
  return f(caf::meta::type_name("orch::session_context"), x.has_previous,
           x.previous_task, x.summary, x.files, x.workspace, x.workflow,
           x.timestamp, x.run_id, x.status);
}

template<class Inspector>
typename Inspector::result_type inspect(Inspector& f, session_info& x) {
  return f(caf::meta::type_name("orch::session_info"), x.session_id, x.name,
           x.created_at, x.workflow, x.agent, x.workspace, x.messages,
           x.unsaved, x.running, x.path);
}

// -- h16a

/// Where a batch stands (actors/batch.hpp): counts of its tasks so far.
struct batch_stats {
  /// Valid tasks of the input (not counting those skipped), when known
  /// (the CLI counts them first); 0: unknown.
  uint64_t total = 0;
  /// Tasks passed over because the output already held their id (--resume).
  uint64_t skipped = 0;
  /// Input lines that were not a task (reported, skipped).
  uint64_t bad_lines = 0;
  /// Submitted and not yet answered.
  uint64_t running = 0;
  /// Ended with a result line whose status is not failed.
  uint64_t succeeded = 0;
  /// Ended with a failed result line (refusals included).
  uint64_t failed = 0;
  /// Of `failed`: refused by the coordinator before running.
  uint64_t refused = 0;
  /// Since the batch started.
  int64_t elapsed_ms = 0;
  /// True once stopped by a cancel (Ctrl-C) or an error: no new task starts.
  bool stopped = false;
  /// Why it stopped early other than by a cancel (an output write failed,
  /// the coordinator went down); empty otherwise.
  std::string error;
};

template<class Inspector>
typename Inspector::result_type inspect(Inspector& f, batch_stats& x) {
  return f(caf::meta::type_name("orch::batch_stats"), x.total, x.skipped,
           x.bad_lines, x.running, x.succeeded, x.failed, x.refused,
           x.elapsed_ms, x.stopped, x.error);
}

// -- h16b
template<class Inspector>
typename Inspector::result_type inspect(Inspector& f, node_status& x) {
  return f(caf::meta::type_name("orch::node_status"), x.version, x.vocabulary,
           x.slots, x.running, x.agents, x.unavailable, x.finished);
}

template<class Inspector>
typename Inspector::result_type inspect(Inspector& f, node_report& x) {
  return f(caf::meta::type_name("orch::node_report"), x.address, x.alive,
           x.error, x.status);
}

template<class Inspector>
typename Inspector::result_type inspect(Inspector& f, node_task& x) {
  return f(caf::meta::type_name("orch::node_task"), x.task_id, x.attempt,
           x.spec, x.seed);
}

template<class Inspector>
typename Inspector::result_type inspect(Inspector& f, run_file& x) {
  return f(caf::meta::type_name("orch::run_file"), x.path, x.content);
}

template<class Inspector>
typename Inspector::result_type inspect(Inspector& f, node_outcome& x) {
  return f(caf::meta::type_name("orch::node_outcome"), x.task_id, x.attempt,
           x.node, x.result, x.files, x.omitted);
}

/// Error codes of the runtime, sent as caf::error.
enum class errc : uint8_t {
  /// A request named an agent or workflow that does not exist.
  unknown_name = 1,
  /// The request itself is malformed.
  invalid_request,
  /// An agent the run needs is not installed or is disabled.
  agent_unavailable,
  /// The workspace cannot be created or used.
  workspace_failed,
  /// Another run holds the workspace's lock (the message names it).
  workspace_locked,
  /// No run with that id (or no longer retained).
  unknown_run,
  /// The submitter is over the rate limit (the message says when the next
  /// run is allowed).
  rate_limited,
  /// A session is running a task and cannot do this now (the message says
  /// which run).
  session_busy,
  /// A saved session cannot be read, written or named so (the message names
  /// the path or the rule).
  session_store_failed,
  // -- h16b
  /// A worker node and its coordinator run different versions or
  /// vocabularies (the message names both).
  version_mismatch,
  /// No worker node is left to run a task, or the node cannot take it.
  node_unavailable,
};

std::string to_string(errc x);

} // namespace orch

// -- type IDs and atoms
// ---------------------------------------------------------

CAF_BEGIN_TYPE_ID_BLOCK(orch, caf::first_custom_type_id)

  CAF_ADD_TYPE_ID(orch, (orch::usage))
  CAF_ADD_TYPE_ID(orch, (orch::finding))
  CAF_ADD_TYPE_ID(orch, (std::vector<orch::finding>))
  CAF_ADD_TYPE_ID(orch, (orch::step_outcome))
  CAF_ADD_TYPE_ID(orch, (orch::refused_path))
  CAF_ADD_TYPE_ID(orch, (orch::step_request))
  CAF_ADD_TYPE_ID(orch, (orch::step_result))
  CAF_ADD_TYPE_ID(orch, (std::vector<orch::step_result>))
  CAF_ADD_TYPE_ID(orch, (orch::run_request))
  CAF_ADD_TYPE_ID(orch, (orch::iteration_record))
  CAF_ADD_TYPE_ID(orch, (orch::run_result))
  CAF_ADD_TYPE_ID(orch, (orch::progress_event))
  CAF_ADD_TYPE_ID(orch, (orch::progress_sink))
  CAF_ADD_TYPE_ID(orch, (orch::run_spec))
  CAF_ADD_TYPE_ID(orch, (orch::run_info))
  CAF_ADD_TYPE_ID(orch, (std::vector<orch::run_info>))
  CAF_ADD_TYPE_ID(orch, (orch::workflow_config))
  CAF_ADD_TYPE_ID(orch, (orch::admission))
  CAF_ADD_TYPE_ID(orch, (orch::attempt_record))
  CAF_ADD_TYPE_ID(orch, (orch::step_cache_entry))
  CAF_ADD_TYPE_ID(orch, (orch::cache_lookup))
  CAF_ADD_TYPE_ID(orch, (orch::session_message))
  CAF_ADD_TYPE_ID(orch, (orch::session_submitted))
  CAF_ADD_TYPE_ID(orch, (orch::session_entry))
  CAF_ADD_TYPE_ID(orch, (std::vector<orch::session_entry>))
  CAF_ADD_TYPE_ID(orch, (orch::session_context))
  CAF_ADD_TYPE_ID(orch, (orch::session_info))
  // -- h16a
  CAF_ADD_TYPE_ID(orch, (orch::batch_stats))
  // -- h16b
  CAF_ADD_TYPE_ID(orch, (orch::node_status))
  CAF_ADD_TYPE_ID(orch, (orch::node_task))
  CAF_ADD_TYPE_ID(orch, (orch::run_file))
  CAF_ADD_TYPE_ID(orch, (std::vector<orch::run_file>))
  CAF_ADD_TYPE_ID(orch, (orch::node_outcome))
  // -- h17
  CAF_ADD_TYPE_ID(orch, (orch::node_report))
  CAF_ADD_TYPE_ID(orch, (std::vector<orch::node_report>))

CAF_END_TYPE_ID_BLOCK(orch)

CAF_ERROR_CODE_ENUM(orch::errc, "orch")

namespace orch {

// -- actor interfaces ---------------------------------------------------------

/// One configured agent: owns its concurrency limit and queue; a step is a
/// request to it.
/// `cancel` alone cancels every step; `cancel(run_id)` only the queued and
/// running steps of that run.
/// `retry(id)` is its own timer: a step waiting for a retry (backoff, quota
/// wait) runs again.
using agent_actor = caf::typed_actor<
  caf::replies_to<atom::run_step, step_request>::with<step_result>,
  caf::reacts_to<atom::cancel>, caf::reacts_to<atom::cancel, std::string>,
  caf::reacts_to<atom::retry, uint64_t>>;

/// The rate limiter: a token bucket per user, asked by the coordinator
/// before it accepts a run (see actors/rate_limiter.hpp).
using rate_limiter_actor = caf::typed_actor<
  caf::replies_to<atom::admit, std::string>::with<admission>>;

/// The step cache (actors/cache_actor.hpp): a lookup by key answers the
/// entry or a miss; a put stores an entry (memory, then disk) and answers
/// whether it is on disk (false: memory only).
using cache_actor = caf::typed_actor<
  caf::replies_to<atom::cache_get, std::string>::with<cache_lookup>,
  caf::replies_to<atom::cache_put, step_cache_entry>::with<bool>>;

/// One task run through a workflow to convergence.
using workflow_actor = caf::typed_actor<
  caf::replies_to<atom::run_task, run_request>::with<run_result>,
  caf::reacts_to<atom::cancel>>;

/// Many runs in one process: validates and starts runs, shares one agent
/// actor per agent between them, cancels one run or all, and fans progress
/// out to subscribers with per-run sequence numbers.
using coordinator_actor = caf::typed_actor<
  /// Validates the spec and answers the new run's id at once, or an error
  /// (errc + message): unknown workflow or agent, bad --agents, bad task,
  /// agent unavailable, workspace failed or locked (the message names the
  /// holder).
  caf::replies_to<atom::submit, run_spec>::with<std::string>,
  /// Answered when the run ends (also later, while the result is retained).
  caf::replies_to<atom::result, std::string>::with<run_result>,
  caf::replies_to<atom::list>::with<std::vector<run_info>>,
  caf::replies_to<atom::status, std::string>::with<run_info>,
  /// One run by id; "" = every run. Answers whether a run was found.
  caf::replies_to<atom::cancel, std::string>::with<bool>,
  /// Run id ("" = all runs); replays buffered events with seq > from, then
  /// sends live ones.
  caf::reacts_to<atom::subscribe, std::string, uint64_t, progress_sink>,
  caf::reacts_to<atom::unsubscribe, std::string, progress_sink>,
  /// From the coordinator's own workflow actors (stamped and fanned out).
  caf::reacts_to<atom::progress, progress_event>,
  /// The worker nodes runs go to (a node pool); none for a local
  /// coordinator, whose agents run here.
  caf::replies_to<atom::node_info>::with<std::vector<node_report>>>;

/// One conversation (actors/session_actor.hpp): one per shell, later one
/// per server client. Errors are caf::error with errc and a message.
using session_actor = caf::typed_actor<
  /// A user message: detected (or forced) as a follow-up or a new task and
  /// submitted to the coordinator; answers at once with the run started, or
  /// kind ambiguous (nothing submitted, nothing recorded). Errors:
  /// session_busy while a task runs, and the coordinator's.
  caf::replies_to<atom::say, session_message>::with<session_submitted>,
  /// Answered when that run ends, after the session recorded its answer in
  /// the history and the context.
  caf::replies_to<atom::result, std::string>::with<run_result>,
  /// Cancels the running task only (the session stays); answers whether
  /// one was running.
  caf::replies_to<atom::cancel>::with<bool>,
  caf::replies_to<atom::history>::with<std::vector<session_entry>>,
  caf::replies_to<atom::context>::with<session_context>,
  caf::replies_to<atom::info>::with<session_info>,
  /// Sets the workflow of the next tasks (unknown_name if none such).
  caf::replies_to<atom::set_workflow, std::string>::with<session_info>,
  /// `/switch <agent>`: the next tasks run every step with this agent
  /// alone; "" clears the override (unknown_name, agent_unavailable).
  caf::replies_to<atom::set_agent, std::string>::with<session_info>,
  /// Forgets the history and the context (session_busy while a task runs);
  /// keeps the id, workspace, workflow and agent.
  caf::replies_to<atom::reset>::with<session_info>,
  /// Saves to `<state dir>/sessions/<name>.json` (name "": the name it was
  /// saved or loaded as, else its id); the bool forces over a corrupt file.
  /// Answers the path written.
  caf::replies_to<atom::save, std::string, bool>::with<std::string>,
  /// Replaces this session by a saved one (session_busy while a task runs).
  caf::replies_to<atom::load, std::string>::with<session_info>>;

// -- h16a

/// A batch (actors/batch.hpp): feeds the tasks of an input to a coordinator
/// with bounded concurrency and appends one result line per task.
using batch_actor = caf::typed_actor<
  /// Starts it; answered when every task has ended, or after a cancel once
  /// the runs in flight have stopped.
  caf::replies_to<atom::run_task>::with<batch_stats>,
  caf::replies_to<atom::status>::with<batch_stats>,
  /// Stops it: nothing more is submitted, the runs in flight are cancelled.
  caf::reacts_to<atom::cancel>,
  /// Its own timer: syncs the output when lines wait longer than the
  /// interval.
  caf::reacts_to<atom::flush>>;

// -- h16b
/// A worker node (actors/node.hpp): runs whole workflow runs on its own
/// machine for a node pool on another (actors/node_pool.hpp).
using node_actor = caf::typed_actor<
  /// The connect handshake: the caller's version and vocabulary
  /// fingerprint; answers the node's status, or errc::version_mismatch
  /// naming both versions.
  caf::replies_to<atom::node_hello, std::string,
                  std::string>::with<node_status>,
  caf::replies_to<atom::node_info>::with<node_status>,
  /// Runs the task to its end in the node's own workspace; answers the
  /// result and the files it wrote (bounded), or an error when the node
  /// refused the spec (errc as the coordinator's submit).
  caf::replies_to<atom::node_run, node_task>::with<node_outcome>,
  /// Cancels the run of a task id ("" = all); answers whether one was found.
  caf::replies_to<atom::cancel, std::string>::with<bool>>;

} // namespace orch
