// Saved sessions (runtime/session_store.hpp): the seed's JSON, names,
// atomic durable writes, corrupt files named and never overwritten unless
// forced.

#include <filesystem>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <csignal>

#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "runtime/session_store.hpp"
#include "support/temp_tree.hpp"

namespace orch {
namespace {

namespace fs = std::filesystem;
using test::read_text;
using test::write_text;

stored_session sample() {
  stored_session s;
  s.session_id = "0123456789abcdef";
  s.created_at = "2024-01-15T10:00:00Z";
  s.workflow = "default";
  s.workspace = "/w/session-0123456789abcdef";
  s.agent = "codex";
  s.conversation_history = {
    {"user", "create a REST API", {}, "2024-01-15T10:00:00Z", "r1"},
    {"assistant",
     "API created...",
     {"api.py", "models.py"},
     "2024-01-15T10:01:30Z",
     "r1"},
  };
  s.context.has_previous = true;
  s.context.previous_task = "create a REST API";
  s.context.summary = "completed\nAPI created";
  s.context.files = {"api.py", "models.py"};
  s.context.workspace = s.workspace;
  s.context.workflow = "default";
  s.context.timestamp = "2024-01-15T10:01:30Z";
  s.context.run_id = "r1";
  s.context.status = "converged";
  return s;
}

class session_store_test : public test::temp_tree {
protected:
  fs::path state() const {
    return base_ / "state";
  }
};

TEST(session_names, the_rules) {
  for (auto ok : {"blog-api", "blog_api.v2", "A1", "x", "0123456789abcdef"})
    EXPECT_EQ(check_session_name(ok), "") << ok;
  EXPECT_EQ(check_session_name(""), "a session name must not be empty");
  EXPECT_EQ(check_session_name(std::string(101, 'a')),
            "a session name has at most 100 characters");
  EXPECT_EQ(check_session_name(std::string(100, 'a')), "");
  for (auto bad : {"../x", "a/b", "a b", "x\\y", "caf\xc3\xa9", "a\nb"})
    EXPECT_EQ(check_session_name(bad),
              "a session name may only hold letters, digits, '.', '_' and '-' "
              "(no '/', spaces or other characters)")
      << bad;
  for (auto bad : {"..", ".hidden", "-rf"})
    EXPECT_EQ(check_session_name(bad),
              "a session name must not start with '.' or '-'")
      << bad;
}

TEST(session_json, the_seed_format_round_trips) {
  auto s = sample();
  auto text = session_to_json(s);
  auto j = nlohmann::json::parse(text);
  EXPECT_EQ(j["session_id"], "0123456789abcdef");
  EXPECT_EQ(j["created_at"], "2024-01-15T10:00:00Z");
  EXPECT_EQ(j["workflow"], "default");
  EXPECT_EQ(j["workspace"], "/w/session-0123456789abcdef");
  ASSERT_EQ(j["conversation_history"].size(), 2u);
  EXPECT_EQ(j["conversation_history"][1]["role"], "assistant");
  EXPECT_EQ(j["conversation_history"][1]["files"][1], "models.py");
  EXPECT_EQ(j["conversation_history"][1]["timestamp"], "2024-01-15T10:01:30Z");
  EXPECT_EQ(j["metadata"]["agent"], "codex");
  EXPECT_EQ(j["metadata"]["context"]["summary"], "completed\nAPI created");
  std::string error;
  auto back = session_from_json(text, error);
  ASSERT_TRUE(back) << error;
  EXPECT_EQ(session_to_json(*back), text);
}

TEST(session_json, the_seed_example_itself_is_read) {
  // The seed's example, verbatim: no metadata keys of ours, no files on the
  // user message.
  const char* seed = R"({
  "session_id": "uuid-here",
  "created_at": "2024-01-15T10:00:00Z",
  "workflow": "default",
  "conversation_history": [
    {"role": "user", "content": "create a REST API",
     "timestamp": "2024-01-15T10:00:00Z"},
    {"role": "assistant", "content": "API created...",
     "files": ["api.py", "models.py"], "timestamp": "2024-01-15T10:01:30Z"}
  ],
  "workspace": "./workspace",
  "metadata": {}
})";
  std::string error;
  auto s = session_from_json(seed, error);
  ASSERT_TRUE(s) << error;
  EXPECT_EQ(s->session_id, "uuid-here");
  ASSERT_EQ(s->conversation_history.size(), 2u);
  EXPECT_TRUE(s->conversation_history[0].files.empty());
  EXPECT_EQ(s->conversation_history[1].files.size(), 2u);
  EXPECT_FALSE(s->context.has_previous);
  EXPECT_EQ(s->agent, "");
}

