#pragma once

// The lexical rules for paths an agent names (no file system access), and
// the printable form of any name for messages. The file-system half of the
// check is the descriptor walk in workspace.cpp that every write uses.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace orch::detail {

/// Decodes one UTF-8 sequence at `i` into `cp` and advances `i`; returns
/// false when it is malformed (overlong, surrogate, beyond U+10FFFF,
/// truncated).
bool decode_utf8(std::string_view s, std::size_t& i, uint32_t& cp);

/// Returns why the code point `cp` is refused in a path (a look-alike of path
/// punctuation, an invisible or text-direction character, ...) or nullptr.
const char* refused_code_point(uint32_t cp);

/// Returns `name` fit to print: `\` becomes `\\`, tab/newline/CR `\t \n \r`,
/// other control bytes and bytes that are not UTF-8 `\xNN`, and code points
/// the path rules refuse `\u{XXXX}`; other UTF-8 text is kept.
std::string printable(std::string_view name);

/// A path split into normalised components, or the reason it is refused.
struct lexical_path {
  bool ok = false;
  std::vector<std::string> parts;
  std::string reason;
};

/// Applies the rules documented at check_workspace_path except those that
/// look at the file system. With `allow_meta`, paths into the meta dir pass
/// (restore reads backups there).
lexical_path split_workspace_path(std::string_view path, bool allow_meta);

} // namespace orch::detail
