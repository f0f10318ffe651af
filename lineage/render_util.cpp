#include "lineage/render_util.h"

#include "lineage/report_render.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace prov::lineage::render {

using nlohmann::json;

// ---------------------------------------------------------------------------------------------
// Text

// Valid UTF-8, with control characters other than tab, LF and CR, DEL, U+FFFE/U+FFFF and every
// malformed sequence replaced by U+FFFD (so the text is also valid XML character data).
std::string sanitize(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  const size_t n = s.size();
  size_t i = 0;
  while (i < n) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      if ((c < 0x20 && c != '\t' && c != '\n' && c != '\r') || c == 0x7f) {
        out += kReplacement;
      } else {
        out += static_cast<char>(c);
      }
      ++i;
      continue;
    }
    size_t len = 0;
    uint32_t cp = 0;
    uint32_t min = 0;
    if ((c & 0xE0) == 0xC0) {
      len = 2, cp = c & 0x1F, min = 0x80;
    } else if ((c & 0xF0) == 0xE0) {
      len = 3, cp = c & 0x0F, min = 0x800;
    } else if ((c & 0xF8) == 0xF0) {
      len = 4, cp = c & 0x07, min = 0x10000;
    }
    bool ok = len != 0 && i + len <= n;
    for (size_t k = 1; ok && k < len; ++k) {
      const auto cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xC0) != 0x80) ok = false;
      cp = (cp << 6) | (cc & 0x3F);
    }
    if (!ok || cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF) || cp == 0xFFFE ||
        cp == 0xFFFF) {
      out += kReplacement;
      ++i;
      continue;
    }
    out.append(s, i, len);
    i += len;
  }
  return out;
}