TEST(session_json, bad_input_names_what_and_where) {
  struct row {
    std::string text;
    std::string error;
  };
  auto base = [](const std::string& history) {
    return R"({"session_id":"a","created_at":"t","workflow":"w",)"
           R"("workspace":"/w","conversation_history":)"
           + history + "}";
  };
  const row rows[] = {
    {"{", "not valid JSON: "},
    {"[]", "expected a JSON object at the top"},
    {R"({"created_at":"t"})", "session_id: missing"},
    {R"({"session_id":7})", "session_id: expected a string"},
    {base("{}"), "conversation_history: expected a list"},
    {base("[1]"), "conversation_history[0]: expected an object"},
    {base(R"([{"role":"user","content":"x"},{"content":"y"}])"),
     "conversation_history[1].role: missing"},
    {base(R"([{"role":"robot","content":"x"}])"),
     "conversation_history[0].role: expected \"user\" or \"assistant\", not "
     "\"robot\""},
    {base(R"([{"role":"user","content":"x","files":[1]}])"),
     "conversation_history[0].files[0]: expected a string"},
  };
  for (auto& r : rows) {
    SCOPED_TRACE(r.text);
    std::string error;
    EXPECT_FALSE(session_from_json(r.text, error));
    EXPECT_EQ(error.substr(0, r.error.size()), r.error);
  }
}

TEST_F(session_store_test, save_then_load_and_list) {
  session_store store{state()};
  std::string error;
  ASSERT_TRUE(store.save("blog-api", sample(), false, error)) << error;
  auto path = state() / "sessions" / "blog-api.json";
  EXPECT_EQ(store.path_of("blog-api"), path);
  ASSERT_TRUE(fs::exists(path));
  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_EQ(read_text(path), session_to_json(sample()));
  auto back = store.load("blog-api", error);
  ASSERT_TRUE(back) << error;
  EXPECT_EQ(session_to_json(*back), session_to_json(sample()));
  // Saving again replaces it; no temp file is left behind.
  auto s2 = sample();
  s2.conversation_history.pop_back();
  ASSERT_TRUE(store.save("blog-api", s2, false, error)) << error;
  EXPECT_EQ(read_text(path), session_to_json(s2));
  int entries = 0;
  for (auto& e : fs::directory_iterator(state() / "sessions")) {
    (void)e;
    ++entries;
  }
  EXPECT_EQ(entries, 1);
  auto all = store.list(error);
  EXPECT_EQ(error, "");
  ASSERT_EQ(all.size(), 1u);
  EXPECT_EQ(all[0].name, "blog-api");
  ASSERT_TRUE(all[0].session);
  EXPECT_EQ(all[0].session->conversation_history.size(), 1u);
}

TEST_F(session_store_test, a_missing_folder_lists_nothing_and_creates_nothing) {
  session_store store{state()};
  std::string error;
  EXPECT_TRUE(store.list(error).empty());
  EXPECT_EQ(error, "");
  EXPECT_FALSE(fs::exists(state()));
  EXPECT_FALSE(store.load("nope", error));
  EXPECT_EQ(error, "no saved session \"nope\" ("
                     + (state() / "sessions" / "nope.json").string()
                     + " does not exist)");
}

TEST_F(session_store_test, bad_names_are_refused_before_any_file_work) {
  session_store store{state()};
  std::string error;
  EXPECT_FALSE(store.save("../escape", sample(), true, error));
  EXPECT_EQ(error, "invalid session name \"../escape\": a session name may "
                   "only hold letters, digits, '.', '_' and '-' (no '/', "
                   "spaces or other characters)");
  EXPECT_FALSE(fs::exists(state()));
  EXPECT_FALSE(store.load("..", error));
  EXPECT_EQ(error, "invalid session name \"..\": a session name must not "
                   "start with '.' or '-'");
}

