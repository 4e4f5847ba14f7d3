// The HTML rendering of a CompareResult: one self-contained page (no scripts, no external
// requests) with the comparison table and the backends' RSS and live-bytes timelines overlaid
// in an inline SVG drawn here. Every string that comes from outside is escaped.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <sstream>

#include "compare.hpp"
#include "format_util.hpp"

namespace pmt::analyzer {
namespace {

constexpr const char* kColors[] = {"#1f77b4", "#d62728", "#2ca02c", "#9467bd"};
constexpr double kWidth = 900, kHeight = 380, kLeft = 80, kRight = 20, kTop = 20, kBottom = 50;
constexpr size_t kMaxPoints = 1200;  // per series: more is invisible at this width

std::string esc(const std::string& s) {
    std::string out;
    out.reserve(s.size());
    for (char c : s) {
        switch (c) {
            case '&':
                out += "&amp;";
                break;
            case '<':
                out += "&lt;";
                break;
            case '>':
                out += "&gt;";
                break;
            case '"':
                out += "&quot;";
                break;
            case '\'':
                out += "&#39;";
                break;
            default:
                out += c;
        }
    }
    return out;
}

std::string num(double v, int decimals = 1) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
    return buf;
}

// Enough decimals to tell ticks `step` apart (0.05 -> 2, 0.5 -> 1, 2 -> 0).
int decimals_for(double step) {
    return std::max(0, static_cast<int>(std::ceil(-std::log10(step) - 1e-9)));
}

// Keeps the shape (each bucket's largest values) while bounding the SVG's size.
std::vector<CompareSample> downsample(const std::vector<CompareSample>& in) {
    if (in.size() <= kMaxPoints) return in;
    std::vector<CompareSample> out;
    const size_t per = (in.size() + kMaxPoints - 1) / kMaxPoints;
    for (size_t i = 0; i < in.size(); i += per) {
        CompareSample p = in[i];
        for (size_t j = i; j < std::min(in.size(), i + per); ++j) {
            p.rss_bytes = std::max(p.rss_bytes, in[j].rss_bytes);
            p.live_bytes = std::max(p.live_bytes, in[j].live_bytes);
        }
        out.push_back(p);
    }
    return out;
}

// A "nice" tick step (1, 2 or 5 times a power of ten) giving about `ticks` ticks over span.
double tick_step(double span, int ticks) {
    if (span <= 0) return 1;
    const double raw = span / ticks;
    const double mag = std::pow(10.0, std::floor(std::log10(raw)));
    for (double m : {1.0, 2.0, 5.0})
        if (raw <= m * mag) return m * mag;
    return 10 * mag;
}

std::string chart(const CompareResult& r) {
    double t_max = 0, y_max = 0;
    for (const BackendSummary& b : r.backends)
        for (const CompareSample& p : b.timeline) {
            t_max = std::max(t_max, p.time_s);
            y_max = std::max(y_max, static_cast<double>(std::max(p.rss_bytes, p.live_bytes)));
        }
    if (t_max <= 0 || y_max <= 0) return "<p>No RSS samples in the traces: nothing to draw.</p>\n";
    const double pw = kWidth - kLeft - kRight, ph = kHeight - kTop - kBottom;
    const double t_step = tick_step(t_max, 8), y_step = tick_step(y_max, 6);
    t_max = std::ceil(t_max / t_step) * t_step;
    y_max = std::ceil(y_max / y_step) * y_step;
    auto x = [&](double t) { return kLeft + t / t_max * pw; };
    auto y = [&](double v) { return kTop + ph - v / y_max * ph; };

    std::ostringstream s;
    s << "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 " << kWidth << " " << kHeight
      << "\" width=\"" << kWidth << "\" height=\"" << kHeight << "\" font-size=\"11\">\n";
    for (double v = 0; v <= y_max + y_step / 2; v += y_step) {
        s << "<line x1=\"" << kLeft << "\" x2=\"" << kLeft + pw << "\" y1=\"" << num(y(v))
          << "\" y2=\"" << num(y(v)) << "\" stroke=\"#ddd\"/>";
        s << "<text x=\"" << kLeft - 6 << "\" y=\"" << num(y(v) + 4) << "\" text-anchor=\"end\">"
          << esc(human_bytes(static_cast<uint64_t>(v))) << "</text>\n";
    }
    for (double t = 0; t <= t_max + t_step / 2; t += t_step) {
        s << "<line x1=\"" << num(x(t)) << "\" x2=\"" << num(x(t)) << "\" y1=\"" << kTop
          << "\" y2=\"" << kTop + ph << "\" stroke=\"#eee\"/>";
        s << "<text x=\"" << num(x(t)) << "\" y=\"" << kTop + ph + 16
          << "\" text-anchor=\"middle\">" << num(t, decimals_for(t_step)) << "</text>\n";
    }
    s << "<text x=\"" << kLeft + pw / 2 << "\" y=\"" << kHeight - 8
      << "\" text-anchor=\"middle\">seconds since start (first run of each allocator)</text>\n";
    for (size_t i = 0; i < r.backends.size(); ++i) {
        const BackendSummary& b = r.backends[i];
        const char* color = kColors[i % std::size(kColors)];
        const auto pts = downsample(b.timeline);
        std::ostringstream rss, live;
        for (const CompareSample& p : pts) {
            rss << num(x(p.time_s)) << "," << num(y(static_cast<double>(p.rss_bytes))) << " ";
            live << num(x(p.time_s)) << "," << num(y(static_cast<double>(p.live_bytes))) << " ";
        }
        const std::string name = esc(backend_name(b.backend));
        s << "<polyline fill=\"none\" stroke=\"" << color << "\" stroke-width=\"1.6\" points=\""
          << rss.str() << "\"><title>" << name << " RSS</title></polyline>\n";
        s << "<polyline fill=\"none\" stroke=\"" << color
          << "\" stroke-width=\"1.2\" stroke-dasharray=\"5,3\" points=\"" << live.str()
          << "\"><title>" << name << " live bytes</title></polyline>\n";
        const double ly = kTop + 14 + 16.0 * static_cast<double>(i);
        s << "<line x1=\"" << kLeft + 12 << "\" x2=\"" << kLeft + 36 << "\" y1=\"" << ly
          << "\" y2=\"" << ly << "\" stroke=\"" << color << "\" stroke-width=\"2\"/>"
          << "<text x=\"" << kLeft + 42 << "\" y=\"" << ly + 4 << "\">" << name
          << ": RSS (solid), live (dashed)</text>\n";
    }
    s << "</svg>\n";
    return s.str();
}

std::string table(const CompareResult& r) {
    std::ostringstream s;
    s << "<table>\n<tr><th>allocator</th><th>wall s median (min-max)</th><th>peak live</th>"
         "<th>peak RSS</th><th>exit RSS</th><th>RSS/live at peak</th><th>minor faults</th>"
         "<th>alloc calls</th><th>same result</th></tr>\n";
    for (const BackendSummary& b : r.backends) {
        const bool reference = &b == &r.backends.front();
        s << "<tr><td>" << esc(backend_name(b.backend)) << "</td><td>" << esc(wall_text(b))
          << "</td><td>" << esc(human_bytes(b.peak_live_bytes)) << "</td><td>"
          << esc(human_bytes(b.peak_rss_bytes)) << "</td><td>" << esc(human_bytes(b.exit_rss_bytes))
          << "</td><td>" << esc(ratio_text(b.rss_over_live)) << "</td><td>"
          << esc(human_count(b.minor_faults)) << "</td><td>" << esc(human_count(b.alloc_calls))
          << "</td><td>"
          << (reference       ? "(reference)"
              : b.same_result ? "yes"
                              : "<b>NO</b>")
          << "</td></tr>\n";
    }
    s << "</table>\n";
    return s.str();
}

}  // namespace

