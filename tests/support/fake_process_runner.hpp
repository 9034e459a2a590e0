#pragma once

// A scripted process_runner for unit tests of the layers above the runtime:
// no process is started, answers come from fake_response entries, and every
// process_spec received is recorded for assertions.

#include "runtime/process.hpp"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <poll.h>

namespace orch {

/// One scripted answer of fake_process_runner.
struct fake_response {
  /// Stdout lines, each delivered through the callback (without newline)
  /// and appended to result.out with a newline.
  std::vector<std::string> out_lines;
  /// Stderr text; its lines are delivered through the callback too.
  std::string err;
  int exit_code = 0;
  /// When non-zero the process "died" by this signal (exit_code is then -1).
  int term_signal = 0;
  /// False simulates a failed start with `spawn_errno`.
  bool started = true;
  int spawn_errno = ENOENT;
  /// A deadline that "expired"; implies term_signal SIGTERM unless given.
  deadline_kind expired = deadline_kind::none;
  /// Reports a cancelled run; implies term_signal SIGTERM unless given.
  bool cancelled = false;
  /// Blocks in run() until the cancel token fires (result.cancelled) or the
  /// spec's total deadline passes (expired == total). The lines are
  /// delivered before blocking. With neither available it returns at once
  /// with expired == total instead of hanging the test.
  bool hang = false;
  std::chrono::milliseconds elapsed{0};
  /// Runs before the lines are delivered, e.g. to write files into
  /// spec.cwd as an agent would.
  std::function<void(const process_spec&)> on_run;
};

/// A process_runner that answers from a script. Thread-safe.
///
/// A run picks its response, in this order: the responses registered with
/// on() for argv[0] (exactly, else its basename), used in order with the
/// last one repeating; the FIFO filled by enqueue(); the fallback set with
/// set_fallback(); else a start failure with ENOENT, like a missing program.
class fake_process_runner : public process_runner {
public:
  /// Adds a response for runs of `program` (argv[0] or its basename).
  void on(const std::string& program, fake_response response) {
    std::lock_guard<std::mutex> guard{mutex_};
    by_program_[program].push_back(std::move(response));
  }

  /// Queues a response for runs that match no on() entry.
  void enqueue(fake_response response) {
    std::lock_guard<std::mutex> guard{mutex_};
    queue_.push_back(std::move(response));
  }

  /// The response when nothing else matches.
  void set_fallback(fake_response response) {
    std::lock_guard<std::mutex> guard{mutex_};
    fallback_ = std::move(response);
  }

  /// Runs for every spec (before the response's own on_run).
  void set_hook(std::function<void(const process_spec&)> hook) {
    std::lock_guard<std::mutex> guard{mutex_};
    hook_ = std::move(hook);
  }

  /// Every spec received so far, in order.
  std::vector<process_spec> calls() const {
    std::lock_guard<std::mutex> guard{mutex_};
    return calls_;
  }

  std::size_t call_count() const {
    std::lock_guard<std::mutex> guard{mutex_};
    return calls_.size();
  }

  /// The last spec received; requires call_count() > 0.
  process_spec last_call() const {
    std::lock_guard<std::mutex> guard{mutex_};
    return calls_.back();
  }

  process_result run(const process_spec& spec, const line_callback& on_line,
                     const cancel_token* cancel) override {
    fake_response response;
    std::function<void(const process_spec&)> hook;
    {
      std::lock_guard<std::mutex> guard{mutex_};
      calls_.push_back(spec);
      response = pick(spec);
      hook = hook_;
    }
    // Called without the lock: hooks and callbacks may call back in.
    process_result result;
    if (!response.started) {
      result.spawn_errno = response.spawn_errno;
      return result;
    }
    result.started = true;
    if (hook)
      hook(spec);
    if (response.on_run)
      response.on_run(spec);
    for (const auto& line : response.out_lines)
      deliver(result.out, output_stream::out, line, spec, result, on_line);
    std::string_view err = response.err;
    while (!err.empty()) {
      auto newline = err.find('\n');
      auto line = err.substr(0, newline);
      deliver(result.err, output_stream::err, line, spec, result, on_line);
      err.remove_prefix(newline == std::string_view::npos ? err.size()
                                                          : newline + 1);
    }
    result.exit_code = response.exit_code;
    result.term_signal = response.term_signal;
    result.expired = response.expired;
    result.cancelled = response.cancelled;
    result.elapsed = response.elapsed;
    if (response.hang) {
      auto start = std::chrono::steady_clock::now();
      wait_for_stop(spec, cancel, result);
      result.elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(
        std::chrono::steady_clock::now() - start);
    }
    if (result.expired != deadline_kind::none || result.cancelled)
      if (result.term_signal == 0)
        result.term_signal = SIGTERM;
    if (result.term_signal != 0)
      result.exit_code = -1;
    return result;
  }

private:
  fake_response pick(const process_spec& spec) {
    std::string program = spec.argv.empty() ? std::string{} : spec.argv[0];
    auto found = by_program_.find(program);
    if (found == by_program_.end()) {
      auto slash = program.rfind('/');
      if (slash != std::string::npos)
        found = by_program_.find(program.substr(slash + 1));
    }
    if (found != by_program_.end() && !found->second.empty()) {
      auto& responses = found->second;
      if (responses.size() == 1)
        return responses.front(); // the last one repeats
      fake_response next = std::move(responses.front());
      responses.pop_front();
      return next;
    }
    if (!queue_.empty()) {
      fake_response next = std::move(queue_.front());
      queue_.pop_front();
      return next;
    }
    if (fallback_)
      return *fallback_;
    fake_response missing;
    missing.started = false;
    missing.spawn_errno = ENOENT;
    return missing;
  }

  /// Appends one line within the spec's output cap, as the real runner does.
  static void deliver(std::string& sink, output_stream stream,
                      std::string_view line, const process_spec& spec,
                      process_result& result, const line_callback& on_line) {
    std::size_t room = spec.output_cap - std::min(spec.output_cap, sink.size());
    std::size_t size = line.size() + 1;
    if (size > room) {
      sink.append(line.data(), room); // the cut line is not delivered
      result.truncated = true;
      result.dropped_bytes += size - room;
      return;
    }
    sink.append(line.data(), line.size());
    sink.push_back('\n');
    if (on_line)
      on_line(stream, line);
  }

  static void wait_for_stop(const process_spec& spec,
                            const cancel_token* cancel,
                            process_result& result) {
    auto start = std::chrono::steady_clock::now();
    for (;;) {
      if (cancel != nullptr && cancel->cancelled()) {
        result.cancelled = true;
        return;
      }
      int timeout = -1;
      if (spec.total_deadline.count() > 0) {
        auto left = start + spec.total_deadline
                    - std::chrono::steady_clock::now();
        if (left <= std::chrono::steady_clock::duration::zero()) {
          result.expired = deadline_kind::total;
          return;
        }
        timeout = static_cast<int>(
          std::chrono::ceil<std::chrono::milliseconds>(left).count());
      }
      pollfd fds[1];
      nfds_t count = 0;
      if (cancel != nullptr)
        fds[count++] = pollfd{cancel->fd(), POLLIN, 0};
      if (count == 0 && timeout < 0) {
        result.expired = deadline_kind::total;
        return;
      }
      poll(fds, count, timeout);
    }
  }

  mutable std::mutex mutex_;
  std::map<std::string, std::deque<fake_response>> by_program_;
  std::deque<fake_response> queue_;
  std::optional<fake_response> fallback_;
  std::function<void(const process_spec&)> hook_;
  std::vector<process_spec> calls_;
};

} // namespace orch