TEST_F(session_store_test, a_corrupt_file_is_named_and_not_overwritten) {
  session_store store{state()};
  std::string error;
  ASSERT_TRUE(store.save("good", sample(), false, error)) << error;
  auto path = state() / "sessions" / "bad.json";
  write_text(path, "{\"session_id\": \"x\", trunc");
  EXPECT_FALSE(store.load("bad", error));
  EXPECT_EQ(error.rfind(path.string()
                          + ": not a valid session: not valid "
                            "JSON: ",
                        0),
            0u)
    << error;
  EXPECT_FALSE(store.save("bad", sample(), false, error));
  EXPECT_EQ(
    error.rfind(path.string() + " exists and is not a valid session", 0), 0u)
    << error;
  EXPECT_NE(error.find("not overwritten"), std::string::npos);
  EXPECT_EQ(read_text(path), "{\"session_id\": \"x\", trunc");
  auto all = store.list(error);
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[0].name, "bad");
  EXPECT_FALSE(all[0].session);
  EXPECT_EQ(all[0].error.rfind(path.string() + ": not a valid session", 0), 0u);
  EXPECT_EQ(all[1].name, "good");
  EXPECT_TRUE(all[1].session);
  // Forced, it is replaced.
  ASSERT_TRUE(store.save("bad", sample(), true, error)) << error;
  EXPECT_TRUE(store.load("bad", error));
}

TEST_F(session_store_test, a_link_is_neither_read_nor_written_through) {
  session_store store{state()};
  std::string error;
  ASSERT_TRUE(store.save("real", sample(), false, error)) << error;
  auto target = outside_ / "victim.json";
  write_text(target, "keep");
  fs::create_symlink(target, state() / "sessions" / "link.json");
  EXPECT_FALSE(store.load("link", error));
  EXPECT_EQ(error, (state() / "sessions" / "link.json").string()
                     + ": is a symbolic link, not read");
  // Not overwritten unforced; forced, the link is replaced, the target kept.
  EXPECT_FALSE(store.save("link", sample(), false, error));
  ASSERT_TRUE(store.save("link", sample(), true, error)) << error;
  EXPECT_EQ(read_text(target), "keep");
  EXPECT_FALSE(fs::is_symlink(state() / "sessions" / "link.json"));
}

TEST_F(session_store_test, leftover_temp_files_are_not_listed) {
  // A kill during a save leaves at most a temp file beside the old one.
  session_store store{state()};
  std::string error;
  ASSERT_TRUE(store.save("s", sample(), false, error)) << error;
  write_text(state() / "sessions" / ".orch-tmp-1-2-3", "{half");
  auto all = store.list(error);
  ASSERT_EQ(all.size(), 1u);
  EXPECT_EQ(all[0].name, "s");
  EXPECT_TRUE(store.load("s", error));
}

TEST_F(session_store_test,
       a_kill_during_a_save_leaves_the_old_or_the_new_file) {
  // A child saves two versions in turn, saying "about to save" on a pipe
  // before each; it is killed with SIGKILL right after its k-th word, so
  // the kill lands inside or between saves. The file must always load and
  // be one of the two versions.
  session_store store{state()};
  auto a = sample();
  auto b = sample();
  b.conversation_history.push_back(
    {"user", std::string(200000, 'x'), {}, "2024-01-15T10:05:00Z", "r2"});
  std::string error;
  ASSERT_TRUE(store.save("kill", a, false, error)) << error;
  auto text_a = session_to_json(a);
  auto text_b = session_to_json(b);
  for (int round = 0; round < 12; ++round) {
    int fds[2];
    ASSERT_EQ(::pipe(fds), 0);
    auto pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      ::close(fds[0]);
      std::string err;
      for (int i = 0;; ++i) {
        if (::write(fds[1], "s", 1) != 1)
          ::_exit(1);
        store.save("kill", i % 2 == 0 ? b : a, false, err);
      }
    }
    ::close(fds[1]);
    char c = 0;
    for (int k = 0; k <= round % 4; ++k)
      ASSERT_EQ(::read(fds[0], &c, 1), 1);
    ::kill(pid, SIGKILL);
    int status = 0;
    ::waitpid(pid, &status, 0);
    ::close(fds[0]);
    EXPECT_TRUE(WIFSIGNALED(status));
    auto loaded = store.load("kill", error);
    ASSERT_TRUE(loaded) << "round " << round << ": " << error;
    auto text = read_text(state() / "sessions" / "kill.json");
    EXPECT_TRUE(text == text_a || text == text_b) << "round " << round;
  }
  // Leftover temp files (a kill before the rename) are not sessions.
  auto all = store.list(error);
  ASSERT_EQ(all.size(), 1u);
  EXPECT_EQ(all[0].name, "kill");
}

} // namespace
} // namespace orch
