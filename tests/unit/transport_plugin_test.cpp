// Transports as plug-ins (docs/architecture.md, "Adding a transport"): the registry lists the built-in
// transports, and a deliberately minimal transport defined only here — no file under src/ knows it —
// plugs in: its keys are read from the configuration (file and --set) with the configuration's
// errors, the rig plan and a real Daemon make its link through the registry, its samples reach the
// control core and the core's commands reach it through the shared command engine.

#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <cmath>
#include <mutex>
#include <thread>

#include "eqd/config/config.hpp"
#include "eqd/daemon/daemon.hpp"
#include "eqd/daemon/rig.hpp"
#include "eqd/io/command_engine.hpp"
#include "eqd/io/transport.hpp"
#include "../fakes/temp_files.hpp"

namespace {

using eqd::config::ConfigError;
using eqd::config::parse_config;

// ---- the test transport "loopback": every channel draws `load_W`, a commanded channel follows its
// setpoint at once. Settings, keys, checks, endpoint and link, nothing else.

struct LoopbackSettings final : eqd::io::TransportSettings {
  std::string label;     // loopback's only required key
  double load_W = 0.0;   // what each test channel draws (positive: charging)
  int idle_channel = 0;  // this channel (1-based) idles at 0 W until commanded: the buffer battery
  std::unique_ptr<eqd::io::TransportSettings> clone() const override {
    return std::make_unique<LoopbackSettings>(*this);
  }
};

std::int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

class LoopbackLink final : public eqd::io::Link {
 public:
  LoopbackLink(const LoopbackSettings& s, const eqd::io::LinkSpec& spec, eqd::io::ChannelSlots slots)
      : settings_(s),
        spec_(spec),
        slots_(std::move(slots)),
        engine_(slots_, {}),
        setpoint_W_(slots_.samples.size(), 0.0),
        equalizing_(slots_.samples.size(), false) {}
  ~LoopbackLink() override { stop(); }
  void start() override {
    if (thread_.joinable()) return;
    running_ = true;
    thread_ = std::thread([this] { run(); });
  }
  void stop() override {
    running_ = false;
    if (thread_.joinable()) thread_.join();
  }
  eqd::io::LinkStats stats() const override {
    std::lock_guard<std::mutex> lock(mutex_);
    return stats_;
  }
  bool connected() const noexcept override { return true; }
  void release_all() noexcept override { engine_.request_release(); }
  bool wait_released(std::chrono::milliseconds timeout) const override { return engine_.wait_released(timeout); }
  const std::string& name() const noexcept override { return spec_.name; }
  double poll_hz() const noexcept override { return spec_.poll_hz; }
  [[nodiscard]] std::uint64_t equalize_writes() const noexcept { return equalize_writes_.load(); }

