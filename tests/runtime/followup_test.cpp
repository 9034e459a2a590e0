// Follow-up detection (runtime/followup.hpp): whole-word keywords, the
// word-count threshold, and the original's false positives.

#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "runtime/followup.hpp"

namespace orch {
namespace {

struct row {
  std::string message;
  followup_verdict expected;
  std::string keyword;
};

constexpr auto F = followup_verdict::followup;
constexpr auto N = followup_verdict::new_task;
constexpr auto A = followup_verdict::ambiguous;

TEST(followup, the_rules_table) {
  const std::vector<row> rows{
    // Short with a keyword: follow-up (the seed's example session).
    {"add authentication", F, "add"},
    {"also add rate limiting", F, "also"},
    {"Add tests", F, "add"},
    {"ADD TESTS!", F, "add"},
    {"now write the docs", F, "now"},
    {"then deploy it", F, "then"},
    {"next, the frontend", F, "next"},
    {"improve the error messages", F, "improve"},
    {"fix the failing test", F, "fix"},
    {"change the port to 8080", F, "change"},
    {"update the readme", F, "update"},
    {"modify the schema", F, "modify"},
    {"additionally log requests", F, "additionally"},
    {"please use tabs", F, "please"},
    {"try a faster parser", F, "try"},
    {"make it faster", F, "make it"},
    {"Can you add a test?", F, "can you"},
    {"can you document it", F, "can you"},
    {"would you rename it", F, "would you"},
    {"(fix) the bug", F, "fix"},
    {"'add' logging", F, "add"},
    // The original's false positives: substrings are not keywords. Short
    // without a keyword: ask.
    {"address validation", A, ""},
    {"nowhere to be found", A, ""},
    {"fixture for the db", A, ""},
    {"adder circuit simulator", A, ""},
    {"updates feed reader", A, ""},
    {"tryhard mode game", A, ""},
    {"the add-on store", A, ""},
    {"rename fix_bug helper", A, ""},
    {"changelog generator", A, ""},
    {"pleased customers dashboard", A, ""},
    {"make a CLI that prints it", A, ""},
    {"you can go", A, ""},
    // Ten words or more with a keyword: ask.
    {"write a command line tool that can add numbers from files", A, "add"},
    {"build a web app where users then share photos with friends", A, "then"},
    // Ten words or more without a keyword: a new task.
    {"create a REST API for a blog with posts and comments", N, ""},
    {"write an address validation library for postal codes of Europe", N, ""},
    {"a fixture loader that reads nowhere near as slowly as before", N, ""},
  };
  for (auto& r : rows) {
    SCOPED_TRACE(r.message);
    auto d = detect_followup(r.message, true);
    EXPECT_EQ(to_string(d.verdict), to_string(r.expected));
    EXPECT_EQ(d.keyword, r.keyword);
    EXPECT_FALSE(d.reason.empty());
  }
}

TEST(followup, without_a_previous_task_every_message_is_a_new_task) {
  for (auto m : {"add authentication", "address validation", "fix it", "x"}) {
    SCOPED_TRACE(m);
    auto d = detect_followup(m, false);
    EXPECT_EQ(d.verdict, followup_verdict::new_task);
    EXPECT_EQ(d.reason, "no previous task");
  }
}

TEST(followup, the_threshold_is_ten_words) {
  // 9 words with a keyword: follow-up; 10: ambiguous.
  auto nine = detect_followup("add one two three four five six seven eight",
                              true);
  EXPECT_EQ(nine.words, 9u);
  EXPECT_EQ(nine.verdict, followup_verdict::followup);
  EXPECT_EQ(nine.reason, "short message (9 words) with \"add\"");
  auto ten = detect_followup("add one two three four five six seven eight nine",
                             true);
  EXPECT_EQ(ten.words, 10u);
  EXPECT_EQ(ten.verdict, followup_verdict::ambiguous);
  EXPECT_EQ(ten.reason, "long message (10 words) with \"add\"");
  auto nine_plain = detect_followup("one two three four five six seven eight "
                                    "nine",
                                    true);
  EXPECT_EQ(nine_plain.verdict, followup_verdict::ambiguous);
  EXPECT_EQ(nine_plain.reason,
            "short message (9 words) without a follow-up keyword");
  auto ten_plain
    = detect_followup("one two three four five six seven eight nine ten", true);
  EXPECT_EQ(ten_plain.verdict, followup_verdict::new_task);
  EXPECT_EQ(ten_plain.reason,
            "long message (10 words) without a follow-up keyword");
}

TEST(followup, words_split_on_punctuation_and_keep_inner_marks) {
  EXPECT_EQ(message_words("Hello, World! it's an add-on; fix_bug."),
            (std::vector<std::string>{"hello", "world", "it's", "an", "add-on",
                                      "fix_bug"}));
  EXPECT_EQ(message_words("  'quoted'  --dash-- "),
            (std::vector<std::string>{"quoted", "dash"}));
  EXPECT_TRUE(message_words("  ... !!! ").empty());
  // Non-ASCII letters belong to words: "fixé" is not "fix".
  EXPECT_EQ(detect_followup("fixé le bug", true).keyword, "");
  EXPECT_EQ(message_words("café add").size(), 2u);
}

TEST(followup, a_phrase_needs_its_words_in_a_row) {
  EXPECT_EQ(detect_followup("make it blue", true).keyword, "make it");
  EXPECT_EQ(detect_followup("make this blue", true).keyword, "");
  EXPECT_EQ(detect_followup("it make", true).keyword, "");
  EXPECT_EQ(detect_followup("you can", true).keyword, "");
  EXPECT_EQ(detect_followup("would, you", true).keyword, "would you");
}

} // namespace
} // namespace orch
