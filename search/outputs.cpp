#include "search/outputs.h"

#include <filesystem>
#include <iomanip>
#include <sstream>

#include "core/files.h"
#include "search/budget.h"
#include "search/moo.h"
#include "search/report.h"

namespace tightfit::search {

namespace {

std::string csv_quote(const std::string& s) {
  std::string out = "\"";
  for (char c : s) out += c == '"' ? std::string("\"\"") : std::string(1, c);
  return out + "\"";
}

/// Mean keep fraction over the policy's channel decisions (1 = nothing pruned).
double mean_keep(const policies::Policy& p, size_t decision_points) {
  if (decision_points == 0) return 1.0;
  double sum = static_cast<double>(decision_points - p.keep.size());
  for (const auto& [id, f] : p.keep) sum += f;
  return sum / static_cast<double>(decision_points);
}

}  // namespace

nlohmann::json front_entry(const Evaluation& e) {
  nlohmann::json j = {{"index", e.index},
                      {"kind", e.kind},
                      {"policy", e.policy.to_json()},
                      {"accuracy", e.accuracy},
                      {"loss", e.loss},
                      {"latency_ms", e.latency_ms},
                      {"latency_spread_ms", e.latency_spread_ms},
                      {"size_bytes", e.size_bytes},
                      {"params", e.params},
                      {"flops", e.flops}};
  if (e.latency_source != "measured") {
    j["predicted_latency_ms"] = e.latency_ms;
    if (e.measured_latency_ms > 0) j["measured_latency_ms"] = e.measured_latency_ms;
  }
  if (e.finetuned_accuracy >= 0) j["finetuned_accuracy"] = e.finetuned_accuracy;
  if (e.int8_layers >= 0) j["int8_layers"] = e.int8_layers;
  return j;
}

nlohmann::json best_under_budget(const std::vector<Evaluation>& evaluations, const Budget& b,
                                 double baseline_accuracy) {
  const Evaluation* best = nullptr;
  const Evaluation* closest = nullptr;
  double closest_excess = 0;
  for (const auto& e : evaluations) {
    if (!e.scored()) continue;
    if (within_budget(e, b, baseline_accuracy)) {
      if (!best || e.accuracy > best->accuracy ||
          (e.accuracy == best->accuracy && e.latency_ms < best->latency_ms))
        best = &e;
    } else {
      const double excess = limits_of(b, baseline_accuracy).excess(e);
      if (!closest || excess < closest_excess) closest = &e, closest_excess = excess;
    }
  }
  nlohmann::json j = {{"budget", b.to_json()}, {"met", best != nullptr}};
  if (best) j["best"] = front_entry(*best);
  if (!best && closest) {
    j["closest"] = front_entry(*closest);
    j["closest_excess"] = closest_excess;
  }
  return j;
}

double relative_hypervolume(const std::vector<Evaluation>& evaluations, const Evaluation& base) {
  std::vector<std::vector<double>> points;
  for (const auto& e : evaluations)
    if (e.scored() && base.latency_ms > 0 && base.size_bytes > 0)
      points.push_back({1.0 - e.accuracy, e.latency_ms / base.latency_ms,
                        static_cast<double>(e.size_bytes) / static_cast<double>(base.size_bytes)});
  if (points.empty()) return 0;
  return hypervolume(points, {1.1, 1.1, 1.1});
}

std::string front_table(const SearchResult& r) {
  std::ostringstream os;
  auto row = [&](const std::string& label, const Evaluation& e, size_t channels) {
    os << std::left << std::setw(10) << label << std::right << std::fixed << std::setprecision(4)
       << std::setw(9) << e.accuracy << std::setprecision(3) << std::setw(12) << e.latency_ms
       << std::setw(10) << e.latency_spread_ms << std::setprecision(1) << std::setw(11)
       << static_cast<double>(e.size_bytes) / 1024.0 << std::setw(10)
       << static_cast<double>(e.flops) / 1e6 << std::setprecision(2) << std::setw(10)
       << mean_keep(e.policy, channels) << std::setw(8)
       << (e.int8_layers >= 0 ? std::to_string(e.int8_layers) : std::string("-")) << '\n';
  };
  const size_t channels = r.context.contains("decision_points")
                              ? r.context["decision_points"]["channels"].get<size_t>()
                              : 0;
  os << std::left << std::setw(10) << "candidate" << std::right << std::setw(9) << "accuracy"
     << std::setw(12) << "latency_ms" << std::setw(10) << "iqr_ms" << std::setw(11) << "size_KiB"
     << std::setw(10) << "MFLOPs" << std::setw(10) << "mean_keep" << std::setw(8) << "int8" << '\n';
  row("baseline", r.baseline, channels);
  for (size_t i : r.front)
    row("#" + std::to_string(r.evaluations[i].index), r.evaluations[i], channels);
  if (const auto f = r.context.find("front_fidelity");
      f != r.context.end() && f->value("kendall_tau", nlohmann::json()).is_number() &&
      f->value("spearman_rho", nlohmann::json()).is_number()) {
    os << std::setprecision(2) << "proxy fidelity: Kendall's tau "
       << (*f)["kendall_tau"].get<double>() << ", Spearman's rho "
       << (*f)["spearman_rho"].get<double>() << " between the proxy's accuracy and "
       << "the fine-tuned one of the " << f->value("n", 0) << " most accurate front members ("
       << (*f)["finetune"].value("steps", 0) << " fine-tuning steps each; finetune_front)\n";
  }
  return os.str();
}

void write_outputs(const SearchConfig& config, SearchResult& result, const std::string& dir) {
  const std::filesystem::path out(dir);
  nlohmann::json front = nlohmann::json::array();
  std::ostringstream csv;
  csv << "index,accuracy,latency_ms,latency_spread_ms,size_bytes,params,flops,"
         "measured_latency_ms,policy\n";
  for (size_t i : result.front) {
    const auto& e = result.evaluations[i];
    front.push_back(front_entry(e));
    csv << e.index << ',' << e.accuracy << ',' << e.latency_ms << ',' << e.latency_spread_ms << ','
        << e.size_bytes << ',' << e.params << ',' << e.flops << ',' << e.measured_latency_ms << ','
        << csv_quote(e.policy.to_json().dump()) << '\n';
  }
  nlohmann::json uniform = nlohmann::json::array();
  for (const auto& e : result.evaluations)
    if (e.kind == "uniform") uniform.push_back(front_entry(e));
  nlohmann::json doc = {{"front", front},
                        {"baseline", front_entry(result.baseline)},
                        {"uniform", uniform},
                        {"context", result.context}};
  if (config.budget.any()) {
    result.best = best_under_budget(result.evaluations, result.budget, result.baseline.accuracy);
    result.best["context"] = result.context;
    doc["best"] = result.best;
    write_file_atomic((out / "best.json").string(), result.best.dump(2) + "\n");
  }
  write_file_atomic((out / "front.json").string(), doc.dump(2) + "\n");
  write_file_atomic((out / "front.csv").string(), csv.str());
  write_report(out.string());
}

}  // namespace tightfit::search
