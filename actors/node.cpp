#include "actors/node.hpp"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <sstream>
#include <utility>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <caf/actor_system.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/io/middleman.hpp>
#include <caf/openssl/manager.hpp>
#include <caf/openssl/publish.hpp>
#include <caf/openssl/remote_actor.hpp>
#include <caf/scoped_actor.hpp>
#include <caf/stateful_actor.hpp>

#include "actors/blocking_work.hpp"
#include "actors/coordinator.hpp"
#include "actors/tls_error_queue.hpp"
#include "runtime/fd_util.hpp"
#include "runtime/hashing.hpp"
#include "runtime/safe_file.hpp"
#include "runtime/text.hpp"
#include "runtime/workspace_files.hpp"

namespace orch {

namespace {

using node_self = node_actor::stateful_pointer<node_state>;

template<caf::type_id_t... Is>
std::string describe_types(std::integer_sequence<caf::type_id_t, Is...>) {
  std::string out;
  constexpr auto first = caf::id_block::orch::begin;
  ((out += std::string{caf::type_name_by_id<first + Is>::value} + ":"
           + std::to_string(sizeof(typename caf::type_by_id<first + Is>::type))
           + ";"),
   ...);
  return out;
}

/// Splits a workspace-relative path; empty when a component is empty, `.`
/// or `..`, or the path is absolute.
std::vector<std::string> relative_parts(const std::string& rel) {
  std::vector<std::string> parts;
  std::string item;
  std::stringstream in{rel};
  while (std::getline(in, item, '/')) {
    if (item.empty() || item == "." || item == "..")
      return {};
    parts.push_back(item);
  }
  if (rel.empty() || rel.back() == '/')
    return {};
  return parts;
}

/// The outcome of a run that never reached the local coordinator's end.
node_outcome refused_outcome(const node_task& task, const std::string& node,
                             const std::string& why) {
  node_outcome out;
  out.task_id = task.task_id;
  out.attempt = task.attempt;
  out.node = node;
  out.result.run_id = task.task_id;
  out.result.task = task.spec.task;
  out.result.workflow = task.spec.workflow;
  out.result.status = run_status::failed;
  out.result.message = why;
  return out;
}

node_status status_of(node_self self) {
  auto& st = self->state;
  node_status s;
  s.version = st.version;
  s.vocabulary = st.vocabulary;
  s.slots = st.deps.slots;
  s.running = static_cast<int32_t>(st.tasks.size());
  s.agents = st.deps.agents;
  s.unavailable = st.deps.unavailable;
  s.finished = st.finished;
  return s;
}

/// Submits `task` (its spec's workspace already the node's own) to the
/// local coordinator and answers `rp` with its outcome, the files it wrote
/// read on a blocking worker.
void start_local_run(node_self self,
                     caf::typed_response_promise<node_outcome> rp,
                     node_task task) {
  auto id = task.task_id;
  auto node = self->state.deps.address;
  self->request(self->state.coord, caf::infinite, atom::submit_v, task.spec)
    .then(
      [=](std::string& run_id) mutable {
        auto& st = self->state;
        auto it = st.tasks.find(id);
        if (it == st.tasks.end())
          return;
        it->second.run_id = run_id;
        if (it->second.cancel_requested)
          caf::anon_send(st.coord, atom::cancel_v, run_id);
        self->request(st.coord, caf::infinite, atom::result_v, run_id)
          .then(
            [=](run_result& res) mutable {
              auto& st = self->state;
              st.tasks.erase(id);
              ++st.finished;
              auto out = std::make_shared<node_outcome>();
              out->task_id = id;
              out->attempt = task.attempt;
              out->node = node;
              out->result = std::move(res);
              auto max_bytes = st.deps.max_result_bytes;
              auto finish = [=](const std::string& failed) mutable {
                if (!failed.empty())
                  out->omitted.push_back("the run's files: " + failed);
                out->result.run_id = id;
                rp.deliver(std::move(*out));
              };
              if (out->result.files.empty()) {
                finish({});
                return;
              }
              run_blocking(
                self, st.deps.detached_workers,
                [=] {
                  collect_run_files(out->result, max_bytes, out->files,
                                    out->omitted);
                },
                finish);
            },
            [=](caf::error& e) mutable {
              self->state.tasks.erase(id);
              rp.deliver(refused_outcome(
                task, node, "the run was lost on the node: " + error_text(e)));
            });
      },
      [=](caf::error& e) mutable {
        self->state.tasks.erase(id);
        // A refusal (bad spec, agent unavailable) is the run's answer.
        rp.deliver(std::move(e));
      });
}

std::string
mismatch_text(const std::string& mine, const std::string& my_vocab,
              const std::string& theirs, const std::string& their_vocab,
              const std::string& who_am_i, const std::string& who_are_they) {
  return "version mismatch: " + who_am_i + " runs ai-orchestrator " + mine
         + " (vocabulary " + my_vocab + "), " + who_are_they
         + " runs ai-orchestrator " + theirs + " (vocabulary " + their_vocab
         + "); run the same version on both";
}

} // namespace

std::string node_version() {
  if (const char* fake = std::getenv("ORCH_FAKE_VERSION");
      fake != nullptr && *fake != '\0')
    return fake;
  return ORCH_VERSION;
}

std::string vocabulary_fingerprint() {
  constexpr auto n = caf::id_block::orch::end - caf::id_block::orch::begin;
  auto text = describe_types(std::make_integer_sequence<caf::type_id_t, n>{});
  return sha256_hex(text).substr(0, 16);
}

std::string tls_files::check() const {
  std::pair<const char*, const std::string*> items[]
    = {{"--tls-ca", &ca}, {"--tls-cert", &cert}, {"--tls-key", &key}};
  for (auto& [flag, path] : items) {
    if (path->empty())
      return std::string{flag} + " is missing (TLS needs --tls-ca, "
             + "--tls-cert and --tls-key)";
    if (::access(path->c_str(), R_OK) != 0)
      return std::string{"cannot read "} + flag + " " + *path + ": "
             + detail::errno_text(errno);
  }
  return {};
}

void enable_tls(caf::actor_system_config& cfg, const tls_files& tls) {
  cfg.openssl_cafile = tls.ca;
  cfg.openssl_certificate = tls.cert;
  cfg.openssl_key = tls.key;
  cfg.load<caf::openssl::manager>();
  if (!tls_error_queue_guard_active())
    std::fprintf(stderr, "warning: OpenSSL's error queue guard is not in use "
                         "in this binary: when one TLS node connection "
                         "dies, others may be dropped with it\n");
}

void enable_node_heartbeat(caf::actor_system_config& cfg,
                           std::chrono::milliseconds timeout) {
  auto ms = std::max<std::chrono::milliseconds::rep>(timeout.count(), 400);
  cfg.set("middleman.heartbeat-interval",
          caf::timespan{std::chrono::milliseconds{ms / 4}});
  cfg.set("middleman.connection-timeout",
          caf::timespan{std::chrono::milliseconds{ms}});
}

std::optional<host_port> parse_host_port(const std::string& text,
                                         std::string& error) {
  host_port out;
  std::string port_text;
  if (!text.empty() && text.front() == '[') {
    auto close = text.find(']');
    if (close == std::string::npos || close + 1 >= text.size()
        || text[close + 1] != ':') {
      error = "'" + text + "' is not [host]:port";
      return std::nullopt;
    }
    out.host = text.substr(1, close - 1);
    port_text = text.substr(close + 2);
  } else {
    auto colon = text.rfind(':');
    if (colon == std::string::npos || colon == 0) {
      error = "'" + text + "' is not host:port";
      return std::nullopt;
    }
    out.host = text.substr(0, colon);
    port_text = text.substr(colon + 1);
  }
  if (port_text.empty() || port_text.size() > 5
      || port_text.find_first_not_of("0123456789") != std::string::npos
      || std::stoul(port_text) > 65535) {
    error = "'" + text + "': the port must be a number from 0 to 65535";
    return std::nullopt;
  }
  out.port = static_cast<uint16_t>(std::stoul(port_text));
  return out;
}

std::vector<std::string> split_addresses(const std::string& csv) {
  return text::split_list(csv);
}

bool is_loopback(const std::string& host) {
  return host == "localhost" || host == "::1" || host.rfind("127.", 0) == 0;
}

caf::expected<uint16_t> publish_node(const node_actor& node,
                                     const host_port& at, bool tls) {
  if (tls)
    return caf::openssl::publish(node, at.port, at.host.c_str(), true);
  return node.home_system().middleman().publish(node, at.port, at.host.c_str(),
                                                true);
}

node_link connect_node(caf::actor_system& sys, const std::string& address,
                       bool tls) {
  node_link link;
  link.address = address;
  std::string error;
  auto at = parse_host_port(address, error);
  if (!at) {
    link.error = error;
    return link;
  }
  auto try_connect = [&] {
    return tls ? caf::openssl::remote_actor<node_actor>(sys, at->host, at->port)
               : sys.middleman().remote_actor<node_actor>(at->host, at->port);
  };
  auto remote = try_connect();
  // With a heartbeat on (enable_node_heartbeat), CAF 0.17.6 counts a
  // connection that has not heard from its peer yet as silent since the
  // clock's epoch: a heartbeat tick during its handshake drops it with
  // connection_timeout. That is no answer about the node: try again.
  for (int i = 0;
       i < 3 && !remote && remote.error() == caf::sec::connection_timeout; ++i)
    remote = try_connect();
  if (!remote) {
    auto& e = remote.error();
    if (e == caf::sec::unexpected_actor_messaging_interface)
      link.error = "the node at " + address
                   + " speaks another actor interface (a different "
                     "ai-orchestrator version?); this side runs "
                   + node_version();
    else
      link.error = "cannot reach the node at " + address + ": " + sys.render(e);
    // Connected, then dropped during the handshake: TLS refused it (or
    // one side speaks TLS and the other not). A TCP connect that failed
    // says so in its context ("ip_connect failed", host, port); CAF's
    // OpenSSL module answers a bare cannot_connect_to_node when the TLS
    // session failed at once (seen about once in 50 under load when the
    // peer's certificate is refused).
    bool tcp_failed = e == caf::sec::cannot_connect_to_node
                      && !e.context().empty();
    if (!tcp_failed)
      link.error += tls ? " (TLS refused: is its certificate signed by the "
                          "same CA as ours, and is it a TLS worker?)"
                        : " (is it a TLS worker? then give --tls-ca, "
                          "--tls-cert and --tls-key)";
    return link;
  }
  caf::scoped_actor self{sys};
  auto mine = node_version();
  auto vocab = vocabulary_fingerprint();
  self
    ->request(*remote, std::chrono::seconds{15}, atom::node_hello_v, mine,
              vocab)
    .receive(
      [&](node_status& s) {
        link.status = std::move(s);
        if (link.status.version != mine || link.status.vocabulary != vocab)
          link.error = mismatch_text(mine, vocab, link.status.version,
                                     link.status.vocabulary, "this side",
                                     "the node at " + address);
      },
      [&](caf::error& e) {
        link.error = "the node at " + address + " refused: " + error_text(e);
      });
  if (link.error.empty())
    link.actor = std::move(*remote);
  return link;
}

namespace {

/// Reads the files `rels` of `workspace` into `files`, bounded by
/// `max_bytes` in all (see collect_run_files).
void collect_files(const std::string& workspace,
                   const std::vector<std::string>& rels, std::size_t max_bytes,
                   std::vector<run_file>& files,
                   std::vector<std::string>& omitted) {
  if (rels.empty())
    return;
  detail::unique_fd ws{
    ::open(workspace.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC)};
  if (!ws) {
    auto why = detail::errno_text(errno);
    for (const auto& rel : rels)
      omitted.push_back(rel + ": cannot open the workspace: " + why);
    return;
  }
  std::size_t total = 0;
  for (const auto& rel : rels) {
    auto parts = relative_parts(rel);
    if (parts.empty()) {
      omitted.push_back(rel + ": not a plain relative path");
      continue;
    }
    auto dir = detail::open_dirs(ws.get(), parts, parts.size() - 1, false);
    if (!dir.ok()) {
      omitted.push_back(rel + ": " + dir.describe(rel));
      continue;
    }
    detail::unique_fd fd{
      ::openat(dir.fd.get(), parts.back().c_str(),
               O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC)};
    if (!fd) {
      omitted.push_back(rel + ": "
                        + (errno == ELOOP ? std::string{"a symlink"}
                                          : detail::errno_text(errno)));
      continue;
    }
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode)) {
      omitted.push_back(rel + ": not a regular file");
      continue;
    }
    auto size = static_cast<std::size_t>(st.st_size);
    if (size > max_bytes - total) {
      omitted.push_back(rel + ": left out, over the limit of "
                        + std::to_string(max_bytes) + " bytes per run");
      continue;
    }
    run_file f;
    f.path = rel;
    bool over = false;
    bool ok = detail::read_blocks(fd.get(), [&](std::string_view chunk) {
      if (chunk.size() > max_bytes - total - f.content.size()) {
        over = true;
        return false;
      }
      f.content.append(chunk);
      return true;
    });
    if (over) {
      omitted.push_back(rel + ": left out, over the limit of "
                        + std::to_string(max_bytes) + " bytes per run");
      continue;
    }
    if (!ok) {
      omitted.push_back(rel + ": " + detail::errno_text(errno));
      continue;
    }
    total += f.content.size();
    files.push_back(std::move(f));
  }
}

