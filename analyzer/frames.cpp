// Library-frame detection and the attribution frame of a stack (frames.hpp).
#include "frames.hpp"

namespace pmt::analyzer {

bool is_library_file(std::string_view f) {
    if (f.rfind("<frozen ", 0) == 0) return true;
    if (f.find("/site-packages/") != std::string_view::npos) return true;
    if (f.find("/dist-packages/") != std::string_view::npos) return true;
    // The standard library: ".../lib/python3.11/x.py" (Debian, pyenv, venv base installs).
    for (size_t pos = f.find("/lib/python3."); pos != std::string_view::npos;
         pos = f.find("/lib/python3.", pos + 1)) {
        size_t i = pos + 13;
        const size_t digits = i;
        while (i < f.size() && f[i] >= '0' && f[i] <= '9') ++i;
        if (i > digits && i < f.size() && f[i] == '/') return true;
    }
    return false;
}

size_t attribution_index(const std::vector<Frame>& frames) {
    // Code compiled from a string ("<string>", "<stdin>") belongs to whoever ran it: the user
    // with `python -c`, the library when a library frame is further out (site's .pth lines,
    // dataclasses' generated methods).
    size_t outermost_library = frames.size();
    for (size_t i = frames.size(); i-- > 0;) {
        if (is_library_file(frames[i].file)) {
            outermost_library = i;
            break;
        }
    }
    for (size_t i = 0; i < frames.size(); ++i) {
        if (is_library_file(frames[i].file)) continue;
        const bool pseudo = !frames[i].file.empty() && frames[i].file[0] == '<';
        if (pseudo && outermost_library != frames.size() && outermost_library > i) continue;
        return i;
    }
    return 0;
}

}  // namespace pmt::analyzer
