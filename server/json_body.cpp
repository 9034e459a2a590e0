#include "server/json_body.hpp"

#include <limits>

namespace orch::server {

namespace {

std::string quoted(std::string_view field) {
  return "field '" + std::string{field} + "'";
}

} // namespace

std::string describe_json(const nlohmann::json& j) {
  std::string text;
  switch (j.type()) {
    case nlohmann::json::value_t::object:
      return "an object";
    case nlohmann::json::value_t::array:
      return "an array";
    case nlohmann::json::value_t::null:
      return "null";
    case nlohmann::json::value_t::string:
      text = "a string "
             + j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
      break;
    case nlohmann::json::value_t::boolean:
      text = std::string{"a boolean "} + (j.get<bool>() ? "true" : "false");
      break;
    default:
      text = "a number " + j.dump();
      break;
  }
  if (text.size() > 60)
    text = text.substr(0, 57) + "...";
  return text;
}

json_body::json_body(const std::string& body) {
  value_ = nlohmann::json::parse(body, nullptr, false);
  if (value_.is_discarded()) {
    ok_ = false;
    // Where it breaks, without echoing the bytes.
    std::string where;
    try {
      auto again = nlohmann::json::parse(body);
      (void)again;
    } catch (const nlohmann::json::parse_error& e) {
      where = " (syntax error at byte " + std::to_string(e.byte) + ")";
    }
    error_ = response::error(400, "invalid_json",
                             body.empty() ? "the request body is empty; "
                                            "expected a JSON object"
                                          : "the request body is not valid "
                                            "JSON"
                                              + where);
    value_ = nullptr;
    return;
  }
  if (!value_.is_object()) {
    ok_ = false;
    error_ = response::error(400, "invalid_json",
                             "the request body must be a JSON object, not "
                               + describe_json(value_));
    value_ = nullptr;
  }
}

bool json_body::fail(std::string_view field, const std::string& what) {
  if (ok_) {
    ok_ = false;
    error_ = response::error(400, "invalid_field", quoted(field) + ": " + what);
  }
  return false;
}

const nlohmann::json* json_body::find(std::string_view field) const {
  if (!value_.is_object())
    return nullptr;
  auto it = value_.find(std::string{field});
  if (it == value_.end() || it->is_null())
    return nullptr;
  return &*it;
}

bool json_body::has(std::string_view field) const {
  return find(field) != nullptr;
}

bool json_body::missing(std::string_view field, bool required) {
  if (required)
    return fail(field, "required");
  return ok_;
}

bool json_body::only(std::initializer_list<std::string_view> known) {
  if (!ok_)
    return false;
  for (auto& [key, val] : value_.items()) {
    bool found = false;
    for (auto k : known)
      found = found || k == key;
    if (!found) {
      std::string names;
      for (auto k : known)
        names += (names.empty() ? "" : ", ") + std::string{k};
      auto shown = nlohmann::json(key).dump(
        -1, ' ', false, nlohmann::json::error_handler_t::replace);
      if (shown.size() > 60)
        shown = shown.substr(0, 57) + "...";
      ok_ = false;
      error_
        = response::error(400, "invalid_field",
                          "unknown field " + shown + " (known: " + names + ")");
      return false;
    }
  }
  return true;
}

bool json_body::get_string(std::string_view field, std::string& out,
                           bool required) {
  if (!ok_)
    return false;
  auto j = find(field);
  if (j == nullptr)
    return missing(field, required);
  if (!j->is_string())
    return fail(field, "expected a string, got " + describe_json(*j));
  out = j->get<std::string>();
  return true;
}

bool json_body::get_int(std::string_view field, int64_t& out, bool required,
                        int64_t min, int64_t max) {
  if (!ok_)
    return false;
  auto j = find(field);
  if (j == nullptr)
    return missing(field, required);
  auto range = "an integer from " + std::to_string(min) + " to "
               + std::to_string(max);
  if (!j->is_number_integer())
    return fail(field, "expected " + range + ", got " + describe_json(*j));
  int64_t v = 0;
  if (j->is_number_unsigned()) {
    auto u = j->get<uint64_t>();
    if (u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
      return fail(field, "expected " + range + ", got " + describe_json(*j));
    v = static_cast<int64_t>(u);
  } else {
    v = j->get<int64_t>();
  }
  if (v < min || v > max)
    return fail(field, "expected " + range + ", got " + std::to_string(v));
  out = v;
  return true;
}

bool json_body::get_bool(std::string_view field, bool& out, bool required) {
  if (!ok_)
    return false;
  auto j = find(field);
  if (j == nullptr)
    return missing(field, required);
  if (!j->is_boolean())
    return fail(field, "expected true or false, got " + describe_json(*j));
  out = j->get<bool>();
  return true;
}

bool json_body::get_string_list(std::string_view field,
                                std::vector<std::string>& out, bool required) {
  if (!ok_)
    return false;
  auto j = find(field);
  if (j == nullptr)
    return missing(field, required);
  out.clear();
  if (j->is_string()) {
    out.push_back(j->get<std::string>());
    return true;
  }
  if (!j->is_array())
    return fail(field, "expected a string or an array of strings, got "
                         + describe_json(*j));
  for (size_t i = 0; i < j->size(); ++i) {
    const auto& item = (*j)[i];
    if (!item.is_string())
      return fail(field, "item " + std::to_string(i)
                           + ": expected a string, got " + describe_json(item));
    out.push_back(item.get<std::string>());
  }
  return true;
}

} // namespace orch::server
