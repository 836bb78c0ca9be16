#pragma once
// The network the search tests build their spaces on: resnet8 from the zoo (random weights) and
// its decision points, each built once per test program.

#include "models/zoo.h"
#include "policies/compress.h"

namespace tightfit::test_support {

inline const graph::Network& resnet8() {
  static const auto n = models::make_model("resnet8", models::default_options("resnet8"));
  return n;
}

inline const policies::DecisionPoints& resnet8_points() {
  static const auto dp = policies::decision_points(resnet8());
  return dp;
}

}  // namespace tightfit::test_support
