// The self-contained HTML report (`pymemtrace html`): the page's data document assembled from
// one or several analysed processes, escaped for embedding in a <script> element, and poured
// into the page template whose styles and scripts are compiled into the binary.
#pragma once
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "process_tree.hpp"

namespace pmt::analyzer {

// The document the page's script reads: processes (report sections without the timeline, and
// the flame tree), the timeline to draw (one process: its top sites stacked; several: the
// processes stacked, summed on merged's grid), windows to shade, and the process tree.
// merged is used only when there are several processes.
nlohmann::json page_data(const std::vector<ProcessResult>& procs, const MergedTimeline* merged);

// JSON text safe inside <script type="application/json">: '<', '>', '&', U+2028 and U+2029
// are written as \u escapes (they can only occur inside JSON strings), invalid UTF-8 from a
// trace is replaced rather than rejected.
std::string script_safe_json(const nlohmann::json& j);

// The complete page for a data document.
std::string render_html(const nlohmann::json& data);

}  // namespace pmt::analyzer
