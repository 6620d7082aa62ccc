// A plain libmodbus client for the SunSpec simulator tests, and the specification's facts the tests
// decode with: offsets written out here from the SunSpec model definitions (sunspec/models,
// json/model_<ID>.json; offsets from the model's ID register, ID = 0, L = 1), never taken from the
// simulator's own tables, so that a slip on either side shows up as a disagreement.
// Thread-safety: not thread-safe (one test thread).
#pragma once

#include <modbus/modbus.h>

#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace eqd::test::sunspec {

// Model 1 (common): L 66.
namespace m1 {
constexpr int L = 66, Mn = 2, Md = 18, Opt = 34, Vr = 42, SN = 50, DA = 66, Pad = 67;
}
// Model 103 (three-phase inverter): L 50.
namespace m103 {
constexpr int L = 50, A = 2, A_SF = 6, PhVphA = 10, V_SF = 13, W = 14, W_SF = 15, Hz = 16, Hz_SF = 17, VAr = 20,
              VAr_SF = 21, PF = 22, WH = 24, WH_SF = 26, St = 38;
}
// Model 124 (basic storage controls): L 24.
namespace m124 {
constexpr int L = 24, WChaMax = 2, WChaGra = 3, WDisChaGra = 4, StorCtl_Mod = 5, VAChaMax = 6, MinRsvPct = 7,
              ChaState = 8, StorAval = 9, InBatV = 10, ChaSt = 11, OutWRte = 12, InWRte = 13, WinTms = 14, RvrtTms = 15,
              RmpTms = 16, ChaGriSet = 17, WChaMax_SF = 18, WChaDisChaGra_SF = 19, VAChaMax_SF = 20, MinRsvPct_SF = 21,
              ChaState_SF = 22, StorAval_SF = 23, InBatV_SF = 24, InOutWRte_SF = 25;
}
// Model 203 (wye meter; 201 and 204 share the layout): L 105.
namespace m203 {
constexpr int L = 105, A = 2, AphA = 3, A_SF = 6, PhV = 7, V_SF = 15, Hz = 16, W = 18, WphA = 19, WphB = 20, WphC = 21,
              W_SF = 22, VAR = 28, TotWhExp = 38, TotWhExpPhA = 40, TotWhImp = 46, TotWh_SF = 54, TotVAhExp = 55;
}
// Model 802 (battery): L 62.
namespace m802 {
constexpr int L = 62, WHRtg = 3, WChaRteMax = 4, WDisChaRteMax = 5, SoC = 11, SoH = 13, ChaSt = 16, W = 47, SoC_SF = 56,
              W_SF = 63;
}
// ChaSt (models 124 and 802).
constexpr int kEmpty = 2, kDischarging = 3, kCharging = 4, kFull = 5, kHolding = 6;

inline std::int16_t s16(std::uint16_t r) { return static_cast<std::int16_t>(r); }
inline double scaled(double raw, std::uint16_t sf) { return raw * std::pow(10.0, s16(sf)); }
inline std::uint32_t u32(const std::vector<std::uint16_t>& r, int i) {
  return (static_cast<std::uint32_t>(r[static_cast<std::size_t>(i)]) << 16) | r[static_cast<std::size_t>(i) + 1];
}
/// A SunSpec string: two characters per register, high byte first, up to the first NUL.
inline std::string text(const std::vector<std::uint16_t>& r, int first, int regs) {
  std::string s;
  for (int i = first; i < first + regs; ++i)
    for (const int c : {r[static_cast<std::size_t>(i)] >> 8, r[static_cast<std::size_t>(i)] & 0xFF}) {
      if (c == 0) return s;
      s.push_back(static_cast<char>(c));
    }
  return s;
}

