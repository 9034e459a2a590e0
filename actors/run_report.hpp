#pragma once

// The run result as a JSON document: the manifest written into the
// workspace and the `run --json` output share this one shape.

#include <string>

#include <nlohmann/json.hpp>

#include "actors/vocabulary.hpp"
#include "runtime/safe_file.hpp"

namespace orch {

/// Returns the documented JSON shape of a run result (see README, "run
/// --json"). Keys keep a stable order.
nlohmann::ordered_json to_json(const run_result& res);

/// Returns the `run --json` document: to_json(res) plus "counters", the
/// non-zero counters of this process by name (`total`, and `labels` when
/// some are labelled). The server's task result is this same document.
nlohmann::ordered_json run_json(const run_result& res);

/// Returns the non-zero counters of this process, by name.
nlohmann::ordered_json counters_json();

/// Returns the name of an event kind ("run_started", "agent_event", ...).
std::string to_string(progress_event::kind_t x);

/// Returns the JSON of one progress event (the server's event streams):
/// seq, kind, run_id, iteration, step_index, step_count, agent, task_kind,
/// text, ok, elapsed_ms.
nlohmann::ordered_json to_json(const progress_event& ev);

/// Returns the JSON shape of one finding.
nlohmann::ordered_json to_json(const finding& f);

/// Returns `j` as JSON text, never throwing: strings that are not valid
/// UTF-8 (agent output, file names, version strings) get U+FFFD in place of
/// each bad byte. Every dump of data that came from outside goes through
/// this (manifest, `run --json`, `agents --json`, `workflows --json`).
template<class Json>
std::string dump_json(const Json& j, int indent = 2) {
  return j.dump(indent, ' ', false, nlohmann::json::error_handler_t::replace);
}

/// Writes `<workspace>/.orchestrator/manifest.json` atomically (a temp file
/// renamed into place) and never through a link below the workspace
/// (write_file_atomic). Not fsynced: an fsync of the file and its folder
/// cost about 2 ms of every run, and the agents' own files are not fsynced
/// either; after a power loss the manifest is the last one written or the
/// one before it, never a torn one. Returns false and sets `error` on
/// failure.
bool write_manifest(const run_result& res, std::string& error);

/// Like write_manifest, ignoring failures (progress records mid-run, each
/// replaced by the next).
void write_manifest_quietly(const run_result& res);

} // namespace orch
