#include "runtime/followup.hpp"

#include <array>

namespace orch {

namespace {

bool word_char(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
         || (c >= '0' && c <= '9') || c == '_' || c == '\'' || c == '-'
         || c >= 0x80;
}

char lower(char c) {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

constexpr std::array<std::string_view, 13> single_keywords{
  "add",    "also",   "now",    "then",         "next",   "improve", "fix",
  "change", "update", "modify", "additionally", "please", "try"};

constexpr std::array<std::array<std::string_view, 2>, 3> phrase_keywords{{
  {"make", "it"},
  {"can", "you"},
  {"would", "you"},
}};

} // namespace

std::vector<std::string> message_words(std::string_view message) {
  std::vector<std::string> out;
  std::size_t i = 0;
  while (i < message.size()) {
    while (i < message.size()
           && !word_char(static_cast<unsigned char>(message[i])))
      ++i;
    std::string word;
    while (i < message.size()
           && word_char(static_cast<unsigned char>(message[i])))
      word += lower(message[i++]);
    auto first = word.find_first_not_of("'-");
    if (first == std::string::npos)
      continue;
    auto last = word.find_last_not_of("'-");
    out.push_back(word.substr(first, last - first + 1));
  }
  return out;
}

followup_decision detect_followup(std::string_view message, bool has_previous) {
  followup_decision d;
  auto words = message_words(message);
  d.words = words.size();
  if (!has_previous) {
    d.verdict = followup_verdict::new_task;
    d.reason = "no previous task";
    return d;
  }
  for (std::size_t i = 0; i < words.size() && d.keyword.empty(); ++i) {
    for (auto& kw : single_keywords)
      if (words[i] == kw) {
        d.keyword = std::string{kw};
        break;
      }
    if (!d.keyword.empty() || i + 1 >= words.size())
      continue;
    for (auto& ph : phrase_keywords)
      if (words[i] == ph[0] && words[i + 1] == ph[1]) {
        d.keyword = std::string{ph[0]} + " " + std::string{ph[1]};
        break;
      }
  }
  bool is_short = d.words < followup_short_words;
  auto count = std::to_string(d.words) + (d.words == 1 ? " word" : " words");
  if (!d.keyword.empty() && is_short) {
    d.verdict = followup_verdict::followup;
    d.reason = "short message (" + count + ") with \"" + d.keyword + "\"";
  } else if (!d.keyword.empty()) {
    d.verdict = followup_verdict::ambiguous;
    d.reason = "long message (" + count + ") with \"" + d.keyword + "\"";
  } else if (is_short) {
    d.verdict = followup_verdict::ambiguous;
    d.reason = "short message (" + count + ") without a follow-up keyword";
  } else {
    d.verdict = followup_verdict::new_task;
    d.reason = "long message (" + count + ") without a follow-up keyword";
  }
  return d;
}

std::string to_string(followup_verdict x) {
  switch (x) {
    case followup_verdict::new_task:
      return "new_task";
    case followup_verdict::followup:
      return "followup";
    case followup_verdict::ambiguous:
      return "ambiguous";
  }
  return "?";
}

} // namespace orch
