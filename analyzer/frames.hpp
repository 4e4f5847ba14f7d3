// Which frame of a Python stack a report attributes memory to: the innermost frame of the
// program's own code. Frames in the standard library, installed packages (site-/dist-packages)
// and frozen modules are passed over, so np.ones(n) on job.py:12 is job.py:12, not numeric.py.
#pragma once
#include <cstddef>
#include <string_view>
#include <vector>

#include "pmt/reader.hpp"

namespace pmt::analyzer {

// True for "<frozen ...>", ".../site-packages/...", ".../dist-packages/..." and the standard
// library (".../lib/python3.X/...").
bool is_library_file(std::string_view file);

// Index (innermost first) of the frame to attribute to: the innermost non-library frame, or 0
// when every frame is library code (or the stack is empty). A "<string>"-like frame with a
// library frame further out is the library's.
size_t attribution_index(const std::vector<Frame>& frames_innermost_first);

}  // namespace pmt::analyzer