std::string render_html(const CompareResult& r) {
    std::ostringstream s;
    s << "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
      << "<title>pymemtrace compare: " << esc(command_text(r.command)) << "</title>\n"
      << "<style>body{font-family:sans-serif;margin:2em;color:#222}"
         "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:4px 8px}"
         "td{text-align:right;white-space:nowrap}td:first-child{text-align:left}code{background:#"
         "f4f4f4}</style>\n"
      << "</head><body>\n<h1>Allocator comparison</h1>\n"
      << "<p>Command: <code>" << esc(command_text(r.command)) << "</code>, " << r.repeat
      << " run(s) per allocator, interleaved. Traces and outputs: <code>" << esc(r.directory)
      << "</code></p>\n"
      << table(r)
      << "<p>Peak RSS is the kernel's high-water mark; RSS/live is the largest RSS sample while "
         "live bytes stay within 1% of their peak, divided by peak live bytes (allocator "
         "overhead and fragmentation).</p>\n";
    if (!r.notes.empty()) {
        s << "<ul>\n";
        for (const std::string& n : r.notes) s << "<li>" << esc(n) << "</li>\n";
        s << "</ul>\n";
    }
    s << "<h2>RSS and live bytes over time</h2>\n" << chart(r) << "</body></html>\n";
    return s.str();
}

}  // namespace pmt::analyzer
