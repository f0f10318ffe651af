// Dense rectangular linear assignment: the best one-to-one matching between the rows and the
// columns of a score matrix. Used to align the hidden units (or residual-stream dimensions) of
// two networks before comparing them, where units may have been permuted.
//
// Problem. Given a rows x cols matrix S (row-major, S[i][j] = score[i * cols + j]), let
// k = min(rows, cols). solve_assignment picks k distinct rows and k distinct columns and pairs
// them one to one so that the sum of the paired scores is as large as possible:
//   rows <= cols: every row i gets a distinct column row_to_col[i]; cols - rows columns stay
//                 unassigned (col_to_row[j] == -1);
//   rows >  cols: every column j gets a distinct row col_to_row[j]; rows - cols rows stay
//                 unassigned (row_to_col[i] == -1).
// solve_assignment_min is the same with "as small as possible" (a cost matrix).
//
// Method. Shortest augmenting paths after Jonker and Volgenant, in the form described by
// D. F. Crouse, "On implementing 2D rectangular assignment algorithms" (IEEE TAES, 2016): row
// and column dual variables u, v are kept feasible (c_ij - u_i - v_j >= 0 for a minimisation),
// and each row in turn is added by a Dijkstra-like search for the shortest augmenting path in
// the reduced costs, after which the duals are updated and the path is flipped. The search runs
// on the smaller side: when rows > cols the solver works on the transpose (a cols x rows copy),
// so the side that is fully assigned is always the one the paths start from. No initial
// heuristics (column reduction, auction) are used. Time O(k^2 * max(rows, cols)) in the worst
// case (dense random matrices are much faster); extra memory O(rows + cols) when rows <= cols
// and the scores are moderate, plus one rows x cols copy of doubles when rows > cols or when
// the magnitudes are extreme (below).
//
// Exactness. The arithmetic is double precision. With integer scores of magnitude up to 2^32
// every intermediate value is an exact integer and the optimum is exact. With real scores the
// result is optimal up to rounding: its total can fall short of the true optimum only by an
// amount of the order of k * 2^-52 * max|score|, and among assignments whose totals differ by
// that little either may be returned. When the largest |score| exceeds 2^500 the solver works on
// the scores multiplied by an exact power of two that brings the largest to about 2^500 (so that
// the dual variables and path lengths cannot overflow); entries smaller than 2^-1500 times the
// largest then lose precision, far below the rounding above. Assignment::total is always the sum
// of the original chosen entries, in increasing order of the row index; it overflows to +-inf
// only when that sum itself does.
//
// Ties. The result is a deterministic function of (rows, cols, the values of the scores): the
// same input gives the same assignment on every call and thread of a given build. When several
// assignments are optimal, which one is returned follows from the scan order (each search takes
// the first column of least path length in its scan, a not-yet-assigned column preferred among
// equals) and is otherwise unspecified; callers should rely only on determinism.
//
// Thread safety: both functions are pure (no shared state); concurrent calls are safe, and the
// input is only read.
#pragma once

#include <vector>

#include "core/status.h"

namespace prov::fingerprint {

// The largest number of rows or of columns accepted.
inline constexpr int kMaxAssignmentSide = 20000;

struct Assignment {
  std::vector<int> row_to_col;  // size rows; -1 for a row left unassigned (rows > cols)
  std::vector<int> col_to_row;  // size cols; -1 for a column left unassigned (cols > rows)
  double total = 0;             // sum of the chosen scores (0 when nothing is assigned)
};

// Maximises sum over assigned rows i of score[i * cols + row_to_col[i]] over all one-to-one
// assignments of min(rows, cols) rows to as many columns (see the file comment).
//
// score: row-major rows x cols, borrowed for the duration of the call (may be null only when
// rows * cols == 0). rows, cols >= 0; a zero side gives an empty assignment (every row and
// column -1, total 0). Fails with kInvalidArgument, without reading any entry, when rows or cols
// is negative or above kMaxAssignmentSide, or when score is null for a non-empty matrix; and
// with kInvalidArgument naming the first (row-major order) entry that is NaN or infinite as
// "(row R, col C)". kInternal only for a broken invariant of the solver (a bug), or when the
// working copy cannot be allocated.
Result<Assignment> solve_assignment(const double* score, int rows, int cols);

// Minimises the sum of cost[i * cols + row_to_col[i]] instead; otherwise the same contract
// (total is the sum of the chosen costs; messages say "cost" instead of "score").
Result<Assignment> solve_assignment_min(const double* cost, int rows, int cols);

}  // namespace prov::fingerprint
