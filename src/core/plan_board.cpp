// The exchange between planning laws and the planner. See plan_board.hpp.
#include "eqd/core/plan_board.hpp"

#include <algorithm>

namespace eqd::core {

PlanBoard::PlanBoard(std::size_t buses)
    : buses_(buses),
      asks_(std::make_unique<Seqlock<PlanAsk>[]>(buses)),
      answers_(std::make_unique<Seqlock<PlanAnswer>[]>(buses)) {}

bool PlanBoard::take_ask(std::size_t bus, PlanAsk& out) const noexcept {
  if (!asks_[bus].try_load(out, 8)) return false;
  return out.asked_ns >= 0;
}

PlanService::PlanService(std::size_t buses) : served_ns_(buses, -1) {}

std::size_t PlanService::serve(PlanBoard& board) noexcept {
  std::size_t made = 0;
  PlanAsk a;
  for (std::size_t b = 0; b < std::min(board.buses(), served_ns_.size()); ++b) {
    if (!board.take_ask(b, a) || a.asked_ns == served_ns_[b]) continue;
    served_ns_[b] = a.asked_ns;
    const int n = std::clamp(a.n, 0, HorizonPlanner::kMaxSteps);
    for (int t = 0; t < n; ++t) path_[static_cast<std::size_t>(t)] = a.free_W[static_cast<std::size_t>(t)];
    PlanRequest r;
    r.free_W = path_.data();
    r.n = n;
    r.target_W = a.target_W;
    r.start_W = a.start_W;
    r.start_direction = a.start_direction;
    r.lo_W = a.lo_W;
    r.hi_W = a.hi_W;
    r.slew_W_per_s = a.slew_W_per_s;
    r.delay_s = a.delay_s;
    r.travel_weight_s = a.travel_weight_s;
    r.flip_cost_Ws = a.flip_cost_Ws;
    const PlanResult res = planner_.solve(r);
    PlanAnswer ans;
    ans.asked_ns = a.asked_ns;
    ans.ok = res.ok;
    ans.first_W = res.first_W;
    board.publish(b, ans);
    ++plans_;
    ++made;
  }
  return made;
}

}  // namespace eqd::core