 private:
  void run() {
    while (running_) {
      const std::int64_t t = now_ns();
      eqd::io::LinkStats st;
      {
        std::lock_guard<std::mutex> lock(mutex_);
        st = stats_;
      }
      for (std::size_t k = 0; k < slots_.samples.size(); ++k) {
        if (slots_.samples[k] == nullptr) continue;
        eqd::core::Sample s;
        s.voltage_V = 50.0;
        const bool idle = static_cast<int>(k) + 1 == settings_.idle_channel;
        s.power_W = equalizing_[k] ? setpoint_W_[k] : idle ? 0.0 : settings_.load_W;
        s.current_A = s.power_W / s.voltage_V;
        s.state = equalizing_[k] ? eqd::core::ChannelState::equalizing
                  : idle         ? eqd::core::ChannelState::idle
                                 : eqd::core::ChannelState::running;
        s.equalization_mode = equalizing_[k];
        s.receive_time_ns = t;
        s.sequence = ++sequence_;
        s.valid = true;
        slots_.samples[k]->store(s);
        engine_.observe(k, s, t);
      }
      ++st.polls;
      ++st.polls_ok;
      st.connected = true;
      // The transport only "sends": the engine decides what and when.
      engine_.write_commands(t, true, st, [this](std::size_t k, const eqd::core::Command& c) {
        equalizing_[k] = c.equalize;
        setpoint_W_[k] = c.equalize ? c.setpoint_W : 0.0;
        if (c.equalize) ++equalize_writes_;
        return eqd::io::WriteResult::ok;
      });
      {
        std::lock_guard<std::mutex> lock(mutex_);
        stats_ = st;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }

  LoopbackSettings settings_;
  eqd::io::LinkSpec spec_;
  eqd::io::ChannelSlots slots_;
  eqd::io::CommandEngine engine_;
  std::vector<double> setpoint_W_;
  std::vector<bool> equalizing_;
  std::uint32_t sequence_ = 0;
  std::atomic<std::uint64_t> equalize_writes_{0};
  mutable std::mutex mutex_;
  eqd::io::LinkStats stats_;
  std::atomic<bool> running_{false};
  std::thread thread_;
};

class LoopbackTransport final : public eqd::io::Transport {
 public:
  explicit LoopbackTransport(const char* name = "loopback") : name_(name) {}
  const char* name() const noexcept override { return name_; }
  const char* title() const noexcept override { return "test loopback"; }
  const std::vector<eqd::io::TransportKey>& keys() const override {
    static const std::vector<eqd::io::TransportKey> k{
        {"label",
         [](eqd::io::TransportSettings& s, const eqd::io::ValueReader& v) {
           std::string text = v.text();
           if (const char* e = eqd::io::check_name(text)) v.refuse(e);
           dynamic_cast<LoopbackSettings&>(s).label = std::move(text);
         }},
        {"load_W",
         [](eqd::io::TransportSettings& s, const eqd::io::ValueReader& v) {
           dynamic_cast<LoopbackSettings&>(s).load_W = v.real(-10000.0, 10000.0, "W");
         }},
        {"idle_channel",
         [](eqd::io::TransportSettings& s, const eqd::io::ValueReader& v) {
           dynamic_cast<LoopbackSettings&>(s).idle_channel = static_cast<int>(v.integer(1, 8, ""));
         }},
    };
    return k;
  }
  std::unique_ptr<eqd::io::TransportSettings> defaults() const override { return std::make_unique<LoopbackSettings>(); }
  std::optional<eqd::io::SettingProblem> resolve(eqd::io::TransportSettings& s, std::uint16_t& channels,
                                                 const eqd::io::NamedMaps&) const override {
    if (dynamic_cast<LoopbackSettings&>(s).label.empty())
      return eqd::io::SettingProblem{"label", "missing required key 'label' (transport loopback)", {}, {}};
    if (channels == 0) channels = 4;
    if (channels > 8) return eqd::io::SettingProblem{"channels", "loopback has at most 8 channels", {}, {}};
    return std::nullopt;
  }
  std::string lease_problem(const eqd::io::TransportSettings&, std::uint32_t, const std::string&) const override {
    return {};
  }
  std::string endpoint(const eqd::io::TransportSettings& s) const override {
    return "loopback:" + dynamic_cast<const LoopbackSettings&>(s).label;
  }
  std::unique_ptr<eqd::io::Link> make_link(const eqd::io::TransportSettings& s, const eqd::io::LinkSpec& spec,
                                           eqd::core::ControlCore& core) const override {
    return std::make_unique<LoopbackLink>(dynamic_cast<const LoopbackSettings&>(s), spec,
                                          eqd::io::slots_from_core(core, spec.channel_slots));
  }

 private:
  const char* name_;
};

// Registered once per process (CTest runs each case as its own process; Catch2 alone runs them all).
void ensure_registered() {
  static const bool done = [] {
    eqd::io::register_transport(std::make_unique<LoopbackTransport>());
    return true;
  }();
  (void)done;
}

// The load_W line is line 11 of the text (its value at column 13).
std::string rig_yaml(const std::string& state_dir, const std::string& load_line = "    load_W: 300\n") {
  return "state_dir: " + state_dir +
         "\n"
         "api: {socket: " +
         state_dir +
         "/eqd.sock}\n"
         "metrics: {enabled: false}\n"
         "buses:\n  - name: main\n    tau_s: 10\n"
         "controllers:\n"
         "  - name: lab\n    transport: loopback\n    label: bench1\n" +
         load_line +
         "    poll_hz: 50\n    idle_channel: 4\n"
         "equalization:\n"
         "  - {channel: lab/4, max_charge_W: 2000, max_discharge_W: 2000, v_min_V: 40, v_max_V: 60}\n";
}

std::string error_of(const std::string& yaml) {
  try {
    (void)parse_config(yaml, "t.yaml");
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "(no error)";
}

}  // namespace

TEST_CASE("transport registry lists the built-in transports and refuses a taken name", "[transport]") {
  const std::vector<std::string> names = eqd::io::transport_names();
  REQUIRE(names.size() >= 3);
  CHECK(names[0] == "tcp");
  CHECK(names[1] == "rtu");
  CHECK(names[2] == "can");
  CHECK(names[3] == "sunspec");
  CHECK(names[4] == "neware");
  for (const char* n : {"tcp", "rtu", "can", "sunspec", "neware"}) {
    const eqd::io::Transport* t = eqd::io::find_transport(n);
    REQUIRE(t != nullptr);
    CHECK(std::string(t->name()) == n);
    // Every key a built-in transport owns is its own: no two transports disagree about a common key.
    for (const auto& k : t->keys()) CHECK_FALSE(eqd::io::transports_owning(k.name).empty());
  }
  CHECK(eqd::io::find_transport("mqtt") == nullptr);
  CHECK(eqd::io::transports_owning("host") == std::vector<std::string>{"tcp", "sunspec", "neware"});
  CHECK(eqd::io::transports_owning("unit_id") == std::vector<std::string>{"tcp", "rtu", "sunspec"});
  CHECK_THROWS_WITH(eqd::io::register_transport(std::make_unique<LoopbackTransport>("tcp")),
                    "transport 'tcp' is already registered");
  CHECK_THROWS_WITH(eqd::io::register_transport(std::make_unique<LoopbackTransport>("bad name")),
                    Catch::Contains("expected a name of letters"));
}

TEST_CASE("a transport defined in a test plugs into the configuration", "[transport][config]") {
  ensure_registered();
  CHECK(eqd::io::transport_names().back() == "loopback");
  const eqd::test::ProcessTempDir tmp("eqd-transport-test");
  const std::string dir = tmp.path().string();
  const eqd::config::Config cfg = parse_config(rig_yaml(dir), "t.yaml");
  REQUIRE(cfg.controllers.size() == 1);
  const auto& c = cfg.controllers[0];
  CHECK(c.transport == "loopback");
  REQUIRE(c.settings_as<LoopbackSettings>() != nullptr);
  CHECK(c.settings_as<LoopbackSettings>()->label == "bench1");
  CHECK(c.settings_as<LoopbackSettings>()->load_W == 300.0);
  CHECK(c.channels == 4);  // the transport's default count

  SECTION("its keys get the configuration's errors, with file:line:column") {
    CHECK_THAT(error_of(rig_yaml(dir, "    load_W: lots\n")),
               Catch::StartsWith("t.yaml:11:13: controllers[0].load_W: ") && Catch::Contains("expected"));
    CHECK_THAT(error_of(rig_yaml(dir, "    load_W: 20000\n")),
               Catch::StartsWith("t.yaml:11:13: controllers[0].load_W: "));
    CHECK_THAT(error_of(rig_yaml(dir, "    load_W: 1\n    label: x/y\n")), Catch::Contains("duplicate key"));
    CHECK_THAT(error_of(rig_yaml(dir, "    channels: 9\n")),
               Catch::Contains("controllers[0].channels: loopback has at most 8 channels"));
  }
  SECTION("another transport's key is refused, both ways, and a typo gets a suggestion") {
    CHECK_THAT(
        error_of(rig_yaml(dir, "    host: 10.0.0.1\n")),
        Catch::Contains("'host' applies only to transport: tcp | sunspec | neware (this controller uses loopback)"));
    const std::string tcp_with_label =
        "buses: [{name: main}]\ncontrollers:\n  - {name: c1, host: 10.0.0.1, label: x}\n";
    CHECK_THAT(error_of(tcp_with_label),
               Catch::Contains("'label' applies only to transport: loopback (this controller uses tcp)"));
    CHECK_THAT(error_of(rig_yaml(dir, "    lod_W: 1\n")), Catch::Contains("did you mean 'load_W'"));
    CHECK_THAT(error_of("buses: [{name: main}]\ncontrollers:\n  - {name: c1, transport: mqtt}\n"),
               Catch::Contains("expected tcp | rtu | can | sunspec | neware | loopback"));
  }
  SECTION("a required key is checked by the transport, also after --set") {
    CHECK_THAT(error_of("buses: [{name: main}]\ncontrollers:\n  - {name: c1, transport: loopback}\n"),
               Catch::Contains("controllers[0].label: missing required key 'label' (transport loopback)"));
    eqd::config::Config copy = cfg;
    eqd::config::apply_overrides(copy, {"controllers.lab.load_W=-150"});
    CHECK(copy.controllers[0].settings_as<LoopbackSettings>()->load_W == -150.0);
    CHECK(cfg.controllers[0].settings_as<LoopbackSettings>()->load_W == 300.0);  // a copy is a copy
    CHECK_THROWS_WITH(eqd::config::apply_overrides(copy, {"controllers.lab.transport=tcp"}),
                      Catch::Contains("missing required key 'host' (transport tcp)"));
  }
  SECTION("the rig plan names its endpoint and plans one link through it") {
    const eqd::daemon::RigPlan plan = eqd::daemon::plan_rig(cfg);
    REQUIRE(plan.links.size() == 1);
    CHECK(plan.links[0].transport == eqd::io::find_transport("loopback"));
    CHECK(plan.directory.controllers[0].endpoint == "loopback:bench1");
    CHECK(plan.directory.controllers[0].transport == "loopback");
    CHECK(plan.links[0].spec.channel_slots.size() == 4);
  }
}

TEST_CASE("a real daemon runs a test transport's link: samples in, commands out", "[transport][daemon]") {
  ensure_registered();
  const eqd::test::ProcessTempDir tmp("eqd-transport-test");
  const eqd::config::Config cfg = parse_config(rig_yaml(tmp.path().string()), "t.yaml");
  eqd::daemon::Daemon d(cfg);
  d.start();
  // Three test channels draw 300 W each: the buffer lab/4 must discharge towards -900 W.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  double buffer_W = 0.0;
  while (std::chrono::steady_clock::now() < deadline) {
    buffer_W = d.sample(3).power_W;
    if (buffer_W < -600.0) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  const auto* link = dynamic_cast<const LoopbackLink*>(d.links().at(0).get());
  REQUIRE(link != nullptr);
  CHECK(link->equalize_writes() > 0);
  CHECK(buffer_W < -600.0);
  CHECK(d.bus(0).free_W == Approx(900.0).margin(1.0));
  const auto report = d.shutdown(std::chrono::milliseconds(2000));
  CHECK(report.acknowledged == std::vector<std::string>{"lab"});
  CHECK_FALSE(d.sample(3).equalization_mode);
}
