#pragma once
// The stylesheet of report.html, inlined into its <style> so that the page fetches nothing.

namespace tightfit::search::report {

/// CSS for every class the sections, policy cards and charts use.
extern const char kStyle[];

}  // namespace tightfit::search::report