/// Writes `files` under `<base>/<prefix>` (prefix "" or "name/"), each
/// replaced atomically, no link below `base` followed; failures go to
/// `failed` as "path: why".
void write_files(const std::string& base, const std::string& prefix,
                 const std::vector<run_file>& files,
                 std::vector<std::string>& failed) {
  for (const auto& f : files) {
    if (relative_parts(f.path).empty()) {
      failed.push_back(f.path + ": not a plain relative path");
      continue;
    }
    std::string error;
    if (!write_file_atomic(base, prefix + f.path, f.content, error,
                           sync_mode::atomic_only))
      failed.push_back(f.path + ": " + error);
  }
}

/// Creates `dir` and its missing parents (0700 for new ones); "" or why not.
std::string make_folder(const std::string& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec)
    return "cannot create " + dir + ": " + ec.message();
  return {};
}

} // namespace

void collect_run_files(const run_result& res, std::size_t max_bytes,
                       std::vector<run_file>& files,
                       std::vector<std::string>& omitted) {
  collect_files(res.workspace, res.files, max_bytes, files, omitted);
}

void collect_workspace_files(const std::string& workspace,
                             std::size_t max_bytes,
                             std::vector<run_file>& files,
                             std::vector<std::string>& omitted) {
  std::error_code ec;
  if (!std::filesystem::exists(workspace, ec))
    return;
  auto listing = list_workspace_files(workspace);
  if (listing.error != file_error::none) {
    omitted.push_back("the workspace: " + listing.reason);
    return;
  }
  std::vector<std::string> rels;
  rels.reserve(listing.files.size());
  for (auto& f : listing.files)
    rels.push_back(std::move(f.path));
  collect_files(workspace, rels, max_bytes, files, omitted);
  if (listing.truncated)
    omitted.push_back("the workspace: more files than a listing holds");
  for (auto& name : listing.skipped)
    omitted.push_back(name + ": a name the file rules refuse");
}

