#include "fingerprint/assignment.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <numeric>
#include <random>
#include <string>
#include <vector>

namespace prov::fingerprint {
namespace {

std::vector<double> random_matrix(int rows, int cols, uint64_t seed, double lo = -1.0,
                                  double hi = 1.0) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> dist(lo, hi);
  std::vector<double> m(static_cast<size_t>(rows) * cols);
  for (double& x : m) x = dist(rng);
  return m;
}

std::vector<double> random_int_matrix(int rows, int cols, uint64_t seed, int lo, int hi) {
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<int> dist(lo, hi);
  std::vector<double> m(static_cast<size_t>(rows) * cols);
  for (double& x : m) x = dist(rng);
  return m;
}

// Best total over all one-to-one assignments of min(rows, cols) pairs, by enumeration.
double brute_force(const std::vector<double>& s, int rows, int cols, bool maximise) {
  const bool wide = rows <= cols;
  const int k = std::min(rows, cols);
  std::vector<int> perm(wide ? cols : rows);
  std::iota(perm.begin(), perm.end(), 0);
  double best =
      maximise ? -std::numeric_limits<double>::infinity() : std::numeric_limits<double>::infinity();
  // Permutations of the larger side; the first k entries pair with 0..k-1 of the smaller side.
  // Duplicates (differing only beyond k) are harmless.
  do {
    double t = 0;
    for (int a = 0; a < k; ++a) {
      t += wide ? s[static_cast<size_t>(a) * cols + perm[a]]
                : s[static_cast<size_t>(perm[a]) * cols + a];
    }
    best = maximise ? std::max(best, t) : std::min(best, t);
  } while (std::next_permutation(perm.begin(), perm.end()));
  return k == 0 ? 0.0 : best;
}

// Checks the assignment is one-to-one, consistent in both directions, of the promised size,
// and that total is the sum of the chosen entries. Returns a failure description or "".
std::string check_valid(const Assignment& a, const std::vector<double>& s, int rows, int cols) {
  if (static_cast<int>(a.row_to_col.size()) != rows) return "row_to_col has the wrong size";
  if (static_cast<int>(a.col_to_row.size()) != cols) return "col_to_row has the wrong size";
  int assigned = 0;
  double total = 0;
  for (int i = 0; i < rows; ++i) {
    const int j = a.row_to_col[i];
    if (j == -1) continue;
    if (j < 0 || j >= cols) return "row " + std::to_string(i) + " has column out of range";
    if (a.col_to_row[j] != i) return "row " + std::to_string(i) + " and its column disagree";
    ++assigned;
    total += s[static_cast<size_t>(i) * cols + j];
  }
  int assigned_cols = 0;
  for (int j = 0; j < cols; ++j) {
    const int i = a.col_to_row[j];
    if (i == -1) continue;
    if (i < 0 || i >= rows) return "column " + std::to_string(j) + " has row out of range";
    if (a.row_to_col[i] != j) return "column " + std::to_string(j) + " and its row disagree";
    ++assigned_cols;
  }
  if (assigned != std::min(rows, cols) || assigned_cols != assigned) {
    return "assigned " + std::to_string(assigned) + " pairs, expected " +
           std::to_string(std::min(rows, cols));
  }
  if (total != a.total) return "total is not the sum of the chosen entries";
  return "";
}

double greedy_total(const std::vector<double>& s, int n) {
  std::vector<char> used(n, 0);
  double t = 0;
  for (int i = 0; i < n; ++i) {
    int best = -1;
    for (int j = 0; j < n; ++j) {
      if (!used[j] &&
          (best < 0 || s[static_cast<size_t>(i) * n + j] > s[static_cast<size_t>(i) * n + best])) {
        best = j;
      }
    }
    used[best] = 1;
    t += s[static_cast<size_t>(i) * n + best];
  }
  return t;
}

TEST(AssignmentTest, MatchesBruteForceOnSquareRandomMatrices) {
  for (int n = 1; n <= 7; ++n) {
    const int seeds = n <= 5 ? 60 : (n == 6 ? 30 : 8);
    for (int seed = 0; seed < seeds; ++seed) {
      const auto s = random_matrix(n, n, 1000 * n + seed);
      auto a = solve_assignment(s.data(), n, n);
      ASSERT_TRUE(a.is_ok()) << a.status().to_string();
      ASSERT_EQ(check_valid(*a, s, n, n), "") << "n=" << n << " seed=" << seed;
      EXPECT_NEAR(a->total, brute_force(s, n, n, true), 1e-9) << "n=" << n << " seed=" << seed;

      auto b = solve_assignment_min(s.data(), n, n);
      ASSERT_TRUE(b.is_ok()) << b.status().to_string();
      ASSERT_EQ(check_valid(*b, s, n, n), "");
      EXPECT_NEAR(b->total, brute_force(s, n, n, false), 1e-9) << "n=" << n << " seed=" << seed;
    }
  }
}

TEST(AssignmentTest, MatchesBruteForceOnRectangularMatrices) {
  const int shapes[][2] = {{3, 6}, {6, 3}, {1, 5}, {5, 1}, {2, 7}, {7, 2}, {4, 5}, {5, 4}};
  for (const auto& shape : shapes) {
    const int rows = shape[0], cols = shape[1];
    for (int seed = 0; seed < 40; ++seed) {
      const auto s = random_matrix(rows, cols, 77 * rows + 7 * cols + 100003 * seed, -3.0, 5.0);
      for (bool maximise : {true, false}) {
        auto a = maximise ? solve_assignment(s.data(), rows, cols)
                          : solve_assignment_min(s.data(), rows, cols);
        ASSERT_TRUE(a.is_ok()) << a.status().to_string();
        ASSERT_EQ(check_valid(*a, s, rows, cols), "") << rows << "x" << cols << " seed=" << seed;
        EXPECT_NEAR(a->total, brute_force(s, rows, cols, maximise), 1e-9)
            << rows << "x" << cols << " seed=" << seed << " maximise=" << maximise;
        // Rows > cols leaves exactly rows - cols rows unassigned, and vice versa.
        EXPECT_EQ(std::count(a->row_to_col.begin(), a->row_to_col.end(), -1),
                  std::max(0, rows - cols));
        EXPECT_EQ(std::count(a->col_to_row.begin(), a->col_to_row.end(), -1),
                  std::max(0, cols - rows));
      }
    }
  }
}

TEST(AssignmentTest, MatchesBruteForceOnIntegerMatricesWithManyTies) {
  const int shapes[][2] = {{4, 4}, {6, 6}, {7, 7}, {3, 6}, {6, 3}, {5, 7}};
  for (const auto& shape : shapes) {
    const int rows = shape[0], cols = shape[1];
    for (int seed = 0; seed < 30; ++seed) {
      // Few distinct values: many optimal assignments and equal path lengths.
      const int hi = seed % 2 == 0 ? 3 : 100;
      const auto s = random_int_matrix(rows, cols, 5000 + 31 * rows + cols + 1009 * seed, -hi, hi);
      for (bool maximise : {true, false}) {
        auto a = maximise ? solve_assignment(s.data(), rows, cols)
                          : solve_assignment_min(s.data(), rows, cols);
        ASSERT_TRUE(a.is_ok()) << a.status().to_string();
        ASSERT_EQ(check_valid(*a, s, rows, cols), "");
        // Integer scores: the optimum is exact.
        EXPECT_EQ(a->total, brute_force(s, rows, cols, maximise))
            << rows << "x" << cols << " seed=" << seed << " maximise=" << maximise;
      }
    }
  }
}

TEST(AssignmentTest, MinimisationIsMaximisationOfTheNegation) {
  const int rows = 40, cols = 55;
  const auto s = random_matrix(rows, cols, 9);
  std::vector<double> neg(s.size());
  for (size_t k = 0; k < s.size(); ++k) neg[k] = -s[k];
  auto a = solve_assignment(s.data(), rows, cols);
  auto b = solve_assignment_min(neg.data(), rows, cols);
  ASSERT_TRUE(a.is_ok() && b.is_ok());
  EXPECT_EQ(a->row_to_col, b->row_to_col);
  EXPECT_EQ(a->total, -b->total);
}

TEST(AssignmentTest, TransposeGivesTheSameOptimum) {
  const int rows = 30, cols = 70;
  const auto s = random_matrix(rows, cols, 11);
  std::vector<double> t(s.size());
  for (int i = 0; i < rows; ++i) {
    for (int j = 0; j < cols; ++j) t[static_cast<size_t>(j) * rows + i] = s[i * cols + j];
  }
  auto a = solve_assignment(s.data(), rows, cols);
  auto b = solve_assignment(t.data(), cols, rows);
  ASSERT_TRUE(a.is_ok() && b.is_ok());
  ASSERT_EQ(check_valid(*b, t, cols, rows), "");
  EXPECT_NEAR(a->total, b->total, 1e-9);
  // Random continuous scores: the optimum is unique, so the pairs agree.
  EXPECT_EQ(a->row_to_col, b->col_to_row);
}

TEST(AssignmentTest, RecoversAPermutedIdentity) {
  const int n = 500;
  std::mt19937_64 rng(42);
  std::vector<int> perm(n);
  std::iota(perm.begin(), perm.end(), 0);
  std::shuffle(perm.begin(), perm.end(), rng);
  // Noise in [0, 0.1) plus 1 on the permutation: any other assignment loses >= 0.9 per row.
  auto s = random_matrix(n, n, 43, 0.0, 0.1);
  for (int i = 0; i < n; ++i) s[static_cast<size_t>(i) * n + perm[i]] += 1.0;

  const auto start = std::chrono::steady_clock::now();
  auto a = solve_assignment(s.data(), n, n);
  const double secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  ASSERT_TRUE(a.is_ok()) << a.status().to_string();
  EXPECT_EQ(a->row_to_col, perm);
  ASSERT_EQ(check_valid(*a, s, n, n), "");
  RecordProperty("solve_seconds", std::to_string(secs));
}

TEST(AssignmentTest, AllEqualScoresGiveAValidDeterministicAssignment) {
  for (const auto& shape : {std::pair<int, int>{50, 50}, {20, 35}, {35, 20}}) {
    const int rows = shape.first, cols = shape.second;
    const std::vector<double> s(static_cast<size_t>(rows) * cols, 0.25);
    auto a = solve_assignment(s.data(), rows, cols);
    auto b = solve_assignment(s.data(), rows, cols);
    ASSERT_TRUE(a.is_ok() && b.is_ok());
    ASSERT_EQ(check_valid(*a, s, rows, cols), "");
    EXPECT_EQ(a->row_to_col, b->row_to_col);
    EXPECT_EQ(a->col_to_row, b->col_to_row);
    EXPECT_EQ(a->total, 0.25 * std::min(rows, cols));
  }
}

TEST(AssignmentTest, RejectsNonFiniteEntriesNamingTheFirst) {
  const int rows = 3, cols = 4;
  auto s = random_matrix(rows, cols, 3);
  s[1 * cols + 2] = std::numeric_limits<double>::quiet_NaN();
  s[2 * cols + 0] = std::numeric_limits<double>::infinity();
  auto a = solve_assignment(s.data(), rows, cols);
  ASSERT_FALSE(a.is_ok());
  EXPECT_EQ(a.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(a.status().message().find("(row 1, col 2)"), std::string::npos) << a.status().message();
  EXPECT_NE(a.status().message().find("NaN"), std::string::npos) << a.status().message();

  s[1 * cols + 2] = 0.5;
  auto b = solve_assignment_min(s.data(), rows, cols);
  ASSERT_FALSE(b.is_ok());
  EXPECT_EQ(b.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(b.status().message().find("(row 2, col 0)"), std::string::npos) << b.status().message();
  EXPECT_NE(b.status().message().find("+inf"), std::string::npos) << b.status().message();
  EXPECT_NE(b.status().message().find("cost"), std::string::npos) << b.status().message();

  s[2 * cols + 0] = -std::numeric_limits<double>::infinity();
  auto c = solve_assignment(s.data(), rows, cols);
  ASSERT_FALSE(c.is_ok());
  EXPECT_NE(c.status().message().find("-inf"), std::string::npos) << c.status().message();
}

TEST(AssignmentTest, RejectsBadSizes) {
  auto neg = solve_assignment(nullptr, -1, 3);
  ASSERT_FALSE(neg.is_ok());
  EXPECT_EQ(neg.status().code(), StatusCode::kInvalidArgument);

  // Checked before any entry is read: a null pointer is never dereferenced.
  auto big = solve_assignment(nullptr, kMaxAssignmentSide + 1, 1);
  ASSERT_FALSE(big.is_ok());
  EXPECT_EQ(big.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(big.status().message().find(std::to_string(kMaxAssignmentSide)), std::string::npos);
  auto big2 = solve_assignment_min(nullptr, 1, kMaxAssignmentSide + 1);
  ASSERT_FALSE(big2.is_ok());
  EXPECT_EQ(big2.status().code(), StatusCode::kInvalidArgument);

  auto null = solve_assignment(nullptr, 2, 2);
  ASSERT_FALSE(null.is_ok());
  EXPECT_EQ(null.status().code(), StatusCode::kInvalidArgument);
}

TEST(AssignmentTest, EmptyAndTinyMatrices) {
  auto e = solve_assignment(nullptr, 0, 0);
  ASSERT_TRUE(e.is_ok());
  EXPECT_TRUE(e->row_to_col.empty());
  EXPECT_TRUE(e->col_to_row.empty());
  EXPECT_EQ(e->total, 0.0);

  auto wide = solve_assignment(nullptr, 0, 5);
  ASSERT_TRUE(wide.is_ok());
  EXPECT_TRUE(wide->row_to_col.empty());
  EXPECT_EQ(wide->col_to_row, std::vector<int>(5, -1));
  EXPECT_EQ(wide->total, 0.0);

  auto tall = solve_assignment_min(nullptr, 4, 0);
  ASSERT_TRUE(tall.is_ok());
  EXPECT_EQ(tall->row_to_col, std::vector<int>(4, -1));
  EXPECT_TRUE(tall->col_to_row.empty());

  const double one = -2.5;
  auto a = solve_assignment(&one, 1, 1);
  ASSERT_TRUE(a.is_ok());
  EXPECT_EQ(a->row_to_col, std::vector<int>{0});
  EXPECT_EQ(a->col_to_row, std::vector<int>{0});
  EXPECT_EQ(a->total, -2.5);
}

TEST(AssignmentTest, ExtremeMagnitudesDoNotOverflow) {
  // Entries up to 1.99 * 2^1023 (near DBL_MAX): differences of two raw entries already overflow.
  // Scaling by 2^1023 is exact, so the optimum is that of the unscaled matrix (whose sums do not
  // overflow, unlike the scaled ones). Odd seeds use only +-1.99: many ties.
  for (int n : {4, 6}) {
    for (int seed = 0; seed < 100; ++seed) {
      auto s0 = random_matrix(n, n, 900 + 7 * n + seed, -1.99, 1.99);
      if (seed % 2 == 1) {
        for (double& x : s0) x = std::copysign(1.99, x);
      }
      std::vector<double> s(s0.size());
      for (size_t k = 0; k < s.size(); ++k) s[k] = std::ldexp(s0[k], 1023);
      auto a = solve_assignment(s.data(), n, n);
      ASSERT_TRUE(a.is_ok()) << a.status().to_string();
      Assignment unscaled = *a;
      unscaled.total = 0;
      for (int i = 0; i < n; ++i) unscaled.total += s0[i * n + a->row_to_col[i]];
      ASSERT_EQ(check_valid(unscaled, s0, n, n), "");
      EXPECT_NEAR(unscaled.total, brute_force(s0, n, n, true), 1e-9)
          << "n=" << n << " seed=" << seed;
    }
  }
  // Tiny values: a scale of 1e-300 is handled without rescaling.
  auto s = random_matrix(4, 6, 7, -1.0, 1.0);
  for (double& x : s) x *= 1e-300;
  auto a = solve_assignment_min(s.data(), 4, 6);
  ASSERT_TRUE(a.is_ok());
  EXPECT_NEAR(a->total / 1e-300, brute_force(s, 4, 6, false) / 1e-300, 1e-9);
}

TEST(AssignmentTest, LargeRandomMatrixIsFastAndLocallyOptimal) {
  const int n = 1000;
  const auto s = random_matrix(n, n, 2024, 0.0, 1.0);
  const auto start = std::chrono::steady_clock::now();
  auto a = solve_assignment(s.data(), n, n);
  const double secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  ASSERT_TRUE(a.is_ok()) << a.status().to_string();
  ASSERT_EQ(check_valid(*a, s, n, n), "");
  EXPECT_GE(a->total, greedy_total(s, n));
  // Necessary condition for optimality: no exchange of two rows' columns improves the total.
  const auto& p = a->row_to_col;
  int improving = 0;
  for (int i = 0; i < n; ++i) {
    for (int k = i + 1; k < n; ++k) {
      const double now =
          s[static_cast<size_t>(i) * n + p[i]] + s[static_cast<size_t>(k) * n + p[k]];
      const double swapped =
          s[static_cast<size_t>(i) * n + p[k]] + s[static_cast<size_t>(k) * n + p[i]];
      if (swapped > now + 1e-12) ++improving;
    }
  }
  EXPECT_EQ(improving, 0);
  // Deterministic: a second call gives the same assignment.
  auto b = solve_assignment(s.data(), n, n);
  ASSERT_TRUE(b.is_ok());
  EXPECT_EQ(a->row_to_col, b->row_to_col);
  RecordProperty("solve_seconds", std::to_string(secs));
  std::printf("1000x1000 random: %.3f s, total %.6f, greedy %.6f\n", secs, a->total,
              greedy_total(s, n));
}

}  // namespace
}  // namespace prov::fingerprint
