#include "search/evaluation.h"

#include <algorithm>
#include <limits>

namespace tightfit::search {

double Limits::excess(const Evaluation& e) const {
  if (!e.ok()) return std::numeric_limits<double>::infinity();
  double worst = 0;
  auto over = [&](double value, double limit) {
    if (limit > 0) worst = std::max(worst, (value - limit) / limit);
  };
  over(e.latency_ms, latency_ms);
  over(static_cast<double>(e.size_bytes), static_cast<double>(size_bytes));
  over(static_cast<double>(e.flops), static_cast<double>(flops));
  if (accuracy_drop > 0)
    worst = std::max(worst, (baseline_accuracy - e.accuracy - accuracy_drop) / accuracy_drop);
  return worst;
}

nlohmann::json Evaluation::to_json() const {
  nlohmann::json j = {{"index", index},
                      {"kind", kind},
                      {"policy", policy.to_json()},
                      {"accuracy", accuracy},
                      {"loss", loss},
                      {"latency_ms", latency_ms},
                      {"latency_spread_ms", latency_spread_ms},
                      {"size_bytes", size_bytes},
                      {"params", params},
                      {"flops", flops},
                      {"latency_source", latency_source},
                      {"eval_seconds", eval_seconds}};
  if (measured_latency_ms > 0) j["measured_latency_ms"] = measured_latency_ms;
  if (finetuned_accuracy >= 0) j["finetuned_accuracy"] = finetuned_accuracy;
  if (accuracy_source != "proxy") j["accuracy_source"] = accuracy_source;
  if (cached) j["cached"] = true;
  if (!ok()) j["error"] = error;
  return j;
}

Evaluation Evaluation::from_json(const nlohmann::json& j) {
  Evaluation e;
  e.index = j.at("index").get<int64_t>();
  e.kind = j.at("kind").get<std::string>();
  e.policy = policies::Policy::from_json(j.at("policy"));
  e.accuracy = j.at("accuracy").get<double>();
  e.loss = j.at("loss").get<double>();
  e.latency_ms = j.at("latency_ms").get<double>();
  e.latency_spread_ms = j.at("latency_spread_ms").get<double>();
  e.size_bytes = j.at("size_bytes").get<int64_t>();
  e.params = j.at("params").get<int64_t>();
  e.flops = j.at("flops").get<int64_t>();
  e.eval_seconds = j.value("eval_seconds", 0.0);
  e.latency_source = j.value("latency_source", std::string("measured"));
  e.measured_latency_ms = j.value("measured_latency_ms", 0.0);
  e.finetuned_accuracy = j.value("finetuned_accuracy", -1.0);
  e.accuracy_source = j.value("accuracy_source", std::string("proxy"));
  e.cached = j.value("cached", false);
  e.error = j.value("error", std::string());
  return e;
}

}  // namespace tightfit::search
