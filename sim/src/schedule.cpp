#include "eqd/sim/schedule.hpp"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <fstream>

#include "eqd/sim/errors.hpp"

namespace eqd::sim {

const char* to_string(StepType t) noexcept {
  switch (t) {
    case StepType::rest:
      return "rest";
    case StepType::cc:
      return "cc";
    case StepType::cp:
      return "cp";
    case StepType::cc_cv:
      return "cc_cv";
    case StepType::pulse:
      return "pulse";
    case StepType::profile:
      return "profile";
    case StepType::random:
      return "random";
  }
  return "?";
}

std::uint64_t mix_seed(std::uint64_t key, std::uint64_t value) noexcept {
  // splitmix64's increment and finaliser: every input bit reaches every output bit, so that keys that
  // differ by one (channel 3 and 4, pass 7 and 8) give unrelated streams.
  std::uint64_t z = key + 0x9E3779B97F4A7C15ULL * (value + 1);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

double unit_from_seed(std::uint64_t key) noexcept {
  return static_cast<double>(key >> 11) * (1.0 / 9007199254740992.0);  // 2^-53
}

double Profile::at(double t_s) const noexcept {
  if (time_s.empty()) return 0.0;
  if (t_s <= time_s.front()) return value.front();
  if (t_s >= time_s.back()) return value.back();
  const auto it = std::upper_bound(time_s.begin(), time_s.end(), t_s);
  const std::size_t hi = static_cast<std::size_t>(it - time_s.begin());
  const std::size_t lo = hi - 1;
  const double f = (t_s - time_s[lo]) / (time_s[hi] - time_s[lo]);
  return value[lo] + f * (value[hi] - value[lo]);
}

namespace {
std::string trim(const std::string& s) {
  const auto b = s.find_first_not_of(" \t\r");
  if (b == std::string::npos) return {};
  const auto e = s.find_last_not_of(" \t\r");
  return s.substr(b, e - b + 1);
}

bool parse_double(const std::string& field, double& out) {
  const std::string f = trim(field);
  if (f.empty()) return false;
  errno = 0;
  char* end = nullptr;
  out = std::strtod(f.c_str(), &end);
  return errno == 0 && end == f.c_str() + f.size() && std::isfinite(out);
}
}  // namespace

std::shared_ptr<const Profile> load_profile(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw InputError(path, 0, 0, "", "cannot open profile CSV");
  auto p = std::make_shared<Profile>();
  p->path = path;
  std::string line;
  int n = 0;
  bool header = false;
  while (std::getline(in, line)) {
    ++n;
    const std::string t = trim(line);
    if (t.empty() || t[0] == '#') continue;
    if (!header) {
      // The header names the columns; a numeric first line means the header was forgotten.
      double dummy = 0.0;
      const auto comma = t.find(',');
      if (comma == std::string::npos || parse_double(t.substr(0, comma), dummy))
        throw InputError(path, n, 0, "", "expected a header line 'time_s,value', got '" + t + "'");
      header = true;
      continue;
    }
    const auto comma = t.find(',');
    if (comma == std::string::npos || t.find(',', comma + 1) != std::string::npos)
      throw InputError(path, n, 0, "", "expected two fields 'time_s,value', got '" + t + "'");
    double ts = 0.0, v = 0.0;
    if (!parse_double(t.substr(0, comma), ts))
      throw InputError(path, n, 0, "", "time_s is not a number: '" + trim(t.substr(0, comma)) + "'");
    if (!parse_double(t.substr(comma + 1), v))
      throw InputError(path, n, 0, "", "value is not a number: '" + trim(t.substr(comma + 1)) + "'");
    if (ts < 0.0) throw InputError(path, n, 0, "", "time_s must be >= 0");
    if (!p->time_s.empty() && !(ts > p->time_s.back()))
      throw InputError(path, n, 0, "",
                       "time_s must increase (previous row has " + std::to_string(p->time_s.back()) + ")");
    p->time_s.push_back(ts);
    p->value.push_back(v);
  }
  if (!header) throw InputError(path, n, 0, "", "empty profile (no header line)");
  if (p->time_s.size() < 2) throw InputError(path, n, 0, "", "a profile needs at least two rows");
  return p;
}

ScheduleRunner::ScheduleRunner(const Schedule* s)
    : schedule_(s), delay_left_s_(s != nullptr ? s->start_delay_s : 0.0), started_(delay_left_s_ <= 0.0) {
  enter_step();
}

bool ScheduleRunner::finished() const noexcept {
  if (schedule_ == nullptr || schedule_->steps.empty()) return true;
  return schedule_->repeat > 0 && pass_ >= static_cast<std::uint64_t>(schedule_->repeat);
}

Target ScheduleRunner::target() const noexcept {
  Target t;
  if (!active() || !started_) return t;
  const Step& s = schedule_->steps[index_];
  switch (s.type) {
    case StepType::rest:
      break;
    case StepType::cc:
      t.kind = TargetKind::current;
      t.value = s.value;
      break;
    case StepType::cp:
      t.kind = TargetKind::power;
      t.value = s.value;
      break;
    case StepType::cc_cv:
      t.kind = TargetKind::current;
      t.value = s.value;
      t.cv_V = s.cv_V;
      break;
    case StepType::pulse: {
      double period = 0.0;
      for (const PulseLevel& l : s.levels) period += l.duration_s;
      double x = period > 0.0 ? std::fmod(elapsed_s_, period) : 0.0;
      t.kind = s.pulse_kind;
      for (const PulseLevel& l : s.levels) {
        if (x < l.duration_s) {
          t.value = l.value;
          break;
        }
        x -= l.duration_s;
      }
      break;
    }
    case StepType::profile: {
      const Profile& p = *s.profile;
      double x = elapsed_s_;
      if (s.loop && p.end_s() > 0.0) x = std::fmod(x, p.end_s());
      t.kind = s.pulse_kind;
      t.value = s.scale * p.at(x);
      break;
    }
    case StepType::random:
      t.kind = s.pulse_kind;
      t.value = level_value_;
      break;
  }
  return t;
}

double ScheduleRunner::draw() noexcept {
  // Counter-based: the draw is a function of where the program is, not of a stream's history, so the
  // forecast's run-ahead copy sees the same levels and a pass never replays an earlier one.
  const Step& s = schedule_->steps[index_];
  std::uint64_t k = mix_seed(schedule_->seed, s.seed);
  k = mix_seed(k, index_);
  k = mix_seed(k, pass_);
  return unit_from_seed(mix_seed(k, draws_++));
}

void ScheduleRunner::draw_level(const Step& s) noexcept {
  // Always three draws per level, so that rest_fraction does not shift the later levels' values.
  const double rest = draw();
  const double v = draw();
  const double hold = draw();
  level_value_ = rest < s.rest_fraction ? 0.0 : s.value + v * (s.value_max - s.value);
  level_left_s_ += s.hold_min_s + hold * (s.hold_max_s - s.hold_min_s);
}

void ScheduleRunner::enter_step() noexcept {
  step_length_s_ = 0.0;
  level_value_ = 0.0;
  level_left_s_ = 0.0;
  draws_ = 0;
  if (!active()) return;
  const Step& s = schedule_->steps[index_];
  step_length_s_ = s.duration_s;
  if (s.type != StepType::random) return;
  if (s.duration_max_s > s.duration_s) step_length_s_ = s.duration_s + draw() * (s.duration_max_s - s.duration_s);
  draw_level(s);
}

double ScheduleRunner::forecast_at_W(double horizon_s, double resolution_s, double voltage_V,
                                     double present_W) const noexcept {
  ScheduleRunner what_if = *this;  // runs the program ahead on a copy; the real runner is untouched
  ConverterOutput assumed;
  assumed.voltage_V = voltage_V;
  assumed.power_W = present_W;
  assumed.current_A = voltage_V != 0.0 ? present_W / voltage_V : 0.0;
  assumed.voltage_limited = in_cv_;  // a CV phase stays one; nothing else reaches a voltage limit
  double left_s = horizon_s > 0.0 ? horizon_s : 0.0;
  const double step_s = resolution_s > 0.0 ? resolution_s : 1.0;
  while (left_s > 1e-9) {
    const double dt = std::min(step_s, left_s);
    what_if.advance(dt, assumed);
    left_s -= dt;
  }
  if (what_if.active() && what_if.started_ && what_if.in_cv_) return present_W;  // the taper: as now
  const Target t = what_if.target();
  if (t.kind == TargetKind::power) return t.value;
  if (t.kind == TargetKind::current) return t.value * voltage_V;
  return 0.0;
}

void ScheduleRunner::next_step() noexcept {
  elapsed_s_ = 0.0;
  in_cv_ = false;
  if (++index_ >= schedule_->steps.size()) {
    index_ = 0;
    ++pass_;
  }
  enter_step();
}

void ScheduleRunner::advance(double dt_s, const ConverterOutput& out) noexcept {
  if (!active()) return;
  if (!started_) {
    delay_left_s_ -= dt_s;
    started_ = delay_left_s_ <= 1e-9;
    return;
  }
  elapsed_s_ += dt_s;
  const Step& s = schedule_->steps[index_];
  bool done = step_length_s_ > 0.0 && elapsed_s_ >= step_length_s_ - 1e-9;
  switch (s.type) {
    case StepType::cc:
    case StepType::cp:
      if (s.until_V > 0.0) {
        if (s.value > 0.0 && out.voltage_V >= s.until_V) done = true;
        if (s.value < 0.0 && out.voltage_V <= s.until_V) done = true;
      }
      // Held at a converter voltage limit with (almost) no current: nothing more will happen.
      if (out.voltage_limited && std::fabs(out.current_A) < 1e-3 && elapsed_s_ > 1.0) done = true;
      break;
    case StepType::cc_cv:
      if (out.voltage_limited) in_cv_ = true;
      if (in_cv_ && std::fabs(out.current_A) < s.cutoff_A) done = true;
      break;
    case StepType::profile:
      if (!s.loop && s.duration_s <= 0.0 && elapsed_s_ >= s.profile->end_s()) done = true;
      // A drive cycle looped until a cutoff: the terminal under load, as a cycler's limit sees it.
      if (s.until_V > 0.0 && (s.until_falling ? out.voltage_V <= s.until_V : out.voltage_V >= s.until_V)) done = true;
      break;
    case StepType::random:
      level_left_s_ -= dt_s;
      while (level_left_s_ <= 1e-9 && s.hold_max_s > 0.0) draw_level(s);  // the loader wants hold_min_s > 0
      break;
    case StepType::rest:
    case StepType::pulse:
      break;
  }
  if (done) next_step();
}

}  // namespace eqd::sim
