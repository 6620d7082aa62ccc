#include "eqd/sim/rig.hpp"

#include <algorithm>

namespace eqd::sim {

Rig load_rig(const std::string& path) { return Rig(load_rig_spec(path)); }

Rig::Rig(const RigSpec& spec) : spec_(spec), meters_(spec.buses.size()), rng_(spec.seed) {
  for (std::size_t c = 0; c < spec_.controllers.size(); ++c) {
    const ControllerSpec& cs = spec_.controllers[c];
    controllers_.emplace_back(cs.params, cs.channels);
    for (std::size_t k = 0; k < cs.channels.size(); ++k)
      // Channel numbers in names are 1-based, as cyclers label them and as eqd's config reads them.
      refs_.push_back({c, k, cs.params.name + "/" + std::to_string(k + 1)});
  }
}

const ChannelSpec& Rig::channel_spec(std::size_t i) const noexcept {
  return controllers_[refs_[i].controller].spec(refs_[i].index);
}

const ChannelReading& Rig::reading(std::size_t i) const noexcept {
  return controllers_[refs_[i].controller].reading(refs_[i].index);
}

const ChannelTruth& Rig::truth(std::size_t i) const noexcept {
  return controllers_[refs_[i].controller].truth(refs_[i].index);
}

std::optional<std::size_t> Rig::find_channel(const std::string& name) const {
  for (std::size_t i = 0; i < refs_.size(); ++i)
    if (refs_[i].name == name) return i;
  return std::nullopt;
}

std::optional<std::size_t> Rig::find_controller(const std::string& name) const {
  for (std::size_t i = 0; i < controllers_.size(); ++i)
    if (controllers_[i].params().name == name) return i;
  return std::nullopt;
}

std::optional<std::size_t> Rig::find_bus(const std::string& name) const {
  for (std::size_t i = 0; i < spec_.buses.size(); ++i)
    if (spec_.buses[i].name == name) return i;
  return std::nullopt;
}

double Rig::rated_eq_W(std::size_t bus) const noexcept {
  double sum = 0.0;
  for (std::size_t i = 0; i < refs_.size(); ++i) {
    const ChannelSpec& s = channel_spec(i);
    if (s.buffer && s.bus == bus) sum += std::max(s.limits.max_charge_W, s.limits.max_discharge_W);
  }
  return sum;
}

void Rig::step(double dt_s) noexcept {
  for (ControllerModel& c : controllers_) c.step(now_s_, dt_s, rng_);
  now_s_ += dt_s;
  for (BusMeter& m : meters_) m.net_W = m.free_W = m.eq_W = 0.0;
  for (std::size_t i = 0; i < refs_.size(); ++i) {
    // The meter is physical truth: a stalled channel's frozen registers do not fool it.
    const ChannelTruth& t = truth(i);
    BusMeter& m = meters_[channel_spec(i).bus];
    m.net_W += t.bus_power_W;
    (t.equalizing ? m.eq_W : m.free_W) += t.bus_power_W;
  }
  for (BusMeter& m : meters_) {
    (m.net_W >= 0.0 ? m.grid_import_J : m.grid_export_J) += std::abs(m.net_W) * dt_s;
    (m.free_W >= 0.0 ? m.free_import_J : m.free_export_J) += std::abs(m.free_W) * dt_s;
  }
}

void Rig::inject_fault(std::size_t i, std::uint16_t code) noexcept {
  if (i < refs_.size()) controllers_[refs_[i].controller].inject_fault(refs_[i].index, code);
}
void Rig::clear_fault(std::size_t i) noexcept {
  if (i < refs_.size()) controllers_[refs_[i].controller].clear_fault(refs_[i].index);
}
void Rig::set_stalled(std::size_t i, bool stalled) noexcept {
  if (i < refs_.size()) controllers_[refs_[i].controller].set_stalled(refs_[i].index, stalled);
}
void Rig::set_offline(std::size_t controller, bool offline) noexcept {
  if (controller < controllers_.size()) controllers_[controller].set_offline(offline);
}

}  // namespace eqd::sim
