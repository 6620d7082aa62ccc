#pragma once
/// @file plan_board.hpp
/// The lock-free exchange between the laws that plan (law `planned`, on the control thread) and the
/// planner that solves their plans off it (eqd's planner thread; the simulator's harness, synchronously,
/// after each control cycle). Per bus: the newest ask (the known path and the bus's limits, as the law
/// saw them at asked_ns) and the newest answer (the first step of the plan for that ask). Both are
/// Seqlocks: the control thread never waits for the planner, a late answer is simply not used.
/// docs/control.md, "The receding-horizon planner".

#include <array>
#include <cstdint>
#include <memory>
#include <vector>

#include "eqd/core/horizon_planner.hpp"
#include "eqd/core/seqlock.hpp"

namespace eqd::core {

/// One bus's plan request: a PlanRequest with its path copied in. Trivially copyable.
struct PlanAsk {
  std::int64_t asked_ns = -1;  ///< the core clock when the law asked (-1: never)
  std::int32_t n = 0;          ///< seconds of path
  std::int32_t delay_s = 2;
  std::int32_t start_direction = 0;
  double target_W = 0.0, start_W = 0.0, lo_W = 0.0, hi_W = 0.0, slew_W_per_s = 0.0;
  double travel_weight_s = 0.0, flip_cost_Ws = 0.0;
  std::array<float, HorizonPlanner::kMaxSteps> free_W{};  ///< [0] = 1 s after asked_ns's second
};

/// The planner's answer to one ask. Trivially copyable.
struct PlanAnswer {
  std::int64_t asked_ns = -1;  ///< the ask it answers
  bool ok = false;             ///< false: the ask was out of range (the law falls back)
  double first_W = 0.0;        ///< what to command (the plan at delay_s)
};

/// Thread-safety: ask() and answer() from the control thread (the laws); take_ask() and publish() from
/// the planner's one thread. Sized at construction (allocates); nothing else allocates.
class PlanBoard {
 public:
  explicit PlanBoard(std::size_t buses);
  [[nodiscard]] std::size_t buses() const noexcept { return buses_; }

  void ask(std::size_t bus, const PlanAsk& a) noexcept { asks_[bus].store(a); }
  /// The newest answer; false if none or a write overlapped every attempt.
  [[nodiscard]] bool answer(std::size_t bus, PlanAnswer& out) const noexcept { return answers_[bus].try_load(out, 4); }

  /// The newest ask (planner side); false if none was ever made or it could not be read consistently.
  [[nodiscard]] bool take_ask(std::size_t bus, PlanAsk& out) const noexcept;
  void publish(std::size_t bus, const PlanAnswer& a) noexcept { answers_[bus].store(a); }

 private:
  std::size_t buses_;
  std::unique_ptr<Seqlock<PlanAsk>[]> asks_;
  std::unique_ptr<Seqlock<PlanAnswer>[]> answers_;
};

/// Answers a board's asks: for each bus whose newest ask is unanswered, solve it and publish the first
/// step. The planner thread's body, and the harness's after each cycle. Not thread-safe: one thread.
class PlanService {
 public:
  explicit PlanService(std::size_t buses);  ///< allocates
  /// Serve every bus once; returns how many plans were made. Allocation-free.
  std::size_t serve(PlanBoard& board) noexcept;
  [[nodiscard]] std::uint64_t plans() const noexcept { return plans_; }

 private:
  HorizonPlanner planner_;
  std::vector<std::int64_t> served_ns_;  ///< per bus: asked_ns of the last ask answered
  std::array<double, HorizonPlanner::kMaxSteps> path_{};
  std::uint64_t plans_ = 0;
};

}  // namespace eqd::core
