#pragma once

// Follow-up detection: whether a user message in a session continues the
// previous task or starts a new one. Plain code, no CAF.
//
// The rules, in order:
// 1. No previous task in the session: a new task.
// 2. The message is split into words: runs of letters, digits, `_`, `'`,
//    `-` and any non-ASCII byte; `'` and `-` at either end of a word are
//    dropped. Words are compared case-insensitively (ASCII), whole words
//    only: "address", "nowhere", "fixture", "add-on", "fix_bug" and
//    "updates" contain no keyword.
// 3. Keywords: add, also, now, then, next, improve, fix, change, update,
//    modify, additionally, please, try; and the phrases "make it", "can
//    you", "would you" (consecutive words).
// 4. Fewer than 10 words with a keyword: a follow-up.
// 5. 10 words or more with a keyword: ambiguous (ask).
// 6. Fewer than 10 words without a keyword: ambiguous (ask).
// 7. 10 words or more without a keyword: a new task.

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace orch {

/// Messages with fewer words than this are short.
inline constexpr std::size_t followup_short_words = 10;

enum class followup_verdict {
  new_task,
  followup,
  ambiguous,
};

struct followup_decision {
  followup_verdict verdict = followup_verdict::new_task;
  /// The first keyword or phrase found, lowercase; empty when none.
  std::string keyword;
  /// Words in the message (rule 2).
  std::size_t words = 0;
  /// One line saying why ("short message with \"add\"").
  std::string reason;
};

/// The message's words, lowercase (rule 2).
std::vector<std::string> message_words(std::string_view message);

/// Applies the rules above.
followup_decision detect_followup(std::string_view message, bool has_previous);

std::string to_string(followup_verdict x);

} // namespace orch
