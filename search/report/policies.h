#pragma once
// The policy cards of report.html: one card per front member with its global method choices and
// a row per channel group / layer (channels kept as a bar; bits, rank and sparsity as badges).

#include <nlohmann/json.hpp>
#include <string>

namespace tightfit::search::report {

/// One card per front member (front.json's `front`); "" for an empty front. Rows are in natural
/// order of their names (features.9 before features.10).
std::string render_policies(const nlohmann::json& front);

}  // namespace tightfit::search::report
