// Exports for other tools: the flame graph of what was live at the peak (a pruned tree for
// the HTML page, folded "frame;frame bytes" lines for flamegraph.pl and speedscope) and the
// Chrome trace-event JSON that ui.perfetto.dev opens (counter tracks and window slices).
#pragma once
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "peak.hpp"

namespace pmt::analyzer {

// One frame of the flame graph: a node's path from the root is the Python call stack,
// outermost first; bytes include the children. A pruned remainder is a node with
// function "(N smaller)" and no file.
struct FlameNode {
    std::string function;
    std::string file;
    uint32_t line = 0;
    uint64_t bytes = 0;
    std::vector<FlameNode> children;
};

// The tree of stacks_at_peak (PeakAnalysis), frames resolved through reader. Children are
// sorted largest first; nodes under min_fraction of the root are merged into one remainder
// per parent so the tree stays small however many stacks the trace has.
FlameNode build_flame(const TraceReader& reader, const std::vector<StackAtPeak>& stacks,
                      double min_fraction = 0.001);
// {"f": function, "s": file, "l": line, "v": bytes, "c": [children]} (short keys: the page
// embeds it).
nlohmann::json flame_json(const FlameNode& root);
size_t flame_size(const FlameNode& root);  // number of nodes

// "outer;...;inner bytes" lines at the peak, one per distinct stack, largest first. Frames
// read "function (file:line)"; ';' and newlines inside names become ','/' '. prefix (e.g.
// "pid 123") becomes the outermost frame when not empty.
std::string folded_lines(const TraceReader& reader, const std::vector<StackAtPeak>& stacks,
                         const std::string& prefix = "");

// Chrome trace-event JSON for one process: counter tracks from a timeline document
// (TimelineAnalysis::to_json: live, RSS, one per top site), the peak as an instant, and one
// slice per window found in windows (objects with start/end seconds), shifted by offset_s.
void append_perfetto_process(nlohmann::json& events, uint64_t pid, const std::string& name,
                             const nlohmann::json& timeline, const nlohmann::json& windows,
                             double offset_s);
nlohmann::json perfetto_document(nlohmann::json events);

// A window's start and end in seconds, whichever names the windows section uses; false when
// the object has neither.
bool window_span(const nlohmann::json& window, double& start_s, double& end_s);

}  // namespace pmt::analyzer
