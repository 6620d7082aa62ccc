// The connection cache file (see cache.hpp).
#include "eqd/discovery/cache.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "eqd/discovery/txt.hpp"

namespace eqd::discovery {

namespace {

using nlohmann::json;

std::string errno_text(const std::string& what) { return what + ": " + std::strerror(errno); }

// Reads one record; returns an error text naming the field, or empty.
std::string from_json(const json& j, ControllerRecord& r) {
  if (!j.is_object()) return "entry is not an object";
  auto str = [&](const char* k, std::string& out, bool required) -> std::string {
    const auto it = j.find(k);
    if (it == j.end()) return required ? std::string("missing \"") + k + "\"" : std::string();
    if (!it->is_string()) return std::string("\"") + k + "\" is not a string";
    out = it->get<std::string>();
    return {};
  };
  auto integer = [&](const char* k, std::int64_t& out, std::int64_t lo, std::int64_t hi, bool required) -> std::string {
    const auto it = j.find(k);
    if (it == j.end()) return required ? std::string("missing \"") + k + "\"" : std::string();
    if (!it->is_number_integer()) return std::string("\"") + k + "\" is not an integer";
    const auto v = it->get<std::int64_t>();
    if (v < lo || v > hi) return std::string("\"") + k + "\" = " + std::to_string(v) + " is out of range";
    out = v;
    return {};
  };
  std::string e;
  std::int64_t port = 0, unit = 1, channels = 0;
  if (!(e = str("name", r.name, true)).empty()) return e;
  if (r.name.empty() || sanitize_name(r.name) != r.name) return "\"name\" is not a controller name";
  if (!(e = str("identity", r.identity, true)).empty()) return e;
  if (!(e = str("service_type", r.service_type, false)).empty()) return e;
  if (!(e = str("host", r.host, true)).empty()) return e;
  if (r.host.empty()) return "\"host\" is empty";
  if (!(e = integer("port", port, 1, 65535, true)).empty()) return e;
  if (!(e = integer("unit_id", unit, 0, 247, false)).empty()) return e;
  if (!(e = str("profile", r.profile, false)).empty()) return e;
  if (r.profile.empty() || sanitize_name(r.profile) != r.profile) return "\"profile\" is not a profile name";
  if (!(e = integer("channels", channels, 1, kMaxAnnouncedChannels, true)).empty()) return e;
  if (const auto it = j.find("adopted"); it != j.end()) {
    if (!it->is_boolean()) return "\"adopted\" is not true or false";
    r.adopted = it->get<bool>();
  }
  // Optional (files of eqd before buses were announced have neither): empty means none.
  for (auto [key, out] : {std::pair{"bus", &r.bus}, {"adopted_bus", &r.adopted_bus}}) {
    if (!(e = str(key, *out, false)).empty()) return e;
    if (!out->empty() && !is_valid_name(*out)) return std::string("\"") + key + "\" is not a bus name";
  }
  constexpr std::int64_t kMaxTime = 1LL << 40;
  if (!(e = integer("first_seen_s", r.first_seen_s, 0, kMaxTime, false)).empty()) return e;
  if (!(e = integer("last_seen_s", r.last_seen_s, 0, kMaxTime, true)).empty()) return e;
  if (!(e = integer("last_connected_s", r.last_connected_s, 0, kMaxTime, false)).empty()) return e;
  r.port = static_cast<std::uint16_t>(port);
  r.unit_id = static_cast<int>(unit);
  r.channels = static_cast<std::uint16_t>(channels);
  return {};
}

json to_json(const ControllerRecord& r) {
  return json{{"name", r.name},
              {"identity", r.identity},
              {"service_type", r.service_type},
              {"host", r.host},
              {"port", r.port},
              {"unit_id", r.unit_id},
              {"profile", r.profile},
              {"channels", r.channels},
              {"adopted", r.adopted},
              {"bus", r.bus},
              {"adopted_bus", r.adopted_bus},
              {"first_seen_s", r.first_seen_s},
              {"last_seen_s", r.last_seen_s},
              {"last_connected_s", r.last_connected_s}};
}

}  // namespace

CacheLoad load_cache(const std::string& path) {
  CacheLoad out;
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    if (errno != ENOENT && std::filesystem::exists(path)) out.warning = errno_text("cannot read " + path);
    return out;
  }
  std::stringstream text;
  text << in.rdbuf();
  std::string why;
  const json j = json::parse(text.str(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded())
    why = "not valid JSON";
  else if (!j.is_object())
    why = "not a JSON object";
  else if (j.value("format", std::string()) != kCacheFormat)
    why = std::string("\"format\" is not \"") + kCacheFormat + "\"";
  else if (!j.contains("version") || !j["version"].is_number_integer())
    why = "\"version\" is missing";
  else if (j["version"].get<std::int64_t>() < 1 || j["version"].get<std::int64_t>() > kCacheVersion)
    why = "version " + j["version"].dump() + " is not understood (this eqd reads 1.." + std::to_string(kCacheVersion) +
          ")";
  else if (!j.contains("controllers") || !j["controllers"].is_array())
    why = "\"controllers\" is not a list";
  if (!why.empty()) {
    // Keep the evidence: a later eqd (or a person) may still make sense of it.
    out.moved_to = path + ".corrupt-" + std::to_string(std::time(nullptr));
    std::error_code ec;
    std::filesystem::rename(path, out.moved_to, ec);
    if (ec) {
      out.warning = "connection cache " + path + " is unusable (" + why + ") and could not be moved aside (" +
                    ec.message() + "); starting without it";
      out.moved_to.clear();
    } else {
      out.warning = "connection cache " + path + " is unusable (" + why + "); moved it to " + out.moved_to +
                    " and starting without it";
    }
    return out;
  }
  std::size_t index = 0;
  for (const json& e : j["controllers"]) {
    ControllerRecord r;
    const std::string err = from_json(e, r);
    if (!err.empty()) {
      out.warning += (out.warning.empty() ? "connection cache " + path + ": " : "; ") + std::string("entry ") +
                     std::to_string(index) + " skipped: " + err;
    } else {
      bool dup = false;
      for (const auto& x : out.records) dup = dup || x.name == r.name;
      if (dup)
        out.warning += (out.warning.empty() ? "connection cache " + path + ": " : "; ") + std::string("entry ") +
                       std::to_string(index) + " skipped: duplicate name " + r.name;
      else
        out.records.push_back(std::move(r));
    }
    ++index;
  }
  return out;
}

std::string save_cache(const std::string& path, const std::vector<ControllerRecord>& records) {
  json list = json::array();
  for (const auto& r : records) list.push_back(to_json(r));
  const std::string text =
      json{{"format", kCacheFormat}, {"version", kCacheVersion}, {"controllers", list}}.dump(2) + "\n";
  const std::filesystem::path p(path);
  const std::filesystem::path dir = p.parent_path().empty() ? std::filesystem::path(".") : p.parent_path();
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  const std::string tmp = path + ".tmp";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return errno_text("cannot create " + tmp);
  std::size_t done = 0;
  while (done < text.size()) {
    const ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      std::string e = errno_text("cannot write " + tmp);
      ::close(fd);
      ::unlink(tmp.c_str());
      return e;
    }
    done += static_cast<std::size_t>(n);
  }
  // fsync before rename: after a power cut the file is either the old one or the whole new one.
  if (::fsync(fd) != 0) {
    std::string e = errno_text("cannot fsync " + tmp);
    ::close(fd);
    ::unlink(tmp.c_str());
    return e;
  }
  ::close(fd);
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    std::string e = errno_text("cannot rename " + tmp + " to " + path);
    ::unlink(tmp.c_str());
    return e;
  }
  if (const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC); dfd >= 0) {
    (void)::fsync(dfd);  // makes the rename itself durable
    ::close(dfd);
  }
  return {};
}

std::vector<std::string> expire(std::vector<ControllerRecord>& records, std::int64_t now_s, std::int64_t expiry_s) {
  std::vector<std::string> gone;
  std::erase_if(records, [&](const ControllerRecord& r) {
    if (now_s - r.last_seen_s <= expiry_s) return false;
    gone.push_back(r.name);
    return true;
  });
  return gone;
}

}  // namespace eqd::discovery
