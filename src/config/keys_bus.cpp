/// @file keys_bus.cpp
/// The keys of buses[] (see keys.cpp): target schedules, the run-time parameters, the grid meter.

#include <algorithm>

#include "eqd/core/bus_law.hpp"
#include "eqd/core/schedule.hpp"
#include "eqd/core/schedule_text.hpp"
#include "key_rules.hpp"

namespace eqd::config::detail {

namespace {

// days: "weekdays", "weekends", "all", a day ("mon".."sun") or a list of days. 0: not days.
std::uint8_t parse_days(const YAML::Node& n, const Ctx& c, const std::string& p) {
  const auto one = [&](const YAML::Node& d, const std::string& dp) -> std::uint8_t {
    const std::string s = read_string(d, c, dp);
    if (const std::uint8_t days = core::parse_day_word(s)) return days;
    fail(c, d.Mark(), dp, "got " + quoted(s) + " (expected " + core::kDayWordsExpected + ")");
  };
  if (!n.IsSequence()) return one(n, p);
  if (n.size() == 0) fail(c, n.Mark(), p, "got an empty list (expected at least one day)");
  std::uint8_t days = 0;
  for (std::size_t i = 0; i < n.size(); ++i) days |= one(n[i], p + "[" + std::to_string(i) + "]");
  return days;
}

}  // namespace

// The keys of one window of buses[].schedule (docs/configuration.md, "Target schedules").
const std::vector<Key<core::ScheduleWindow>>& schedule_window_keys() {
  using T = core::ScheduleWindow;
  const auto time_key = [](const char* name, bool is_end) -> Key<T> {
    return {name, true, [is_end](T& o, const YAML::Node& n, const Ctx& c, const std::string& p) {
              const std::string s = read_string(n, c, p);
              const int m = core::parse_hhmm(s, is_end);
              if (m < 0)
                fail(c, n.Mark(), p,
                     "got " + quoted(s) + " (expected " + (is_end ? core::kHhmmEndExpected : core::kHhmmStartExpected) +
                         ")");
              (is_end ? o.end_min : o.start_min) = m;
            }};
  };
  static const std::vector<Key<T>> k{
      {"days", false,
       [](T& o, const YAML::Node& n, const Ctx& c, const std::string& p) { o.days = parse_days(n, c, p); }},
      time_key("start", false),
      time_key("end", true),
      real_key<T>(
          "target_W", [](T& o) -> double& { return o.target_W; }, Bound{-core::kMaxPower_W, core::kMaxPower_W}, "W"),
      real_key<T>(
          "import_limit_W", [](T& o) -> double& { return o.import_limit_W; }, Bound{0.0, core::kMaxPower_W}, "W"),
      real_key<T>(
          "export_limit_W", [](T& o) -> double& { return o.export_limit_W; }, Bound{0.0, core::kMaxPower_W}, "W"),
  };
  return k;
}

namespace {

// buses[].schedule: a list of windows, each with a target (balance) or limits (caps).
Key<BusConfig> schedule_key() {
  return {"schedule", false, [](BusConfig& o, const YAML::Node& n, const Ctx& c, const std::string& p) {
            if (!n.IsSequence()) fail(c, n.Mark(), p, "got " + describe(n) + " (expected a list of windows)");
            if (n.size() > core::kMaxScheduleWindows)
              fail(c, n.Mark(), p,
                   "got " + std::to_string(n.size()) + " windows (at most " +
                       std::to_string(core::kMaxScheduleWindows) + " per bus)");
            std::vector<core::ScheduleWindow> out;
            for (std::size_t i = 0; i < n.size(); ++i) {
              const std::string ip = p + "[" + std::to_string(i) + "]";
              core::ScheduleWindow w;
              const std::set<std::string> given = decode_mapping(n[i], ip, schedule_window_keys(), w, c);
              const bool target = given.count("target_W") != 0;
              const bool caps = given.count("import_limit_W") != 0 || given.count("export_limit_W") != 0;
              if (const char* why = core::window_aim_error(target, caps)) fail(c, n[i].Mark(), ip, why);
              w.mode = caps ? core::BusMode::caps : core::BusMode::balance;
              if (const char* why = core::validate(w)) fail(c, n[i].Mark(), ip, why);
              out.push_back(w);
            }
            o.schedule = std::move(out);
          }};
}

// "balance or caps": the names of a choice row, for messages.
std::string choice_list(const core::RuntimeParam& r) {
  std::string l;
  for (std::size_t i = 0; i < r.choice_count; ++i)
    l += std::string(i == 0 ? "" : (i + 1 == r.choice_count ? " or " : ", ")) + r.choice_names[i];
  return l;
}

// The keys of the run-time parameter table (core::kRuntimeParams): one row there is one key here.
// tau_s accepts any positive value here: its 10..20 s range depends on allow_any_tau, which may
// come later in the mapping, so validate.cpp checks it.
std::vector<Key<BusConfig>> runtime_param_keys() {
  std::vector<Key<BusConfig>> k;
  for (const core::RuntimeParam& r : core::kRuntimeParams) {
    const Bound b{r.min, r.max, r.min_exclusive};
    k.push_back({r.name, false, [&r, b](BusConfig& o, const YAML::Node& n, const Ctx& c, const std::string& p) {
                   if (r.choice != nullptr) {
                     const std::string s = read_string(n, c, p);
                     const int i = core::find_runtime_choice(r, s);
                     if (i < 0) fail(c, n.Mark(), p, "got " + quoted(s) + " (expected " + choice_list(r) + ")");
                     core::set_runtime_value(r, o.params, i);
                     return;
                   }
                   core::set_runtime_value(r, o.params,
                                           r.flag ? (read_bool(n, c, p) ? 1.0 : 0.0) : read_double(n, c, p, b, r.unit));
                 }});
  }
  return k;
}

}  // namespace

const std::vector<Key<MeterConfig>>& meter_keys() {
  using T = MeterConfig;
  static const std::vector<Key<T>> k{
      {"transport", true,
       [](T& o, const YAML::Node& n, const Ctx& c, const std::string& p) {
         const std::string s = read_string(n, c, p);
         if (s != "sunspec" && s != "modbus")
           fail(c, n.Mark(), p,
                "got " + quoted(s) + " (expected sunspec (a SunSpec meter, models 201-204) or modbus (one register))");
         o.transport = s;
       }},
      {"host", true,
       [](T& o, const YAML::Node& n, const Ctx& c, const std::string& p) {
         std::string h = read_string(n, c, p);
         if (!eqd::io::is_host(h))
           fail(c, n.Mark(), p,
                "got " + quoted(h) + " (expected an IPv4 or IPv6 address or an RFC 1123 host name, e.g. 192.0.2.50)");
         o.host = std::move(h);
       }},
      int_key<T>(
          "port", [](T& o) -> std::uint16_t& { return o.port; }, 1, 65535, ""),
      int_key<T>(
          "unit_id", [](T& o) -> int& { return o.unit_id; }, 0, 247, ""),
      {"base_address", false,
       [](T& o, const YAML::Node& n, const Ctx& c, const std::string& p) {
         const std::string t = read_string(n, c, p);
         if (t == "auto")
           o.base_address = -1;
         else if (t == "0" || t == "40000" || t == "50000")
           o.base_address = std::stoi(t);
         else
           fail(c, n.Mark(), p, "got " + quoted(t) + " (expected auto | 0 | 40000 | 50000)");
       }},
      {"power", false,
       [](T& o, const YAML::Node& n, const Ctx& c, const std::string& p) {
         mb::Field f;
         f.table = mb::Table::holding;  // meters mostly serve holding registers
         const std::set<std::string> given = decode_mapping(n, p, field_keys(), f, c);
         if (given.count("stride") != 0)
           fail(c, n["stride"].Mark(), join(p, "stride"), "a meter has no channels (no stride)");
         if (!(f.scale != 0.0)) fail(c, n.Mark(), join(p, "scale"), "got 0 (expected a scale other than 0)");
         o.power = f;
       }},
      {"sign", false,
       [](T& o, const YAML::Node& n, const Ctx& c, const std::string& p) {
         const std::string s = read_string(n, c, p);
         if (s != "import_positive" && s != "export_positive")
           fail(c, n.Mark(), p,
                "got " + quoted(s) + " (expected import_positive (> 0 = drawn from the grid) or export_positive)");
         o.export_positive = s == "export_positive";
       }},
      real_key<T>(
          "poll_hz", [](T& o) -> double& { return o.poll_hz; }, Bound{0.1, 10.0}, "Hz"),
      int_key<T>(
          "timeout_ms", [](T& o) -> int& { return o.timeout_ms; }, 10, 60000, "ms"),
      real_key<T>(
          "tolerance_W", [](T& o) -> double& { return o.tolerance_W; }, kPowerMagnitude, "W"),
      real_key<T>(
          "persistence_s", [](T& o) -> double& { return o.persistence_s; }, Bound{0.0, 3600.0}, "s"),
      int_key<T>(
          "max_age_ms", [](T& o) -> int& { return o.max_age_ms; }, 100, 3600000, "ms"),
      bool_key<T>("trim", [](T& o) -> bool& { return o.trim; }),
      real_key<T>(
          "trim_tau_s", [](T& o) -> double& { return o.trim_tau_s; }, Bound{10.0, 3600.0}, "s"),
      real_key<T>(
          "trim_max_W", [](T& o) -> double& { return o.trim_max_W; }, Bound{0.0, eqd::core::kMaxPower_W, true}, "W"),
  };
  return k;
}

std::pair<std::string, std::string> meter_problem(const MeterConfig& m) {
  if (m.transport == "sunspec" && m.power)
    return {"power",
            "'power' applies only to meter transport: modbus (this meter uses sunspec: W and W_SF of model "
            "201-204)"};
  if (m.transport == "modbus" && m.base_address != -1)
    return {"base_address", "'base_address' applies only to meter transport: sunspec (this meter uses modbus)"};
  if (m.transport == "modbus" && !m.power)
    return {"power", "missing required key 'power' (meter transport modbus: the register of the grid power)"};
  // As a channel's max_age_ms: one late reading must not make the meter 'not ok'.
  if (m.max_age_ms < 2000.0 / m.poll_hz)
    return {"max_age_ms", "max_age_ms " + std::to_string(m.max_age_ms) + " is shorter than two poll periods (" +
                              num(2000.0 / m.poll_hz) + " ms at poll_hz " + num(m.poll_hz) + ")"};
  return {};
}

namespace {

// buses[].meter: a mapping; its transport decides which keys apply.
Key<BusConfig> meter_key() {
  return {"meter", false, [](BusConfig& o, const YAML::Node& n, const Ctx& c, const std::string& p) {
            MeterConfig m;
            decode_mapping(n, p, meter_keys(), m, c);
            if (const auto [key, why] = meter_problem(m); !key.empty()) {
              const YAML::Node at = n[key];
              fail(c, at ? at.Mark() : n.Mark(), join(p, key), why);
            }
            o.meter = std::move(m);
          }};
}

}  // namespace

const std::vector<Key<BusConfig>>& bus_keys() {
  using T = BusConfig;
  static const std::vector<Key<T>> k = [] {
    std::vector<Key<T>> keys{
        string_key<T>(
            "name", [](T& o) -> std::string& { return o.name; }, check_name, true),
        {"law", false,
         [](T& o, const YAML::Node& n, const Ctx& c, const std::string& p) {
           // The registered laws (src/core/bus_law.cpp); the law object is built with the control core.
           const std::string s = read_string(n, c, p);
           if (!core::parse_law_kind(s.c_str(), o.params.law))
             fail(c, n.Mark(), p, "got " + quoted(s) + " (expected a control law: " + core::law_names() + ")");
         }},
        real_key<T>(
            "slew_W_per_s", [](T& o) -> double& { return o.params.slew_W_per_s; }, kPowerMagnitude, "W/s"),
        real_key<T>(
            "flip_dwell_s", [](T& o) -> double& { return o.params.flip_dwell_s; }, kNonNeg, "s"),
        real_key<T>(
            "update_interval_s", [](T& o) -> double& { return o.params.update_interval_s; }, kPositive, "s"),
        real_key<T>(
            "trim_tau_s", [](T& o) -> double& { return o.params.trim_tau_s; }, kNonNeg, "s"),
        real_key<T>(
            "trim_max_fraction", [](T& o) -> double& { return o.params.trim_max_fraction; }, Bound{0.0, 0.5}, ""),
        real_key<T>(
            "hold_max_s", [](T& o) -> double& { return o.params.hold_max_s; }, kNonNeg, "s"),
        int_key<T>(
            "max_age_ms", [](T& o) -> std::int64_t& { return o.params.max_age_ms; }, 1, 3600000, "ms"),
        int_key<T>(
            "lease_ms", [](T& o) -> std::uint32_t& { return o.params.lease_ms; }, 1, 3600000, "ms"),
        bool_key<T>("allow_any_tau", [](T& o) -> bool& { return o.allow_any_tau; }),
        schedule_key(),
        meter_key(),
        real_key<T>(
            "forecast_horizon_s", [](T& o) -> double& { return o.params.forecast_horizon_s; }, Bound{1.0, 120.0}, "s"),
    };
    for (Key<T>& r : runtime_param_keys()) keys.push_back(std::move(r));
    return keys;
  }();
  return k;
}

}  // namespace eqd::config::detail
