// eqsim's `can` server side (--can IFACE): every controller of the rig on a CAN interface, controller c
// as node c+1 with eqd's CAN profile (classic or FD; docs/can-profile.md).
#include <cstdio>
#include <stdexcept>

#include "can_server.hpp"
#include "server_side.hpp"

namespace eqd::sim {
namespace {

class CanSide final : public ServerSide {
 public:
  const char* transport() const noexcept override { return "can"; }

  void add_options(CLI::App& app) override {
    app.add_option("--can", interface_,
                   "also serve every controller on this CAN interface (controller c = node id c+1, eqd CAN profile); "
                   "--write-eqd-config then writes transport: can controllers");
    app.add_flag("--can-fd", fd_, "with --can: use the CAN FD profile (eqd-default-fd; the interface needs MTU 72)");
    app.add_option("--can-hz", status_hz_, "with --can: status frames per channel per second")
        ->capture_default_str()
        ->check(CLI::Range(0.1, 100.0));
  }

  bool wanted() const override { return !interface_.empty(); }

  void build(ServeContext& ctx) override {
    const Rig& rig = ctx.plant.rig;
    profile_ = fd_ ? eqd::io::can::kDefaultCanFdProfile : eqd::io::can::kDefaultCanProfile;
    std::vector<CanServedController> on_can;
    for (std::size_t c = 0; c < rig.controller_count(); ++c) {
      CanServedController cc;
      cc.name = rig.controller(c).params().name;
      cc.node_id = static_cast<std::uint32_t>(c + 1);
      cc.backend = std::make_shared<RigBackend>(ctx.plant, c);
      cc.send_forecast = rig.controller(c).params().forecast_horizon_s > 0.0;
      cc.send_program = true;  // every simulated controller knows its channels' programs
      const auto n = static_cast<std::uint16_t>(rig.controller(c).channel_count());
      cc.map = fd_ ? eqd::io::can::default_can_fd_profile(n) : eqd::io::can::default_can_profile(n);
      cc.heartbeat_timeout_ms =
          static_cast<std::uint16_t>(std::min(rig.controller(c).params().heartbeat_timeout_ms, 65535.0));
      on_can.push_back(std::move(cc));
      std::printf("eqsim: controller %s on CAN %s node %zu (%s)\n", rig.controller(c).params().name.c_str(),
                  interface_.c_str(), c + 1, profile_.c_str());
    }
    try {
      server_ = CanServer::on_interface(interface_, std::move(on_can), status_hz_);
    } catch (const std::exception& e) {
      throw std::runtime_error(std::string("--can: ") + e.what());
    }
  }

  void start() override { server_->start(); }
  void stop() override {
    if (server_) server_->stop();
  }

  bool serves_rig_controllers() const override { return true; }
  std::string controller_keys(const Rig& /*rig*/, std::size_t c) const override {
    char hz[32];
    std::snprintf(hz, sizeof hz, "%g", status_hz_);
    return "    transport: can\n    interface: " + interface_ + "\n    node_id: " + std::to_string(c + 1) +
           "\n    can_profile: " + profile_ + "\n    poll_hz: " + hz + "\n";
  }

 private:
  std::string interface_;
  bool fd_ = false;
  double status_hz_ = 10.0;
  std::string profile_;
  std::unique_ptr<CanServer> server_;
};

}  // namespace

std::unique_ptr<ServerSide> make_can_side() { return std::make_unique<CanSide>(); }

}  // namespace eqd::sim
