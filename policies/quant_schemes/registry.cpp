// The weight-quantization schemes by name: one explicit table (no static self-registration,
// which the linker drops from static libraries). Its order is the order of the "valid schemes"
// lists in error messages.

#include "core/registry.h"

#include <string>
#include <vector>

#include "policies/quant_schemes/scheme.h"

namespace tightfit::policies::quant_schemes {
namespace {

// Uniform grids first, then the non-uniform codebooks, from most levels to fewest.
const EntryTable<const Scheme*>& schemes() {
  static const EntryTable<const Scheme*> table(
      "quantization scheme", "schemes",
      {&kSymmetricScheme, &kAffineScheme, &kKmeansScheme, &kPow2Scheme, &kBinaryScheme});
  return table;
}

}  // namespace

const Scheme* find_scheme(const std::string& name) {
  const Scheme* const* s = schemes().find(name);
  return s ? *s : nullptr;
}

std::vector<std::string> scheme_names() { return schemes().names(); }

}  // namespace tightfit::policies::quant_schemes

namespace tightfit::policies {

std::vector<std::string> quant_scheme_names() { return quant_schemes::scheme_names(); }

}  // namespace tightfit::policies
