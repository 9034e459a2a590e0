// The UTF-8 helpers of runtime/text.hpp that adapters and the CLI use on
// agent text: validity (cross-checked against nlohmann's own check on random
// bytes), clipping on character boundaries, repair, terminal escaping.

#include <random>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "runtime/text.hpp"

using namespace orch;

namespace {

std::string random_bytes(std::mt19937& rng, std::size_t n) {
  // Mostly bytes that make up (or break) multi-byte characters.
  static constexpr unsigned char special[]
    = {0x00, 0x1B, '\n', '\r', '\t', 0x7F, 0x80, 0x85, 0x9B, 0xA0,
       0xAE, 0xA9, 0xBF, 0xC0, 0xC1, 0xC2, 0xDF, 0xE0, 0xE2, 0xED,
       0xEF, 0xF0, 0xF4, 0xF5, 0xFF, 0x80, 0x81, 0xA6, 'a'};
  std::uniform_int_distribution<std::size_t> pick(0, sizeof special - 1);
  std::uniform_int_distribution<int> byte(0, 255);
  std::uniform_int_distribution<int> coin(0, 2);
  std::string out;
  for (std::size_t i = 0; i < n; ++i)
    out += static_cast<char>(coin(rng) == 0 ? byte(rng) : special[pick(rng)]);
  return out;
}

bool nlohmann_accepts(const std::string& s) {
  try {
    (void)nlohmann::json(s).dump();
    return true;
  } catch (const nlohmann::json::exception&) {
    return false;
  }
}

TEST(Utf8Text, ValidityAgreesWithNlohmannOnRandomBytes) {
  std::mt19937 rng{7};
  int valid = 0;
  for (int n = 0; n < 20000; ++n) {
    auto s = random_bytes(rng, 1 + n % 6);
    EXPECT_EQ(text::is_valid_utf8(s), nlohmann_accepts(s))
      << testing::PrintToString(s);
    valid += text::is_valid_utf8(s) ? 1 : 0;
  }
  EXPECT_GT(valid, 100); // the generator does make valid text too
}

TEST(Utf8Text, KnownValidAndInvalidForms) {
  EXPECT_TRUE(text::is_valid_utf8("plain é € 𝄞"));
  EXPECT_FALSE(text::is_valid_utf8("\xff"));
  EXPECT_FALSE(text::is_valid_utf8("\xe2\x82"));         // cut
  EXPECT_FALSE(text::is_valid_utf8("\xc0\xaf"));         // overlong '/'
  EXPECT_FALSE(text::is_valid_utf8("\xed\xa0\x80"));     // surrogate
  EXPECT_FALSE(text::is_valid_utf8("\xf4\x90\x80\x80")); // > U+10FFFF
  EXPECT_FALSE(text::is_valid_utf8("caf\xe9.txt"));      // Latin-1
}

TEST(Utf8Text, ClipNeverSplitsACharacter) {
  EXPECT_EQ(text::clip("abc", 3), "abc");
  EXPECT_EQ(text::clip("abcd", 3), "abc…");
  EXPECT_EQ(text::clip("a€", 2), "a…"); // € is 3 bytes
  EXPECT_EQ(text::clip("a€", 3), "a…");
  EXPECT_EQ(text::clip("a€b", 4), "a€…");
  EXPECT_EQ(text::clip("𝄞𝄞", 5, ""), "𝄞");
  EXPECT_EQ(text::clip("€", 0, ""), "");
  std::mt19937 rng{11};
  for (int n = 0; n < 5000; ++n) {
    auto s = text::to_valid_utf8(random_bytes(rng, 1 + n % 40));
    auto max = static_cast<std::size_t>(n % 17);
    auto c = text::clip(s, max, "");
    EXPECT_LE(c.size(), max);
    EXPECT_EQ(s.compare(0, c.size(), c), 0);
    EXPECT_TRUE(text::is_valid_utf8(c)) << testing::PrintToString(s) << max;
    // The cut is as late as a boundary allows: at most 3 bytes early.
    EXPECT_GE(c.size() + 3, std::min(max, s.size()));
  }
}

TEST(Utf8Text, ToValidUtf8RepairsOnlyWhatIsBroken) {
  EXPECT_EQ(text::to_valid_utf8("é ok"), "é ok");
  EXPECT_EQ(text::to_valid_utf8("caf\xe9"), "caf\xef\xbf\xbd");
  std::mt19937 rng{13};
  for (int n = 0; n < 5000; ++n) {
    auto s = random_bytes(rng, n % 30);
    auto v = text::to_valid_utf8(s);
    EXPECT_TRUE(text::is_valid_utf8(v));
    if (text::is_valid_utf8(s)) {
      EXPECT_EQ(v, s);
    }
  }
}

TEST(Utf8Text, EscapeForTerminalShowsControlsAndBadBytes) {
  using text::escape_for_terminal;
  EXPECT_EQ(escape_for_terminal("naïve € ok\tx"), "naïve € ok\tx");
  EXPECT_EQ(escape_for_terminal("\x1b[31mred\x1b[0m"), "\\x1b[31mred\\x1b[0m");
  EXPECT_EQ(escape_for_terminal("\x1b]0;title\x07"), "\\x1b]0;title\\x07");
  EXPECT_EQ(escape_for_terminal(std::string("a\0b", 3)), "a\\x00b");
  EXPECT_EQ(escape_for_terminal("del\x7f"), "del\\x7f");
  EXPECT_EQ(escape_for_terminal("c1 \xc2\x9b"
                                "31m"),
            "c1 \\u009b31m");
  EXPECT_EQ(escape_for_terminal("\xe2\x80\xae"
                                "exe.txt"),
            "\\u202eexe.txt");
  EXPECT_EQ(escape_for_terminal("\xe2\x81\xa6x\xe2\x81\xa9"),
            "\\u2066x\\u2069");
  EXPECT_EQ(escape_for_terminal("caf\xe9 \xff"), "caf\\xe9 \\xff");
  EXPECT_EQ(escape_for_terminal("a\r\nb\rc"), "a\\r\\nb\\rc");
  EXPECT_EQ(escape_for_terminal("a\r\nb\nc\rd", true), "a\nb\nc\\rd");
}

TEST(Utf8Text, EscapedTextIsValidAndInertOnRandomBytes) {
  std::mt19937 rng{17};
  for (int n = 0; n < 5000; ++n) {
    auto s = random_bytes(rng, n % 50);
    for (bool keep : {false, true}) {
      auto e = text::escape_for_terminal(s, keep);
      ASSERT_TRUE(text::is_valid_utf8(e)) << testing::PrintToString(s);
      for (std::size_t i = 0; i < e.size(); ++i) {
        auto c = static_cast<unsigned char>(e[i]);
        EXPECT_TRUE(c >= 0x20 || c == '\t' || (keep && c == '\n'))
          << testing::PrintToString(s);
        EXPECT_NE(c, 0x7F);
        if (c == 0xC2 && i + 1 < e.size()) {
          EXPECT_GE(static_cast<unsigned char>(e[i + 1]), 0xA0);
        }
        if (c == 0xE2 && i + 2 < e.size()) {
          auto b1 = static_cast<unsigned char>(e[i + 1]);
          auto b2 = static_cast<unsigned char>(e[i + 2]);
          EXPECT_FALSE(b1 == 0x80 && b2 >= 0xAA && b2 <= 0xAE);
          EXPECT_FALSE(b1 == 0x81 && b2 >= 0xA6 && b2 <= 0xA9);
        }
      }
    }
  }
}

} // namespace