std::vector<std::string> write_run_files(const std::string& out_dir,
                                         const std::string& id,
                                         const std::vector<run_file>& files) {
  std::vector<std::string> failed;
  write_files(out_dir, plain_name(id) + "/", files, failed);
  return failed;
}

std::string
make_seeded_workspace(const std::string& root, const std::string& task_id,
                      const std::vector<run_file>& files, std::string& error) {
  auto base = std::filesystem::absolute(root.empty() ? "." : root).string();
  error = make_folder(base);
  if (!error.empty())
    return {};
  auto pattern = base + "/node-" + plain_name(task_id) + "-XXXXXX";
  if (::mkdtemp(pattern.data()) == nullptr) {
    error = "cannot create a folder in " + base + ": "
            + detail::errno_text(errno);
    return {};
  }
  std::vector<std::string> failed;
  write_files(pattern, "", files, failed);
  if (!failed.empty()) {
    error = "cannot write the files it starts from: " + failed.front();
    if (failed.size() > 1)
      error += " (and " + std::to_string(failed.size() - 1) + " more)";
    return {};
  }
  return pattern;
}

std::vector<std::string>
apply_run_changes(const std::string& workspace,
                  const std::vector<run_file>& files,
                  const std::vector<std::string>& deleted) {
  std::vector<std::string> failed;
  if (auto why = make_folder(workspace); !why.empty()) {
    failed.push_back(why);
    return failed;
  }
  write_files(workspace, "", files, failed);
  if (deleted.empty())
    return failed;
  detail::unique_fd ws{
    ::open(workspace.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC)};
  if (!ws) {
    failed.push_back("cannot open " + workspace + ": "
                     + detail::errno_text(errno));
    return failed;
  }
  for (const auto& rel : deleted) {
    auto parts = relative_parts(rel);
    if (parts.empty()) {
      failed.push_back(rel + ": not a plain relative path");
      continue;
    }
    auto dir = detail::open_dirs(ws.get(), parts, parts.size() - 1, false);
    if (dir.error == detail::walk_error::missing)
      continue; // gone already
    if (!dir.ok()) {
      failed.push_back(rel + ": " + dir.describe(rel));
      continue;
    }
    // unlinkat removes a planted link itself, never what it points to.
    if (::unlinkat(dir.fd.get(), parts.back().c_str(), 0) != 0
        && errno != ENOENT)
      failed.push_back(rel + ": cannot delete: " + detail::errno_text(errno));
  }
  return failed;
}

