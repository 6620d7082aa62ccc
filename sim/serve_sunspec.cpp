// eqsim's `sunspec` server side (docs/devices.md, "In eqsim"): N SunSpec storage devices and a SunSpec
// grid meter beside the rig, on the ports after the rig's controllers. The storage devices are not part
// of the plant: only the meter sees their power (the first bus's net power + the storages' + an
// optional offset nobody configured).
#include <cstdio>

#include "server_side.hpp"
#include "sunspec_device.hpp"

namespace eqd::sim {
namespace {

class SunSpecSide final : public ServerSide {
 public:
  const char* transport() const noexcept override { return "sunspec"; }

  void add_options(CLI::App& app) override {
    app.add_option("--sunspec-storage", storages_wanted_,
                   "also serve N SunSpec storage devices (models 1, 103, 124, 802; 10 kWh, 5 kW) on the ports after "
                   "the controllers' (docs/devices.md); not part of the plant: only --sunspec-meter sees their power")
        ->check(CLI::Range(0, 16));
    app.add_option("--sunspec-storage-max-charge-W", storage_max_charge_W_,
                   "124 WChaMax (and 802 WChaRteMax) of every --sunspec-storage device, W: its own power limit, which "
                   "bounds charging and discharging (default 5000)")
        ->check(CLI::Range(1.0, 30000.0));
    app.add_flag("--sunspec-meter", meter_wanted_,
                 "also serve a SunSpec grid meter (models 1, 203) showing the first bus's net power plus the SunSpec "
                 "storage devices' power (W > 0 = import)");
    app.add_option("--sunspec-meter-model", meter_model_,
                   "the meter model of --sunspec-meter: 201 (single phase), 203 (wye) or 204 (delta); default 203")
        ->check(CLI::IsMember({201, 203, 204}));
    app.add_option("--sunspec-meter-offset-W", meter_offset_W_,
                   "a load nobody configured: the SunSpec meter reads this much more import than the rig's net "
                   "power (to make eqd's meter check disagree)")
        ->check(CLI::Range(-100000.0, 100000.0));
    app.add_flag("--sunspec-meter-export-positive", export_positive_,
                 "the SunSpec meter reports export as positive W (a device of the other sign convention)");
  }

  bool wanted() const override { return storages_wanted_ > 0 || meter_wanted_; }

  void build(ServeContext& ctx) override {
    for (int i = 0; i < storages_wanted_; ++i) {
      sunspec::DeviceConfig dc;
      dc.name = "sunspec-storage-" + std::to_string(i + 1);
      dc.kind = sunspec::DeviceKind::storage;
      dc.host = ctx.listen_host;
      dc.port = ctx.next_port();
      dc.serial = "EQSIM-SS-" + std::to_string(i + 1);
      dc.storage.max_charge_W = storage_max_charge_W_;
      storages_.push_back(std::make_unique<sunspec::SunSpecDevice>(dc));
      std::printf("eqsim: SunSpec storage %s on %s:%u unit 1 (base 40000)\n", dc.name.c_str(), ctx.listen_host.c_str(),
                  storages_.back()->port());
    }
    if (!meter_wanted_) return;
    sunspec::DeviceConfig dc;
    dc.name = "sunspec-meter";
    dc.kind = sunspec::DeviceKind::meter;
    dc.host = ctx.listen_host;
    dc.port = ctx.next_port();
    dc.serial = "EQSIM-SM-1";
    dc.scale_factors = {{"W_SF", 1}};  // up to 327 kW
    dc.meter.model = static_cast<std::uint16_t>(meter_model_);
    meter_ = std::make_unique<sunspec::SunSpecDevice>(dc);
    std::printf("eqsim: SunSpec meter (model %d%s) of bus %s on %s:%u unit 1 (base 40000)\n", meter_model_,
                export_positive_ ? ", export positive" : "", ctx.plant.rig.spec().buses[0].name.c_str(),
                ctx.listen_host.c_str(), meter_->port());
  }

  void start() override {
    for (auto& d : storages_) d->start();
    if (meter_) meter_->start();
  }
  void stop() override {
    if (meter_) meter_->stop();
    for (auto& d : storages_) d->stop();
  }

  void step(Plant& plant) override {
    if (!meter_) return;
    double storage_W = 0.0;  // SunSpec storage, + = charging (their 103 W is + = discharging)
    for (const auto& d : storages_) storage_W -= d->state().power_W;
    const double import_W = plant.rig.bus_meter(0).net_W + storage_W + meter_offset_W_;
    meter_->set_meter_power_W(export_positive_ ? -import_W : import_W);
  }

  // The storages as controllers of the first bus with their one channel as a buffer (5 kW, the
  // device's 360..440 V battery window), the meter as the first bus's meter.
  void add_to_config(const Rig& rig, EqdConfigParts& parts) const override {
    const std::string& bus = rig.spec().buses[0].name;
    for (std::size_t i = 0; i < storages_.size(); ++i) {
      const std::string name = "sunspec-storage-" + std::to_string(i + 1);
      parts.controllers += "  - name: " + name + "\n    transport: sunspec\n    host: 127.0.0.1\n    port: " +
                           std::to_string(storages_[i]->port()) + "\n    bus: " + bus + "\n";
      parts.equalization += "  - channel: " + name +
                            "/1\n    max_charge_W: 5000\n    max_discharge_W: 5000\n    v_min_V: 360\n"
                            "    v_max_V: 440\n";
    }
    if (meter_)
      parts.first_bus +=
          "    meter:\n      transport: sunspec\n      host: 127.0.0.1\n      port: " + std::to_string(meter_->port()) +
          "\n" + (export_positive_ ? "      sign: export_positive\n" : "");
  }

 private:
  int storages_wanted_ = 0;
  double storage_max_charge_W_ = 5000.0;  ///< WChaMax: below the 5000 W written to eqd's configuration, a
                                          ///< device that takes less than configured (issue #19)
  bool meter_wanted_ = false;
  int meter_model_ = 203;
  double meter_offset_W_ = 0.0;
  bool export_positive_ = false;
  std::vector<std::unique_ptr<sunspec::SunSpecDevice>> storages_;
  std::unique_ptr<sunspec::SunSpecDevice> meter_;
};

}  // namespace

std::unique_ptr<ServerSide> make_sunspec_side() { return std::make_unique<SunSpecSide>(); }

}  // namespace eqd::sim
