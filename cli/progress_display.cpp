#include "cli/progress_display.hpp"

#include <chrono>

#include <caf/stateful_actor.hpp>

#include "runtime/text.hpp"

namespace orch::cli {

namespace {

using display_self = display_actor::stateful_pointer<display_state>;

constexpr auto tick_interval = std::chrono::milliseconds{125};

const char* spinner[] = {"⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"};

std::string step_label(const progress_event& ev) {
  return "step " + std::to_string(ev.step_index + 1) + "/"
         + std::to_string(ev.step_count) + "  " + shown(ev.agent) + " · "
         + shown(ev.task_kind);
}

void clear_status(display_self self) {
  if (self->state.term.tty)
    std::fputs("\r\x1b[K", self->state.out);
}

void draw_status(display_self self) {
  auto& st = self->state;
  if (!st.term.tty || st.finished || st.running.empty())
    return;
  auto since = std::chrono::duration_cast<std::chrono::milliseconds>(
                 std::chrono::steady_clock::now() - st.last_event)
                 .count();
  auto now = st.last_elapsed + since;
  std::string line = spinner[st.frame % 10];
  line += " iteration " + std::to_string(st.iteration);
  for (auto& kvp : st.running)
    line += "  ·  " + kvp.second.label + " "
            + format_duration(now - kvp.second.start);
  std::fputs(("\r\x1b[K" + st.term.dim(line)).c_str(), st.out);
  std::fflush(st.out);
}

void print_line(display_self self, const std::string& line) {
  clear_status(self);
  std::fputs((line + "\n").c_str(), self->state.out);
  draw_status(self);
  std::fflush(self->state.out);
}

void on_event(display_self self, const progress_event& ev) {
  auto& st = self->state;
  st.last_elapsed = ev.elapsed_ms;
  st.last_event = std::chrono::steady_clock::now();
  st.step_count = ev.step_count;
  auto key = ev.agent + " " + ev.task_kind + " #"
             + std::to_string(ev.step_index);
  using kind = progress_event::kind_t;
  switch (ev.kind) {
    case kind::run_started:
      print_line(self, "Workspace: " + shown(ev.text));
      break;
    case kind::iteration_started:
      st.iteration = ev.iteration;
      print_line(self,
                 st.term.bold("Iteration " + std::to_string(ev.iteration)));
      break;
    case kind::step_started:
      st.running[key] = {shown(ev.agent) + " " + shown(ev.task_kind),
                         ev.elapsed_ms};
      print_line(self, "  → " + step_label(ev));
      if (st.term.tty && !st.ticking) {
        st.ticking = true;
        self->delayed_send(self, tick_interval, atom::tick_v);
      }
      break;
    case kind::agent_event:
      if (st.verbose)
        print_line(self, st.term.dim("      " + shown(ev.agent) + ": "
                                     + shown(ev.text)));
      break;
    case kind::step_notice:
      print_line(self,
                 st.term.yellow("    ↻ " + shown(ev.agent) + " · "
                                + shown(ev.task_kind) + ": " + shown(ev.text)));
      break;
    case kind::step_finished: {
      auto i = st.running.find(key);
      auto start = i != st.running.end() ? i->second.start : ev.elapsed_ms;
      st.running.erase(key);
      auto mark = ev.ok ? st.term.green("✓") : st.term.red("✗");
      auto line = "  " + mark + " " + step_label(ev) + "  ("
                  + format_duration(ev.elapsed_ms - start) + ")";
      if (!ev.text.empty())
        line += "  " + (ev.ok ? shown(ev.text) : st.term.red(shown(ev.text)));
      print_line(self, line);
      break;
    }
    case kind::run_finished:
      clear_status(self);
      st.finished = true;
      std::fflush(st.out);
      break;
  }
}

} // namespace

display_actor::behavior_type
display_impl(display_actor::stateful_pointer<display_state> self,
             std::FILE* out, bool verbose) {
  self->state.out = out;
  self->state.term = terminal::for_stream(out);
  self->state.verbose = verbose;
  self->state.last_event = std::chrono::steady_clock::now();
  return {
    [=](atom::progress, const progress_event& ev) {
      on_event(self, ev);
    },
    [=](atom::tick) {
      auto& st = self->state;
      if (st.finished || st.running.empty()) {
        st.ticking = false;
        return;
      }
      ++st.frame;
      draw_status(self);
      self->delayed_send(self, tick_interval, atom::tick_v);
    },
    [=](atom::flush) {
      clear_status(self);
      self->state.finished = true;
      std::fflush(self->state.out);
      return true;
    },
  };
}

} // namespace orch::cli
