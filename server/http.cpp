#include "server/http.hpp"

#include <algorithm>
#include <cctype>

namespace orch::server {

namespace {

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size()
         && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
              return std::tolower(static_cast<unsigned char>(x))
                     == std::tolower(static_cast<unsigned char>(y));
            });
}

int hex_value(char c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

bool is_param(const std::string& segment) {
  return segment.size() > 2 && segment.front() == '{' && segment.back() == '}';
}

} // namespace

const std::string* request::header(std::string_view name) const {
  for (auto& [key, value] : headers)
    if (iequals(key, name))
      return &value;
  return nullptr;
}

std::optional<std::string> request::query_param(std::string_view name) const {
  std::string_view rest = query;
  while (!rest.empty()) {
    auto amp = rest.find('&');
    auto pair = rest.substr(0, amp);
    rest = amp == std::string_view::npos ? std::string_view{}
                                         : rest.substr(amp + 1);
    auto eq = pair.find('=');
    auto key = url_decode(pair.substr(0, eq));
    if (key != name)
      continue;
    return eq == std::string_view::npos ? std::string{}
                                        : url_decode(pair.substr(eq + 1));
  }
  return std::nullopt;
}

std::string request::param(const std::string& name) const {
  auto it = params.find(name);
  return it == params.end() ? std::string{} : it->second;
}

response response::json(int status, const nlohmann::ordered_json& body) {
  response out;
  out.status = status;
  out.body = body.dump(-1, ' ', false,
                       nlohmann::json::error_handler_t::replace);
  return out;
}

response response::error(int status, std::string code, std::string message) {
  nlohmann::ordered_json j;
  j["error"]["code"] = std::move(code);
  j["error"]["message"] = std::move(message);
  return json(status, j);
}

std::string url_decode(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c == '+') {
      out += ' ';
    } else if (c == '%' && i + 2 < text.size() && hex_value(text[i + 1]) >= 0
               && hex_value(text[i + 2]) >= 0) {
      out += static_cast<char>(hex_value(text[i + 1]) * 16
                               + hex_value(text[i + 2]));
      i += 2;
    } else {
      out += c;
    }
  }
  return out;
}

const char* status_text(int status) {
  switch (status) {
    case 200:
      return "OK";
    case 201:
      return "Created";
    case 202:
      return "Accepted";
    case 204:
      return "No Content";
    case 304:
      return "Not Modified";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 409:
      return "Conflict";
    case 413:
      return "Payload Too Large";
    case 415:
      return "Unsupported Media Type";
    case 429:
      return "Too Many Requests";
    case 500:
      return "Internal Server Error";
    case 503:
      return "Service Unavailable";
    case 504:
      return "Gateway Timeout";
    default:
      return "Unknown";
  }
}

std::vector<std::string> split_path(std::string_view path) {
  std::vector<std::string> out;
  size_t i = 0;
  while (i < path.size()) {
    auto slash = path.find('/', i);
    auto end = slash == std::string_view::npos ? path.size() : slash;
    if (end > i)
      out.emplace_back(path.substr(i, end - i));
    i = end + 1;
  }
  return out;
}

void router::add(std::string method, std::string pattern, handler fn,
                 route_options options) {
  route r{std::move(method), std::move(pattern), {}, std::move(fn), options};
  r.segments = split_path(r.pattern);
  for (auto& existing : routes_)
    if (existing.method == r.method && existing.pattern == r.pattern) {
      existing = std::move(r);
      return;
    }
  routes_.push_back(std::move(r));
}

void router::set_fallback(handler fn, route_options options) {
  fallback_ = route{"GET", "", {}, std::move(fn), options};
}

router::match router::find(const std::string& method,
                           const std::string& path) const {
  auto segments = split_path(path);
  match out;
  // Score: one bit per segment, literal segments count, earlier ones more.
  uint64_t best_score = 0;
  bool have_best = false;
  auto lookup_method = method == "HEAD" ? std::string{"GET"} : method;
  for (auto& r : routes_) {
    if (r.segments.size() != segments.size())
      continue;
    uint64_t score = 0;
    bool ok = true;
    std::map<std::string, std::string> params;
    for (size_t i = 0; i < segments.size() && ok; ++i) {
      const auto& s = r.segments[i];
      if (is_param(s)) {
        params[s.substr(1, s.size() - 2)] = segments[i];
        score <<= 1;
      } else if (s == segments[i]) {
        score = (score << 1) | 1;
      } else {
        ok = false;
      }
    }
    if (!ok)
      continue;
    if (r.method != lookup_method) {
      if (std::find(out.allowed.begin(), out.allowed.end(), r.method)
          == out.allowed.end())
        out.allowed.push_back(r.method);
      continue;
    }
    if (!have_best || score > best_score) {
      have_best = true;
      best_score = score;
      out.found = &r;
      out.params = std::move(params);
    }
  }
  if (out.found != nullptr)
    out.allowed.clear();
  return out;
}

} // namespace orch::server