/// One Modbus TCP connection to 127.0.0.1:port, unit `unit`.
class Client {
 public:
  explicit Client(int port, int timeout_ms = 1000, int unit = 1) : ctx_(modbus_new_tcp("127.0.0.1", port)) {
    if (ctx_ == nullptr) throw std::runtime_error("modbus_new_tcp");
    modbus_set_slave(ctx_, unit);
    modbus_set_response_timeout(ctx_, 0, static_cast<std::uint32_t>(timeout_ms) * 1000U);
    if (modbus_connect(ctx_) != 0) throw std::runtime_error("connect");
  }
  ~Client() {
    modbus_close(ctx_);
    modbus_free(ctx_);
  }
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  /// Registers [addr, addr + n) in reads of at most 125; throws on an error (errno kept in error()).
  std::vector<std::uint16_t> read(int addr, int n) {
    std::vector<std::uint16_t> out(static_cast<std::size_t>(n));
    for (int done = 0; done < n;) {
      const int k = std::min(125, n - done);
      if (modbus_read_registers(ctx_, addr + done, k, out.data() + done) != k) {
        error_ = errno;
        throw std::runtime_error(std::string("read failed: ") + modbus_strerror(errno));
      }
      done += k;
    }
    return out;
  }
  /// 0 if the read succeeded, else errno (e.g. EMBXILADD for exception 0x02).
  int try_read(int addr, int n) {
    std::vector<std::uint16_t> out(static_cast<std::size_t>(n));
    return modbus_read_registers(ctx_, addr, n, out.data()) == n ? 0 : errno;
  }
  /// FC6; 0 or errno (EMBXILADD 0x02, EMBXILVAL 0x03).
  int write1(int addr, std::uint16_t v) { return modbus_write_register(ctx_, addr, v) == 1 ? 0 : errno; }
  /// FC16; 0 or errno.
  int write(int addr, const std::vector<std::uint16_t>& v) {
    const int n = static_cast<int>(v.size());
    return modbus_write_registers(ctx_, addr, n, v.data()) == n ? 0 : errno;
  }
  /// The ID register addresses of the chain from `base` (marker checked by the caller), walked as the
  /// specification says: ID, L, L registers, until ID 0xFFFF; at most `max_models`.
  std::vector<int> walk(int base, int max_models = 32) {
    std::vector<int> ids;
    int a = base + 2;
    for (int i = 0; i < max_models; ++i) {
      const auto h = read(a, 2);
      if (h[0] == 0xFFFF) return ids;
      ids.push_back(a);
      a += 2 + h[1];
    }
    throw std::runtime_error("no end of chain");
  }
  /// Send `pdu` (unit id first, then function and data; libmodbus adds the MBAP header) and return the
  /// response from its function code on (empty on no or a bad response).
  std::vector<std::uint8_t> raw(const std::vector<std::uint8_t>& pdu) {
    std::uint8_t rsp[MODBUS_TCP_MAX_ADU_LENGTH];
    if (modbus_send_raw_request(ctx_, pdu.data(), static_cast<int>(pdu.size())) < 0) return {};
    const int n = modbus_receive_confirmation(ctx_, rsp);
    if (n <= 7) return {};
    return std::vector<std::uint8_t>(rsp + 7, rsp + n);  // after the 7-byte MBAP header
  }
  /// Per-byte timeout after the first byte of a response (libmodbus' byte timeout).
  void byte_timeout(int ms) { modbus_set_byte_timeout(ctx_, 0, static_cast<std::uint32_t>(ms) * 1000U); }
  [[nodiscard]] int error() const { return error_; }

 private:
  modbus_t* ctx_;
  int error_ = 0;
};

/// Poll `pred` every 10 ms until it holds or `limit` passes; true if it held.
template <class P>
bool eventually(P pred, std::chrono::milliseconds limit) {
  const auto end = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < end) {
    if (pred()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return pred();
}

// eqsim's SunSpec devices (base 40000, the common model then the device's model at 40070):
// the meter's model 203 W (+ = import) and a storage's model 103 W (+ = discharging).
inline double eqsim_meter_W(Client& c) {
  const auto r = c.read(40070, 2 + m203::L);
  return scaled(s16(r[m203::W]), r[m203::W_SF]);
}
inline double eqsim_storage_W(Client& c) {
  const auto r = c.read(40070, 2 + m103::L);
  return scaled(s16(r[m103::W]), r[m103::W_SF]);
}

}  // namespace eqd::test::sunspec
