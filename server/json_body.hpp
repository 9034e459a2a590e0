#pragma once

// Reads a JSON request body field by field. The first problem becomes a
// 400 response naming the field: "field 'max_iterations': expected an
// integer from 1 to 10, got \"3\"". Handlers stop at the first false:
//
//   json_body in{req.body};
//   std::string task;
//   if (!in.only({"task", "workflow"}) || !in.get_string("task", task, true))
//     return in.error();

#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "server/http.hpp"

namespace orch::server {

class json_body {
public:
  /// Parses `body`; not JSON, or not a JSON object, is an error at once.
  explicit json_body(const std::string& body);

  /// Returns whether no problem was found so far.
  bool ok() const {
    return ok_;
  }

  /// The 400 response for the first problem (code invalid_json or
  /// invalid_field).
  const response& error() const {
    return error_;
  }

  /// The parsed object (null when not ok from the start).
  const nlohmann::json& value() const {
    return value_;
  }

  /// Refuses a field not in `known` (naming it).
  bool only(std::initializer_list<std::string_view> known);

  /// A string field; `required` refuses a missing one. A null counts as
  /// missing.
  bool get_string(std::string_view field, std::string& out, bool required);

  /// An integer field within [min, max].
  bool get_int(std::string_view field, int64_t& out, bool required, int64_t min,
               int64_t max);

  bool get_bool(std::string_view field, bool& out, bool required);

  /// A string or an array of strings.
  bool get_string_list(std::string_view field, std::vector<std::string>& out,
                       bool required);

  /// Records a problem with `field` (for checks of the handler's own) and
  /// returns false.
  bool fail(std::string_view field, const std::string& what);

  /// Whether the body has `field` (not null).
  bool has(std::string_view field) const;

private:
  const nlohmann::json* find(std::string_view field) const;
  bool missing(std::string_view field, bool required);

  nlohmann::json value_;
  bool ok_ = true;
  response error_;
};

/// Returns a short description of `j` for error messages: its type and,
/// for scalars, the value (cut to 40 bytes).
std::string describe_json(const nlohmann::json& j);

} // namespace orch::server
