// The history writer's part of the energy history: one finished minute into energy_bus and
// energy_buffer (see energy.hpp). Runs on the writer thread.
#include <spdlog/spdlog.h>

#include "store_detail.hpp"

namespace eqd::history {

namespace {

// A minute already there (eqd restarted within it, or stopped and started again) is added to: energy
// sums, peaks take the larger, the window position the weighted mean.
constexpr const char* kUpsertBus =
    "INSERT INTO energy_bus (minute_s, bus, grid_import_J, grid_export_J, free_import_J, free_export_J,"
    " eq_absorbed_J, eq_delivered_J, peak_net_W, peak_free_W, flips, setpoint_travel_W, window_pos, samples,"
    " peak_import_W, peak_free_import_W)"
    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)"
    " ON CONFLICT (minute_s, bus) DO UPDATE SET"
    " grid_import_J = grid_import_J + excluded.grid_import_J, grid_export_J = grid_export_J + excluded.grid_export_J,"
    " free_import_J = free_import_J + excluded.free_import_J, free_export_J = free_export_J + excluded.free_export_J,"
    " eq_absorbed_J = eq_absorbed_J + excluded.eq_absorbed_J, eq_delivered_J = eq_delivered_J + "
    "excluded.eq_delivered_J,"
    " peak_net_W = max(peak_net_W, excluded.peak_net_W), peak_free_W = max(peak_free_W, excluded.peak_free_W),"
    " peak_import_W = max(coalesce(peak_import_W, 0), excluded.peak_import_W),"
    " peak_free_import_W = max(coalesce(peak_free_import_W, 0), excluded.peak_free_import_W),"
    " flips = flips + excluded.flips, setpoint_travel_W = setpoint_travel_W + excluded.setpoint_travel_W,"
    " window_pos = CASE WHEN excluded.window_pos IS NULL THEN window_pos WHEN window_pos IS NULL THEN "
    "excluded.window_pos"
    "   ELSE (window_pos * samples + excluded.window_pos * excluded.samples) / (samples + excluded.samples) END,"
    " samples = samples + excluded.samples";
constexpr const char* kUpsertBuffer =
    "INSERT INTO energy_buffer (minute_s, channel, bus, charged_J, discharged_J, window_pos)"
    " VALUES (?1, ?2, ?3, ?4, ?5, ?6)"
    " ON CONFLICT (minute_s, channel) DO UPDATE SET"
    " charged_J = charged_J + excluded.charged_J, discharged_J = discharged_J + excluded.discharged_J,"
    " window_pos = coalesce((window_pos + excluded.window_pos) / 2, window_pos, excluded.window_pos)";

void bind_real(sqlite::Statement& st, int i, double v) { st.bind_real(i, v); }

void bind_optional(sqlite::Statement& st, int i, const std::optional<double>& v) {
  if (v)
    st.bind_real(i, *v);
  else
    st.bind_null(i);
}

}  // namespace

void HistoryStore::write_energy(const EnergyMinute& m) {
  if (opts_.path.empty() || (m.buses.empty() && m.buffers.empty())) return;
  const std::size_t rows = m.buses.size() + m.buffers.size();
  if (!db_) {
    on_database_error(database_error(), false, rows);
    return;
  }
  try {
    db_->conn.exec("BEGIN IMMEDIATE", "begin");
    sqlite::Statement bus(db_->conn, kUpsertBus);
    for (const BusMinute& b : m.buses) {
      bus.bind(1, m.minute_s);
      bus.bind(2, b.bus);
      const core::EnergyCounters& e = b.energy;
      int i = 3;
      for (double v : {e.grid_import_J, e.grid_export_J, e.free_import_J, e.free_export_J, e.eq_absorbed_J,
                       e.eq_delivered_J, b.peak_net_W, b.peak_free_W})
        bind_real(bus, i++, v);
      bus.bind(11, static_cast<std::int64_t>(b.flips));
      bind_real(bus, 12, b.setpoint_travel_W);
      bind_optional(bus, 13, b.window_pos);
      bus.bind(14, std::int64_t{b.samples});
      bind_real(bus, 15, b.peak_import_W);
      bind_real(bus, 16, b.peak_free_import_W);
      bus.step();
      bus.reset();
    }
    sqlite::Statement buf(db_->conn, kUpsertBuffer);
    for (const BufferMinute& b : m.buffers) {
      buf.bind(1, m.minute_s);
      buf.bind(2, b.channel);
      buf.bind(3, b.bus);
      bind_real(buf, 4, b.charged_J);
      bind_real(buf, 5, b.discharged_J);
      bind_optional(buf, 6, b.window_pos);
      buf.step();
      buf.reset();
    }
    db_->conn.exec("COMMIT", "commit");
    stats_->rows_written[1].fetch_add(m.buses.size(), std::memory_order_relaxed);
    stats_->rows_written[2].fetch_add(m.buffers.size(), std::memory_order_relaxed);
    stats_->last_write_ms.store(now_utc_ms(), std::memory_order_relaxed);
  } catch (const sqlite::Error& e) {
    try {
      db_->conn.exec("ROLLBACK", "rollback");
    } catch (const sqlite::Error&) {  // the failed statement may have ended the transaction already
    }
    on_database_error(std::string("writing the energy minute ") + std::to_string(m.minute_s) + ": " + e.what(),
                      e.corrupt(), rows);
  }
}

}  // namespace eqd::history