// HTML / XML text and attribute escaping.
std::string esc(const std::string& s) {
  const std::string clean = sanitize(s);
  std::string out;
  out.reserve(clean.size() + 16);
  for (char c : clean) {
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

bool is_ascii_alnum(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

// Markdown inline text (also safe in a table cell): one line, Markdown punctuation escaped, HTML
// specials as entities.
std::string md(const std::string& s) {
  const std::string clean = sanitize(s);
  std::string out;
  out.reserve(clean.size() + 16);
  for (size_t i = 0; i < clean.size(); ++i) {
    const char c = clean[i];
    switch (c) {
      case '\r':
        if (i + 1 < clean.size() && clean[i + 1] == '\n') ++i;
        out += ' ';
        break;
      case '\n':
      case '\t':
        out += ' ';
        break;
      case '\\':
      case '|':
      case '*':
      case '[':
      case ']':
      case '`':
      case '~':
        out += '\\';
        out += c;
        break;
      case '_': {
        const bool inner = i > 0 && is_ascii_alnum(clean[i - 1]) && i + 1 < clean.size() &&
                           is_ascii_alnum(clean[i + 1]);
        if (!inner) out += '\\';
        out += c;
        break;
      }
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '&':
        out += "&amp;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

// Code points of already-sanitized UTF-8.
std::vector<std::string> code_points(const std::string& clean) {
  std::vector<std::string> out;
  for (size_t i = 0; i < clean.size();) {
    const auto c = static_cast<unsigned char>(clean[i]);
    size_t len = c < 0x80 ? 1 : (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : 4;
    len = std::min(len, clean.size() - i);
    out.push_back(clean.substr(i, len));
    i += len;
  }
  return out;
}

// At most `max` code points, the last one an ellipsis when cut. Sanitized, not escaped.
std::string truncate(const std::string& s, size_t max) {
  const std::string clean = sanitize(s);
  const auto cps = code_points(clean);
  if (cps.size() <= max) return clean;
  std::string out;
  for (size_t i = 0; i + 1 < max; ++i) out += cps[i];
  return out + kEllipsis;
}

// Estimated rendered width in px of `s` in a sans-serif font of `px` size (generous, so that
// boxes fit the text).
double text_width(const std::string& s, double px) {
  double units = 0;
  for (const auto& cp : code_points(sanitize(s))) {
    const auto lead = static_cast<unsigned char>(cp[0]);
    units += lead >= 0xE1 ? 1.0 : (cp == "W" || cp == "M" || cp == "m" || cp == "w") ? 0.85 : 0.6;
  }
  return units * px;
}

std::string printf_str(const char* fmt, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, fmt, v);
  return buf;
}

std::string format_number(double v) {
  if (v == 0) v = 0;  // no "-0"
  return printf_str("%.4g", v);
}

// An SVG coordinate with one decimal.
std::string n1(double v) {
  double r = std::round(v * 10.0) / 10.0;
  if (r == 0) r = 0;
  return printf_str("%.1f", r);
}

// "p=1.23e-45", "p < 1e-300", "score only" for null.
std::string p_equals(const std::optional<double>& p) {
  if (!p) return "score only";
  const std::string f = format_p_value(p);
  return f[0] == '<' ? "p " + f : "p=" + f;
}

// -log10(p), capped at 300.
double minus_log10(double p) {
  if (!(p >= kPFloor)) return kMaxMinusLog10;
  return std::min(kMaxMinusLog10, std::max(0.0, -std::log10(p)));
}

std::string int_str(int64_t v) {
  return std::to_string(v);
}

// ---------------------------------------------------------------------------------------------
// SVG helpers

const char* const kPalette[] = {"#0072B2", "#D55E00", "#009E73", "#CC79A7",
                                "#E69F00", "#56B4E9", "#000000", "#8C564B"};
const char* const kDashes[] = {"", "6 3", "2 2", "8 3 2 3"};

std::string series_color(size_t i) {
  return kPalette[i % 8];
}
std::string series_dash(size_t i) {
  return kDashes[(i / 8) % 4];
}

std::string svg_open(double w, double h, const std::string& title) {
  return std::string(kSvgOpen) + " viewBox=\"0 0 " + n1(w) + " " + n1(h) + "\" width=\"" + n1(w) +
         "\" height=\"" + n1(h) + "\" role=\"img\" font-family=\"" + kFontFamily +
         "\" font-size=\"12\"><title>" + esc(title) + "</title>\n<rect x=\"0\" y=\"0\" width=\"" +
         n1(w) + "\" height=\"" + n1(h) + "\" fill=\"#ffffff\"/>\n";
}

std::string text_el(double x, double y, const std::string& anchor, const std::string& content,
                    const std::string& extra) {
  return "<text x=\"" + n1(x) + "\" y=\"" + n1(y) + "\" text-anchor=\"" + anchor + "\"" +
         (extra.empty() ? "" : " " + extra) + ">" + esc(content) + "</text>\n";
}

std::string line_el(double x1, double y1, double x2, double y2, const std::string& stroke,
                    const std::string& extra) {
  return "<line x1=\"" + n1(x1) + "\" y1=\"" + n1(y1) + "\" x2=\"" + n1(x2) + "\" y2=\"" + n1(y2) +
         "\" stroke=\"" + stroke + "\"" + (extra.empty() ? "" : " " + extra) + "/>\n";
}

double nice_step(double range, int target) {
  if (!(range > 0)) return 1;
  const double raw = range / target;
  const double mag = std::pow(10.0, std::floor(std::log10(raw)));
  const double f = raw / mag;
  const double nice = f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10;
  return nice * mag;
}

std::vector<double> linear_ticks(double lo, double hi, double step) {
  std::vector<double> out;
  const auto a = static_cast<long long>(std::ceil(lo / step - 1e-9));
  const auto b = static_cast<long long>(std::floor(hi / step + 1e-9));
  for (long long i = a; i <= b; ++i) {
    double v = static_cast<double>(i) * step;
    if (std::fabs(v) < step * 1e-9) v = 0;
    out.push_back(v);
  }
  return out;
}

// Lays entries out left to right in rows within `width`, from (x, y); returns the SVG and sets
// *height.
std::string legend(const std::vector<LegendEntry>& entries, double x, double y, double width,
                   double* height) {
  std::string svg;
  const double row_h = 18;
  double cx = x;
  double cy = y;
  for (const auto& e : entries) {
    const std::string label = truncate(e.label, 60);
    const double w = 28 + text_width(label, 12) + 16;
    if (cx > x && cx + w > x + width) {
      cx = x;
      cy += row_h;
    }
    if (e.dash == "box") {
      svg += "<rect x=\"" + n1(cx) + "\" y=\"" + n1(cy + 3) +
             "\" width=\"20\" height=\"10\" fill=\"" + e.color + "\"/>\n";
    } else {
      svg += line_el(
          cx, cy + 8, cx + 20, cy + 8, e.color,
          "stroke-width=\"2.5\"" + (e.dash.empty() ? "" : " stroke-dasharray=\"" + e.dash + "\""));
    }
    svg += text_el(cx + 26, cy + 12, "start", label);
    cx += w;
  }
  *height = entries.empty() ? 0 : cy - y + row_h;
  return svg;
}

// The legend placed under a plot area, and the plot's total height with it.
std::string legend_below(const std::vector<LegendEntry>& entries, const Area& a, double* height) {
  double legend_h = 0;
  std::string leg = legend(entries, a.x0, a.y0 + a.h + 50, a.w, &legend_h);
  *height = a.y0 + a.h + 50 + legend_h + 8;
  return leg;
}

// Grid, axes, tick labels and axis titles around `a`.
std::string frame(const Area& a, const std::vector<Tick>& xt, const std::vector<Tick>& yt,
                  const std::string& xtitle, const std::string& ytitle) {
  std::string svg;
  for (const auto& t : yt) {
    svg += line_el(a.x0, t.px, a.x0 + a.w, t.px, "#e3e3e3");
    svg += text_el(a.x0 - 6, t.px + 4, "end", t.label, "fill=\"#333333\"");
  }
  for (const auto& t : xt) {
    svg += line_el(t.px, a.y0 + a.h, t.px, a.y0 + a.h + 4, "#555555");
    svg += text_el(t.px, a.y0 + a.h + 17, "middle", t.label, "fill=\"#333333\"");
  }
  svg += "<rect x=\"" + n1(a.x0) + "\" y=\"" + n1(a.y0) + "\" width=\"" + n1(a.w) + "\" height=\"" +
         n1(a.h) + "\" fill=\"none\" stroke=\"#555555\"/>\n";
  svg += text_el(a.x0 + a.w / 2, a.y0 + a.h + 36, "middle", xtitle, "fill=\"#222222\"");
  svg += "<text transform=\"translate(14," + n1(a.y0 + a.h / 2) +
         ") rotate(-90)\" text-anchor=\"middle\" fill=\"#222222\">" + esc(ytitle) + "</text>\n";
  return svg;
}

// ---------------------------------------------------------------------------------------------
// Shared wording

std::string verdict_class(Relation r) {
  if (r == Relation::kIndependent) return "independent";
  if (r == Relation::kInconclusive) return "inconclusive";
  return "derived";
}

// A `detail` object as one line of compact JSON with sorted keys.
std::string detail_text(const nlohmann::json& d) {
  return d.dump(-1, ' ', false, json::error_handler_t::replace);
}

std::vector<std::string> verdict_parents(const ReportVerdict& v) {
  if (v.parents && !v.parents->empty()) return *v.parents;
  if (v.parent) return {*v.parent};
  return {};
}

std::string probes_text(const ReportEvidence& e) {
  std::string s = e.probes ? int_str(*e.probes) : "";
  if (e.probes_needed) {
    s += std::string(s.empty() ? kDash : "") + " (needed " + int_str(*e.probes_needed) + ")";
  }
  return s;
}

bool any_holm(const std::vector<ReportReference>& refs) {
  return std::any_of(refs.begin(), refs.end(), [](const ReportReference& r) { return r.has_holm; });
}

// ---------------------------------------------------------------------------------------------
std::string environment_text(const ReportEnvironment& env) {
  std::string s = "device " + env.device + ", dtype " + env.dtype;
  if (env.threads) s += ", " + int_str(*env.threads) + " CPU threads";
  return s;
}

std::vector<std::string> run_lines(const ReportEnvironment& env) {
  std::vector<std::string> out;
  if (!env.runs) return out;
  for (const auto& r : *env.runs) {
    std::string s = r.model + " (" + r.role + ", " + r.source + "): " + r.device;
    if (!r.dtype.empty()) s += ", " + r.dtype;
    if (r.backend) s += ", " + *r.backend;
    if (r.tool_version) s += ", prov " + *r.tool_version;
    out.push_back(std::move(s));
  }
  return out;
}

}  // namespace prov::lineage::render

namespace prov::lineage {

std::string format_p_value(std::optional<double> p) {
  if (!p) return render::kDash;
  if (std::isnan(*p)) return "NaN";
  if (*p < render::kPFloor) return "< 1e-300";
  return render::printf_str("%.2e", *p);
}

}  // namespace prov::lineage
