// eqsim's `neware` server side (--bts): every controller of the rig as a device of one Neware-BTS-like
// server (TCP/XML API, read only; docs/devices.md) on the port after the others.
#include <cstdio>

#include "bts_server.hpp"
#include "server_side.hpp"

namespace eqd::sim {
namespace {

constexpr int kUnitChannels = 8;  // channels per unit (sub-device) of a served device
constexpr int kDeviceType = 27;

// The rig's controllers as devices of the BTS-like server: controller c is device c+1, its channels in
// units of 8; eqd's states as a BTS names them (running: working, equalizing: working in the vendor's
// own step; idle and offline: stop; fault: protect), the program position served as is.
class RigBtsSource final : public bts::ChannelSource {
 public:
  RigBtsSource(Plant& plant, std::size_t controllers) {
    for (std::size_t c = 0; c < controllers; ++c) backends_.push_back(std::make_unique<RigBackend>(plant, c, false));
  }
  bts::ChannelStatus status(std::size_t device, std::size_t channel) override {
    bts::ChannelStatus st;
    if (device >= backends_.size() || channel >= backends_[device]->channel_count()) {
      st.workstatus = "false";
      return st;
    }
    const ServedReading r = backends_[device]->read(channel);
    st.voltage_V = r.voltage_V;
    st.current_A = r.current_A;
    st.with_power = true;
    st.power_W = r.power_W;  // the plant's own battery-side power
    switch (static_cast<eqd::core::ChannelState>(r.state_code)) {
      case eqd::core::ChannelState::running:
      case eqd::core::ChannelState::equalizing:
        st.workstatus = "working";
        break;
      case eqd::core::ChannelState::paused:
        st.workstatus = "pause";
        break;
      case eqd::core::ChannelState::fault:
        st.workstatus = "protect";
        break;
      default:
        st.workstatus = "stop";
    }
    if (r.step_index != 0xFFFF) st.step_id = r.step_index;
    if (r.cycle_index != 0xFFFF'FFFFu) st.cycle_id = static_cast<long>(r.cycle_index);
    st.step_type = r.current_A > 0.0 ? "cc" : r.current_A < 0.0 ? "dc" : "rest";
    return st;
  }

 private:
  std::vector<std::unique_ptr<RigBackend>> backends_;
};

class BtsSide final : public ServerSide {
 public:
  const char* transport() const noexcept override { return "neware"; }

  void add_options(CLI::App& app) override {
    app.add_flag("--bts", wanted_,
                 "also serve every controller as a device of one Neware-BTS-like server (TCP/XML API, read only: "
                 "device c+1, type 27, 8 channels per unit) on the port after the others (docs/devices.md)");
  }

  bool wanted() const override { return wanted_; }

  void build(ServeContext& ctx) override {
    const Rig& rig = ctx.plant.rig;
    source_ = std::make_unique<RigBtsSource>(ctx.plant, rig.controller_count());
    bts::ServerConfig bc;
    bc.host = ctx.listen_host;
    bc.port = ctx.next_port();
    for (std::size_t c = 0; c < rig.controller_count(); ++c) {
      const auto channels = static_cast<int>(rig.controller(c).channel_count());
      bc.devices.push_back(
          {kDeviceType, static_cast<int>(c + 1), (channels + kUnitChannels - 1) / kUnitChannels, kUnitChannels});
    }
    server_ = std::make_unique<bts::BtsServer>(bc, *source_);
    for (std::size_t c = 0; c < rig.controller_count(); ++c)
      std::printf("eqsim: BTS device %zu (controller %s) on %s:%u\n", c + 1, rig.controller(c).params().name.c_str(),
                  ctx.listen_host.c_str(), server_->port());
  }

  void start() override { server_->start(); }
  void stop() override {
    if (server_) server_->stop();
  }

  // --eqd-transport neware: the rig's controllers read through the BTS API. eqd cannot command them,
  // so their buffers are not equalization entries (SunSpec storage served beside can be).
  bool serves_rig_controllers() const override { return true; }
  bool commands() const override { return false; }
  std::string controller_keys(const Rig& /*rig*/, std::size_t c) const override {
    return "    transport: neware\n    host: 127.0.0.1\n    port: " + std::to_string(server_->port()) +
           "\n    device_id: " + std::to_string(c + 1) + "\n    unit_channels: " + std::to_string(kUnitChannels) + "\n";
  }

 private:
  bool wanted_ = false;
  std::unique_ptr<RigBtsSource> source_;
  std::unique_ptr<bts::BtsServer> server_;
};

}  // namespace

std::unique_ptr<ServerSide> make_bts_side() { return std::make_unique<BtsSide>(); }

}  // namespace eqd::sim
