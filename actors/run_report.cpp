#include "actors/run_report.hpp"

#include <exception>

#include "runtime/counters.hpp"
#include "runtime/safe_file.hpp"
#include "runtime/workspace.hpp"

namespace orch {

namespace {

nlohmann::ordered_json to_json(const usage& u) {
  nlohmann::ordered_json j;
  j["input_tokens"] = u.input_tokens;
  j["output_tokens"] = u.output_tokens;
  j["cached_tokens"] = u.cached_tokens;
  if (u.has_cost)
    j["cost_usd"] = u.cost_usd;
  else
    j["cost_usd"] = nullptr;
  return j;
}

nlohmann::ordered_json to_json(const step_result& r) {
  nlohmann::ordered_json j;
  j["step"] = r.step_index + 1;
  j["agent"] = r.agent;
  j["ran_as"] = r.ran_as.empty() ? r.agent : r.ran_as;
  if (r.fallback_reason.empty())
    j["fallback_reason"] = nullptr;
  else
    j["fallback_reason"] = r.fallback_reason;
  j["task"] = r.task_kind;
  j["status"] = r.outcome.ok ? "ok" : "failed";
  j["cached"] = r.cached;
  j["failure"] = to_string(r.outcome.failure);
  j["message"] = r.outcome.message;
  j["exit_code"] = r.outcome.exit_code;
  j["session_id"] = r.outcome.session_id;
  j["duration_ms"] = r.duration_ms;
  j["usage"] = to_json(r.outcome.tokens);
  auto findings = nlohmann::ordered_json::array();
  for (auto& f : r.findings)
    findings.push_back(to_json(f));
  j["findings"] = std::move(findings);
  j["files"] = r.files;
  auto refused = nlohmann::ordered_json::array();
  for (auto& x : r.refused)
    refused.push_back({{"path", x.path}, {"reason", x.reason}});
  j["refused"] = std::move(refused);
  j["deleted"] = r.deleted;
  j["backups"] = r.backups;
  j["conflicts"] = r.conflicts;
  j["output_truncated"] = r.outcome.truncated;
  j["output"] = r.outcome.final_text;
  if (r.output_file.empty())
    j["output_file"] = nullptr;
  else
    j["output_file"] = r.output_file;
  j["argv_sha256"] = r.argv_sha256;
  // Every attempt when there was more than one (retries, quota waits,
  // fallbacks); a single try is the step itself.
  auto attempts = nlohmann::ordered_json::array();
  for (auto& a : r.attempts) {
    nlohmann::ordered_json ja;
    ja["agent"] = a.agent;
    ja["status"] = a.failure == failure_kind::none ? "ok" : "failed";
    ja["failure"] = to_string(a.failure);
    ja["message"] = a.message;
    ja["started_ms"] = a.started_ms;
    ja["duration_ms"] = a.duration_ms;
    ja["files"] = a.files;
    attempts.push_back(std::move(ja));
  }
  j["attempts"] = std::move(attempts);
  return j;
}

} // namespace

std::string to_string(run_status x) {
  switch (x) {
    case run_status::converged:
      return "converged";
    case run_status::completed:
      return "completed";
    case run_status::max_iterations:
      return "max_iterations";
    case run_status::no_progress:
      return "no_progress";
    case run_status::failed:
      return "failed";
    case run_status::cancelled:
      return "cancelled";
  }
  return "unknown";
}

nlohmann::ordered_json to_json(const finding& f) {
  nlohmann::ordered_json j;
  j["severity"] = f.severity;
  j["file"] = f.file;
  j["line"] = f.line;
  j["text"] = f.text;
  return j;
}

nlohmann::ordered_json to_json(const run_result& res) {
  nlohmann::ordered_json j;
  j["run_id"] = res.run_id;
  j["workflow"] = res.workflow;
  j["task"] = res.task;
  j["status"] = to_string(res.status);
  j["message"] = res.message;
  j["workspace"] = res.workspace;
  j["duration_ms"] = res.duration_ms;
  j["usage"] = to_json(res.tokens);
  auto iterations = nlohmann::ordered_json::array();
  for (auto& it : res.iterations) {
    nlohmann::ordered_json ji;
    ji["iteration"] = it.number;
    if (it.open_findings >= 0)
      ji["open_findings"] = it.open_findings;
    else
      ji["open_findings"] = nullptr;
    auto steps = nlohmann::ordered_json::array();
    for (auto& s : it.steps)
      steps.push_back(to_json(s));
    ji["steps"] = std::move(steps);
    iterations.push_back(std::move(ji));
  }
  j["iterations"] = std::move(iterations);
  auto findings = nlohmann::ordered_json::array();
  for (auto& f : res.findings)
    findings.push_back(to_json(f));
  j["findings"] = std::move(findings);
  j["files"] = res.files;
  j["preserved_files"] = res.preserved_files;
  j["preserve_error"] = res.preserve_error;
  return j;
}

bool write_manifest(const run_result& res, std::string& error) {
  std::string text;
  try {
    text = dump_json(to_json(res)) + "\n";
  } catch (const std::exception& e) {
    // dump_json replaces bad UTF-8; what is left is running out of memory.
    error = std::string{"cannot render the manifest: "} + e.what();
    return false;
  }
  return write_file_atomic(res.workspace,
                           std::string{workspace_meta_dir} + "/manifest.json",
                           text, error, sync_mode::atomic_only);
}

void write_manifest_quietly(const run_result& res) {
  std::string ignored;
  write_manifest(res, ignored);
}

nlohmann::ordered_json counters_json() {
  nlohmann::ordered_json out = nlohmann::ordered_json::object();
  for (const auto& x : counters().samples()) {
    if (x.value == 0)
      continue;
    auto& entry = out[x.name];
    if (!entry.contains("total"))
      entry["total"] = uint64_t{0};
    entry["total"] = entry["total"].get<uint64_t>() + x.value;
    if (!x.label.empty())
      entry["labels"][x.label] = x.value;
  }
  return out;
}

nlohmann::ordered_json run_json(const run_result& res) {
  auto j = to_json(res);
  j["counters"] = counters_json();
  return j;
}

std::string to_string(progress_event::kind_t x) {
  using kind = progress_event::kind_t;
  switch (x) {
    case kind::run_started:
      return "run_started";
    case kind::iteration_started:
      return "iteration_started";
    case kind::step_started:
      return "step_started";
    case kind::agent_event:
      return "agent_event";
    case kind::step_finished:
      return "step_finished";
    case kind::run_finished:
      return "run_finished";
    case kind::step_notice:
      return "step_notice";
  }
  return "unknown";
}

nlohmann::ordered_json to_json(const progress_event& ev) {
  nlohmann::ordered_json j;
  j["seq"] = ev.seq;
  j["kind"] = to_string(ev.kind);
  j["run_id"] = ev.run_id;
  j["iteration"] = ev.iteration;
  j["step_index"] = ev.step_index;
  j["step_count"] = ev.step_count;
  j["agent"] = ev.agent;
  j["task_kind"] = ev.task_kind;
  j["text"] = ev.text;
  j["ok"] = ev.ok;
  j["elapsed_ms"] = ev.elapsed_ms;
  return j;
}

} // namespace orch
