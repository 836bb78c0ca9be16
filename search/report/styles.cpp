#include "search/report/styles.h"

namespace tightfit::search::report {

const char kStyle[] = R"css(
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1d2330;margin:24px;background:#fafbfc}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px}h3{font-size:14px;margin:0 0 6px}
.muted{color:#6b7280}
dl.context{display:grid;grid-template-columns:repeat(auto-fill,minmax(300px,1fr));gap:2px 18px;margin:12px 0}
dl.context div{display:flex;gap:8px;border-bottom:1px solid #eceff3;padding:2px 0}
dt{color:#6b7280;min-width:120px}dd{margin:0;overflow-wrap:anywhere}
pre{background:#f1f3f6;padding:8px;overflow:auto;font-size:12px}
.charts{display:flex;flex-wrap:wrap;gap:8px}
figure.chart{margin:0;background:#fff;border:1px solid #e3e6eb;padding:6px}
figcaption{font-weight:600;padding:2px 6px}
svg text{font-family:inherit}
.plot{fill:#fff;stroke:#9aa3af}.grid{stroke:#edf0f3}
.tick{font-size:11px;fill:#4b5563}.label{font-size:12px;fill:#1d2330}.legend{font-size:12px}
.pt{font-size:10px;fill:#1d4ed8}.empty{fill:#6b7280}
circle.ev{fill:#b4bac3;fill-opacity:.75}
circle.front{fill:#2563eb;stroke:#fff;stroke-width:1.2}
path.step{fill:none;stroke:#2563eb;stroke-width:1.5;stroke-opacity:.7}
polygon.baseline{fill:#111827;stroke:#fff;stroke-width:1}
polygon.uniform{fill:#f59e0b;stroke:#92400e;stroke-width:1}
table{border-collapse:collapse;background:#fff}
th,td{border:1px solid #e3e6eb;padding:3px 8px;text-align:right;white-space:nowrap}
table.layers{width:100%}table.layers td:last-child,table.layers th{white-space:normal}
th{background:#f1f3f6;font-weight:600}
table.layers td,table.layers th{text-align:left}
td.name{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:12px;white-space:normal;word-break:break-all}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(400px,1fr));gap:12px}
.card{background:#fff;border:1px solid #e3e6eb;padding:10px;overflow-x:auto}
.methods{font-size:12px;color:#4b5563;margin:0 0 6px}
.bar{position:relative;width:120px;height:16px;background:#eef1f5}
.bar .fill{position:absolute;left:0;top:0;bottom:0;background:#60a5fa}
.bar .fill.full{background:#cbd5e1}
.bar span{position:absolute;left:6px;top:0;font-size:11px;line-height:16px}
.count{font-size:12px}
.badge{display:inline-block;font-size:11px;padding:0 5px;margin-right:4px;border-radius:3px;background:#e5e7eb}
.b32{background:#e5e7eb}.b16{background:#dbeafe}.b8{background:#bbf7d0}.b4{background:#fde68a}.b2{background:#fca5a5}
.rank{background:#e9d5ff}.sparse{background:#fbcfe8}
.budget{border:1px solid;padding:4px 14px;margin:16px 0;background:#fff}
.budget.met{border-color:#16a34a}.budget.missed{border-color:#dc2626}
.budget h2{margin:8px 0}
)css";

}  // namespace tightfit::search::report
