// The web UI's embedded files (web/assets.hpp): present and well typed when
// the UI was built, an empty table otherwise.
#include "web/assets.hpp"

#include <gtest/gtest.h>

#include <string>

namespace {

using orch::web::find_asset;
using orch::web::ui_built;

TEST(WebAssets, BuiltAsConfigured) {
  EXPECT_EQ(ui_built(), ORCH_WEB_UI_BUILT != 0);
}

TEST(WebAssets, IndexIsHtmlAndItsScriptsAreEmbedded) {
  if (!ui_built()) {
    EXPECT_EQ(find_asset("/"), nullptr);
    EXPECT_EQ(find_asset("/index.html"), nullptr);
    return;
  }
  const auto* index = find_asset("/");
  ASSERT_NE(index, nullptr);
  EXPECT_EQ(index, find_asset("/index.html"));
  EXPECT_EQ(index, find_asset("index.html"));
  EXPECT_EQ(index->content_type, "text/html; charset=utf-8");
  EXPECT_NE(index->body.find("<div id=\"app\">"), std::string_view::npos);
  // Every asset index.html names is in the table with its type, bytes intact.
  size_t named = 0;
  for (auto pos = index->body.find("/assets/"); pos != std::string_view::npos;
       pos = index->body.find("/assets/", pos + 1)) {
    auto end = index->body.find('"', pos);
    ASSERT_NE(end, std::string_view::npos);
    auto path = std::string{index->body.substr(pos, end - pos)};
    const auto* a = find_asset(path);
    ASSERT_NE(a, nullptr) << path;
    EXPECT_FALSE(a->body.empty()) << path;
    if (path.size() > 3 && path.compare(path.size() - 3, 3, ".js") == 0) {
      EXPECT_EQ(a->content_type, "text/javascript; charset=utf-8");
    }
    if (path.size() > 4 && path.compare(path.size() - 4, 4, ".css") == 0) {
      EXPECT_EQ(a->content_type, "text/css; charset=utf-8");
    }
    ++named;
  }
  EXPECT_GE(named, 2U);
}

TEST(WebAssets, UnknownPathIsNull) {
  EXPECT_EQ(find_asset("/no/such/file.js"), nullptr);
  EXPECT_EQ(find_asset("/api/tasks"), nullptr);
}

} // namespace
