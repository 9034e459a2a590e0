#include "actors/cached_step.hpp"

#include <algorithm>
#include <set>
#include <utility>
#include <vector>

#include <caf/actor_system.hpp>
#include <caf/event_based_actor.hpp>

#include "runtime/clock.hpp"
#include "runtime/counters.hpp"
#include "runtime/logging.hpp"
#include "runtime/snapshot_watch.hpp"
#include "runtime/workspace.hpp"

namespace orch {

namespace {

/// True when `name` matches an `env_allow` entry (a trailing `*` matches a
/// prefix), as adapters/ passes variables through.
bool allowed(const agent_config& agent, std::string_view name) {
  for (const auto& pattern : agent.env_allow) {
    std::string_view p{pattern};
    if (!p.empty() && p.back() == '*') {
      p.remove_suffix(1);
      if (name.substr(0, p.size()) == p)
        return true;
    } else if (name == p) {
      return true;
    }
  }
  return false;
}

} // namespace

bool uses_step_cache(const agent_deps& deps, const step_request& req) {
  return deps.cache && deps.settings.cache.enabled && !req.no_cache;
}

std::string step_key(const agent_config& agent, const step_request& req,
                     const file_snapshot& before) {
  step_cache_key_parts parts;
  parts.agent = agent.name;
  parts.model = agent.model;
  parts.adapter = to_string(agent.kind);
  parts.task_kind = req.task_kind;
  parts.prompt = normalize_prompt(req.prompt, req.workspace, req.run_id,
                                  req.iteration);
  parts.setup.push_back("command=" + agent.command);
  parts.setup.push_back("prompt_mode=" + to_string(agent.prompt));
  parts.setup.push_back(std::string{"review="} + (req.review ? "1" : "0"));
  for (const auto& arg : agent.args)
    parts.setup.push_back("arg=" + arg);
  // The variables the agent is given change what it does (a fake agent's
  // mode, a proxy); the base set (PATH, HOME, ...) and credentials do not
  // enter the key.
  std::vector<std::string> env;
  for (auto& entry : current_environment()) {
    auto eq = entry.find('=');
    if (eq != std::string::npos && allowed(agent, entry.substr(0, eq))
        && agent.env_set.count(entry.substr(0, eq)) == 0)
      env.push_back("env=" + entry);
  }
  std::sort(env.begin(), env.end());
  parts.setup.insert(parts.setup.end(), env.begin(), env.end());
  for (const auto& [name, value] : agent.env_set)
    parts.setup.push_back("set=" + name + "=" + value);
  parts.files = &before;
  return step_cache_key(parts);
}

step_result replay_step(const step_cache_entry& entry,
                        const step_request& req) {
  auto t0 = std::chrono::steady_clock::now();
  auto res = result_for(req);
  res.started_ms = wall_clock_ms();
  res.cached = true;
  res.outcome = entry.outcome;
  // Nothing was spent this time.
  res.outcome.tokens = usage{};
  res.findings = entry.findings;
  workspace ws{req.workspace, req.run_id};
  std::set<std::string> files;
  // Each file atomically (a reader sees old or new bytes, never half), but
  // without waiting for the disk, as the agent's own writes it stands in
  // for: fsyncing each file and its folder took 8 ms per file (780 ms for
  // 100 files, Debug), and one syncfs flushes every other writer's data
  // too. A power loss loses at most this replay; the next run hits again.
  for (const auto& f : entry.files) {
    auto out = ws.write(f.path, f.content, detail::sync_mode::atomic_only);
    if (!out.backup.empty())
      res.backups.push_back(out.backup);
    if (out.written || out.reason == "unchanged")
      files.insert(out.path.empty() ? f.path : out.path);
    else
      res.refused.push_back(refused_path{f.path, out.reason});
  }
  for (const auto& path : entry.deleted) {
    std::string err;
    if (delete_workspace_file(ws.root(), path, err))
      res.deleted.push_back(path);
    else
      res.refused.push_back(refused_path{path, "cannot delete: " + err});
  }
  for (const auto& r : entry.refused)
    res.refused.push_back(refused_path{r.path, r.reason});
  res.files.assign(files.begin(), files.end());
  res.reported_files = entry.reported_files;
  res.duration_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                      std::chrono::steady_clock::now() - t0)
                      .count();
  return res;
}