node_actor::behavior_type node_impl(node_self self, coordinator_actor coord,
                                    node_deps deps) {
  auto& st = self->state;
  st.coord = std::move(coord);
  st.deps = std::move(deps);
  st.version = st.deps.version.empty() ? node_version() : st.deps.version;
  st.vocabulary = vocabulary_fingerprint();
  // A caller gone (its connection dropped): its runs are cancelled.
  self->set_down_handler([=](caf::down_msg& dm) {
    for (auto& kvp : self->state.tasks)
      if (kvp.second.owner == dm.source && !kvp.second.run_id.empty()) {
        kvp.second.cancel_requested = true;
        caf::anon_send(self->state.coord, atom::cancel_v, kvp.second.run_id);
      }
  });
  return {
    [=](atom::node_hello, const std::string& version,
        const std::string& vocabulary) -> caf::result<node_status> {
      auto& st = self->state;
      if (version != st.version || vocabulary != st.vocabulary)
        return caf::make_error(errc::version_mismatch,
                               mismatch_text(st.version, st.vocabulary, version,
                                             vocabulary, "this node",
                                             "the coordinator"));
      return status_of(self);
    },
    [=](atom::node_info) {
      return status_of(self);
    },
    [=](atom::node_run, node_task& task) -> caf::result<node_outcome> {
      auto rp = self->make_response_promise<node_outcome>();
      auto& st = self->state;
      if (st.tasks.count(task.task_id) > 0) {
        rp.deliver(
          caf::make_error(errc::invalid_request,
                          "task " + task.task_id + " is already running here"));
        return rp;
      }
      auto owner = self->current_sender();
      if (owner)
        self->monitor(owner);
      st.tasks[task.task_id].owner = caf::actor_cast<caf::actor_addr>(owner);
      // The node's own workspace: a path of the other machine means nothing
      // here; the files it names came along as the seed.
      task.spec.workspace.clear();
      if (task.seed.empty()) {
        start_local_run(self, rp, std::move(task));
        return rp;
      }
      auto seed = std::make_shared<std::vector<run_file>>(std::move(task.seed));
      task.seed.clear();
      auto made = std::make_shared<std::string>();
      auto why = std::make_shared<std::string>();
      auto root = st.deps.workspace_root;
      auto id = task.task_id;
      run_blocking(
        self, st.deps.detached_workers,
        [=] {
          *made = make_seeded_workspace(root, id, *seed, *why);
        },
        [=](const std::string& failed) mutable {
          if (made->empty()) {
            self->state.tasks.erase(task.task_id);
            rp.deliver(
              refused_outcome(task, self->state.deps.address,
                              "cannot prepare the run's workspace on the node: "
                                + (failed.empty() ? *why : failed)));
            return;
          }
          task.spec.workspace = *made;
          start_local_run(self, rp, std::move(task));
        });
      return rp;
    },
    [=](atom::cancel, const std::string& id) {
      bool found = false;
      for (auto& kvp : self->state.tasks) {
        if (!id.empty() && kvp.first != id)
          continue;
        found = true;
        kvp.second.cancel_requested = true;
        if (!kvp.second.run_id.empty())
          caf::anon_send(self->state.coord, atom::cancel_v, kvp.second.run_id);
      }
      return found;
    },
  };
}

} // namespace orch
