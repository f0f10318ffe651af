#include "fingerprint/assignment.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <new>
#include <string>
#include <utility>
#include <vector>

namespace prov::fingerprint {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

// Above this magnitude the costs are scaled down by a power of two before solving, so that
// sums of up to 2 * kMaxAssignmentSide reduced costs and duals stay far from overflow.
constexpr int kMaxCostExponent = 500;

// Shortest-augmenting-path solver for an n x m minimisation with n <= m: every row is assigned.
// The cost of (i, j) is sign * c[i * m + j] (sign is +1 or -1, so negation is exact).
// On success fills col4row (size n) and row4col (size m, -1 for unassigned columns).
Status solve_min_wide(const double* c, int n, int m, double sign, std::vector<int>& col4row,
                      std::vector<int>& row4col) {
  col4row.assign(n, -1);
  row4col.assign(m, -1);
  std::vector<double> u(n, 0.0), v(m, 0.0);
  std::vector<double> dist(m, kInf);  // shortest path length to each column, this round
  std::vector<int> pred(m, -1);       // row from which each column was last reached
  std::vector<int> remaining(m);      // columns not yet scanned this round (unordered tail)
  std::vector<int> scanned_rows, scanned_cols;
  scanned_rows.reserve(n);
  scanned_cols.reserve(m);

  for (int cur = 0; cur < n; ++cur) {
    for (int j = 0; j < m; ++j) remaining[j] = j;
    std::fill(dist.begin(), dist.end(), kInf);
    scanned_rows.clear();
    scanned_cols.clear();
    int num_remaining = m;
    double min_val = 0;
    int i = cur;
    int sink = -1;
    while (sink < 0) {
      scanned_rows.push_back(i);
      const double* ci = c + static_cast<int64_t>(i) * m;
      const double base = min_val - u[i];
      double lowest = kInf;
      int best = -1;
      bool best_free = false;
      for (int it = 0; it < num_remaining; ++it) {
        const int j = remaining[it];
        const double r = base + sign * ci[j] - v[j];
        if (r < dist[j]) {
          pred[j] = i;
          dist[j] = r;
        }
        const double d = dist[j];
        if (d < lowest) {
          lowest = d;
          best = it;
          best_free = row4col[j] < 0;
        } else if (d == lowest && !best_free && row4col[j] < 0) {
          // Equal length: prefer a free column, which ends the search.
          best = it;
          best_free = true;
        }
      }
      if (best < 0 || !(lowest < kInf)) {
        return internal_error("assignment: no augmenting path for row " + std::to_string(cur) +
                              " (non-finite reduced costs)");
      }
      min_val = lowest;
      const int j = remaining[best];
      scanned_cols.push_back(j);
      remaining[best] = remaining[--num_remaining];
      if (row4col[j] < 0) {
        sink = j;
      } else {
        i = row4col[j];
      }
    }

    // Dual update: keeps c - u - v >= 0 everywhere and == 0 on the (new) assignment.
    u[cur] += min_val;
    for (size_t k = 1; k < scanned_rows.size(); ++k) {
      const int r = scanned_rows[k];
      u[r] += min_val - dist[col4row[r]];
    }
    for (int j : scanned_cols) v[j] -= min_val - dist[j];

    // Flip the alternating path from the sink back to the current row.
    int j = sink;
    for (;;) {
      const int r = pred[j];
      row4col[j] = r;
      std::swap(col4row[r], j);
      if (r == cur) break;
    }
  }
  return Status::ok();
}

Result<Assignment> solve(const double* m, int rows, int cols, bool maximise) {
  const char* what = maximise ? "score" : "cost";
  if (rows < 0 || cols < 0) {
    return invalid_argument(std::string("assignment: negative ") + what + " matrix size " +
                            std::to_string(rows) + " x " + std::to_string(cols));
  }
  if (rows > kMaxAssignmentSide || cols > kMaxAssignmentSide) {
    return invalid_argument(std::string("assignment: ") + what + " matrix " + std::to_string(rows) +
                            " x " + std::to_string(cols) + " exceeds the limit of " +
                            std::to_string(kMaxAssignmentSide) + " rows or columns");
  }
  const int64_t count = static_cast<int64_t>(rows) * static_cast<int64_t>(cols);
  if (count > 0 && m == nullptr) {
    return invalid_argument(std::string("assignment: null ") + what + " matrix for " +
                            std::to_string(rows) + " x " + std::to_string(cols));
  }

  double max_abs = 0;
  for (int64_t k = 0; k < count; ++k) {
    const double x = m[k];
    if (!std::isfinite(x)) {
      const int64_t r = k / cols, col = k % cols;
      return invalid_argument(std::string("assignment: ") + what + " (row " + std::to_string(r) +
                              ", col " + std::to_string(col) + ") is " +
                              (std::isnan(x) ? "NaN" : (x > 0 ? "+inf" : "-inf")) + "; every " +
                              what + " must be finite");
    }
    max_abs = std::max(max_abs, std::fabs(x));
  }

  Assignment out;
  out.row_to_col.assign(rows, -1);
  out.col_to_row.assign(cols, -1);
  if (count == 0) return out;

  const bool transpose = rows > cols;
  const int n = transpose ? cols : rows;
  const int w = transpose ? rows : cols;
  double sign = maximise ? -1.0 : 1.0;
  const int exponent = std::ilogb(max_abs);  // max_abs > 0 here unless all entries are zero
  const bool rescale = max_abs > 0 && exponent > kMaxCostExponent;

  std::vector<int> col4row, row4col;
  try {
    std::vector<double> work;
    const double* c = m;
    if (transpose || rescale) {
      const double factor = rescale ? std::ldexp(sign, kMaxCostExponent - exponent) : sign;
      work.resize(static_cast<size_t>(count));
      if (transpose) {
        for (int i = 0; i < rows; ++i) {
          for (int j = 0; j < cols; ++j) {
            work[static_cast<size_t>(j) * rows + i] =
                factor * m[static_cast<int64_t>(i) * cols + j];
          }
        }
      } else {
        for (int64_t k = 0; k < count; ++k) work[k] = factor * m[k];
      }
      c = work.data();
      sign = 1.0;
    }
    PROV_RETURN_IF_ERROR(solve_min_wide(c, n, w, sign, col4row, row4col));
  } catch (const std::bad_alloc&) {
    return internal_error("assignment: out of memory for a " + std::to_string(rows) + " x " +
                          std::to_string(cols) + " " + what + " matrix");
  }

  if (transpose) {
    // Solver rows are the original columns.
    for (int j = 0; j < cols; ++j) {
      out.col_to_row[j] = col4row[j];
      out.row_to_col[col4row[j]] = j;
    }
  } else {
    out.row_to_col = std::move(col4row);
    out.col_to_row = std::move(row4col);
  }
  double total = 0;
  for (int i = 0; i < rows; ++i) {
    if (out.row_to_col[i] >= 0) total += m[static_cast<int64_t>(i) * cols + out.row_to_col[i]];
  }
  out.total = total;
  return out;
}

}  // namespace

Result<Assignment> solve_assignment(const double* score, int rows, int cols) {
  return solve(score, rows, cols, /*maximise=*/true);
}

Result<Assignment> solve_assignment_min(const double* cost, int rows, int cols) {
  return solve(cost, rows, cols, /*maximise=*/false);
}

}  // namespace prov::fingerprint