std::optional<step_cache_entry>
make_cache_entry(const std::string& key, const step_request& req,
                 const step_result& res, std::size_t max_bytes) {
  if (!res.outcome.ok || res.cached)
    return std::nullopt;
  auto files = read_step_files(req.workspace, res.files, max_bytes);
  if (!files)
    return std::nullopt;
  step_cache_entry e;
  e.key = key;
  e.created_ms = wall_clock_ms();
  e.agent = res.agent;
  e.task_kind = res.task_kind;
  e.outcome = res.outcome;
  e.findings = res.findings;
  e.files = std::move(*files);
  e.deleted = res.deleted;
  e.reported_files = res.reported_files;
  for (const auto& r : res.refused)
    e.refused.push_back(cached_refusal{r.path, r.reason});
  e.duration_ms = res.duration_ms;
  return e;
}

caf::result<step_result>
run_cached_step(step_worker_actor::pointer self, const agent_config& agent,
                std::shared_ptr<const adapter> adapt, const agent_deps& deps,
                const step_request& req, std::shared_ptr<cancel_token> cancel) {
  workspace ws{req.workspace, req.run_id};
  // The snapshot the key is made of is the one the step runs on.
  auto before = watched_snapshot_cache::shared().take(ws.root(), true);
  auto key = step_key(agent, req, *before);
  auto rp = self->make_response_promise<step_result>();
  auto max_bytes = std::max(deps.settings.cache.max_memory_bytes,
                            deps.settings.cache.max_disk_bytes);
  // Runs the step for real; a successful one is stored when `store`. The
  // result goes out once the cache has the entry (or did not answer in
  // time): a run that ends right after its last step, and stops the cache
  // with it, loses no entry.
  auto run = [self, agent, adapt, deps, req, cancel, before, key, rp,
              max_bytes](bool store) mutable {
    auto res = std::make_shared<step_result>(
      execute_step(agent, *adapt, deps, req, cancel.get(), before.get()));
    auto entry = store ? make_cache_entry(key, req, *res, max_bytes)
                       : std::nullopt;
    if (!entry) {
      rp.deliver(std::move(*res));
      self->quit();
      return;
    }
    auto answer = [self, rp, res]() mutable {
      rp.deliver(std::move(*res));
      self->quit();
    };
    self
      ->request(deps.cache, cache_lookup_timeout, atom::cache_put_v,
                std::move(*entry))
      .then(
        [answer](bool) mutable {
          answer();
        },
        [answer](caf::error&) mutable {
          answer();
        });
  };
  self->request(deps.cache, cache_lookup_timeout, atom::cache_get_v, key)
    .then(
      [self, agent, req, rp, run, key, cancel](cache_lookup& found) mutable {
        // A cancelled step writes nothing: execute_step reports it.
        if (!found.hit || (cancel && cancel->cancelled())) {
          counters().add(counter::cache_misses, agent.name);
          run(true);
          return;
        }
        counters().add(counter::cache_hits, agent.name);
        log().info("cache-hit id={} iteration={} step={} agent={} task={} "
                   "key={}",
                   req.run_id, req.iteration, req.step_index + 1, agent.name,
                   req.task_kind, key);
        rp.deliver(replay_step(found.entry, req));
        self->quit();
      },
      [self, agent, run](caf::error& err) mutable {
        counters().add(counter::cache_misses, agent.name);
        log().warn("cache-unavailable agent={} reason={} (the step runs)",
                   agent.name, log_text(self->system().render(err)));
        run(false);
      });
  return rp;
}

} // namespace orch
