// eqsim's `tcp` server side: every controller of the rig as a Modbus TCP server (eqd's default
// profile, heartbeat watchdog and leases) on base port + c, and --publish: the controllers announced
// through avahi-daemon (docs/discovery.md), after their servers listen.
#include <cstdio>
#include <stdexcept>

#include "eqd/discovery/mdns.hpp"
#include "eqd/discovery/txt.hpp"
#include "server_side.hpp"

namespace eqd::sim {
namespace {

class ModbusTcpSide final : public ServerSide {
 public:
  const char* transport() const noexcept override { return "tcp"; }

  void add_options(CLI::App& app) override {
    app.add_flag("--publish", publish_,
                 "announce every controller through avahi-daemon as _eqd-ctrl._tcp (docs/discovery.md), so that eqd "
                 "finds them without a controller list");
  }

  bool wanted() const override { return true; }  // the rig's own controllers, always

  void build(ServeContext& ctx) override {
    Rig& rig = ctx.plant.rig;
    std::vector<ServedController> served;
    for (std::size_t c = 0; c < rig.controller_count(); ++c) {
      ServedController sc;
      sc.name = rig.controller(c).params().name;
      sc.port = ctx.next_port();
      sc.host = ctx.listen_host;
      sc.backend = std::make_shared<RigBackend>(ctx.plant, c);
      sc.map = eqd::io::modbus::default_profile(static_cast<std::uint16_t>(rig.controller(c).channel_count()));
      // A controller that announces forecasts says so (capability bit 5) and serves the forecast_power block.
      sc.capabilities = served_capabilities(rig.controller(c).params());
      const double hb = rig.controller(c).params().heartbeat_timeout_ms;
      sc.heartbeat_timeout_ms = static_cast<std::uint16_t>(std::min(hb, 65535.0));
      served.push_back(std::move(sc));
    }
    server_ = std::make_unique<ModbusServer>(std::move(served));
    for (std::size_t c = 0; c < rig.controller_count(); ++c) {
      ports_.push_back(server_->port(c));
      std::printf("eqsim: controller %s (%zu channels) on %s:%u unit 1\n", rig.controller(c).params().name.c_str(),
                  rig.controller(c).channel_count(), ctx.listen_host.c_str(), ports_.back());
    }
    rig_ = &rig;
  }

  void start() override {
    if (publish_) announce(*rig_);
    server_->start();
  }
  void stop() override {
    mdns_.stop();
    if (server_) server_->stop();
  }

  bool serves_rig_controllers() const override { return true; }
  std::string controller_keys(const Rig& /*rig*/, std::size_t c) const override {
    return "    transport: tcp\n    host: 127.0.0.1\n    port: " + std::to_string(ports_.at(c)) + "\n    unit_id: 1\n";
  }

 private:
  // Announced after the servers listen, so that whoever resolves a controller can connect at once.
  void announce(const Rig& rig) {
    // The session re-announces by itself after avahi-daemon restarts; say so, once per change.
    std::string err = mdns_.start({}, [](const eqd::discovery::MdnsStatus& st) {
      using Kind = eqd::discovery::MdnsStatus::Kind;
      std::fprintf(stderr, "eqsim: --publish: %s%s\n", st.text.c_str(),
                   st.kind == Kind::lost        ? "; announcing again once it is back"
                   : st.kind == Kind::connected ? ": announcing again"
                                                : "");
    });
    if (err.empty() && !mdns_.connected()) err = mdns_.not_connected_reason();
    if (!err.empty()) throw std::runtime_error("--publish: cannot reach avahi-daemon: " + err);
    std::vector<eqd::discovery::PublishedService> services;
    for (std::size_t c = 0; c < rig.controller_count(); ++c) {
      const auto& ctl = rig.controller(c);
      const std::string& name = ctl.params().name;
      // The bus of its channels; none when they are on several (one TXT key cannot say which channel is
      // where: eqd then needs an adoption with a bus, or a configuration entry).
      std::string bus;
      if (ctl.channel_count() > 0) {
        bus = rig.spec().buses[ctl.spec(0).bus].name;
        for (std::size_t k = 1; k < ctl.channel_count(); ++k)
          if (ctl.spec(k).bus != ctl.spec(0).bus) bus.clear();
      }
      if (bus.empty() && ctl.channel_count() > 0)
        std::fprintf(stderr, "eqsim: --publish: controller %s has channels on several buses: announced without a bus\n",
                     name.c_str());
      // The serial stays the same across restarts and ports, so that eqd follows a controller that moved.
      services.push_back(
          {name, eqd::discovery::kControllerServiceType, ports_[c],
           eqd::discovery::controller_txt(name, "eqsim-" + rig.spec().name + "-" + name, 1, "eqd-default",
                                          static_cast<std::uint16_t>(ctl.channel_count()), bus)});
    }
    err = mdns_.publish(std::move(services));
    if (!err.empty()) throw std::runtime_error("--publish: " + err);
    std::printf("eqsim: publishing %zu controller(s) as %s\n", rig.controller_count(),
                eqd::discovery::kControllerServiceType);
  }

  bool publish_ = false;
  const Rig* rig_ = nullptr;
  std::unique_ptr<ModbusServer> server_;
  std::vector<std::uint16_t> ports_;
  eqd::discovery::MdnsSession mdns_;
};

}  // namespace

std::unique_ptr<ServerSide> make_modbus_tcp_side() { return std::make_unique<ModbusTcpSide>(); }

}  // namespace eqd::sim
