/// @file config.cpp
/// Entry points: load/parse (YAML -> Config, then resolve_and_validate), --set overrides, and the
/// list of accepted key paths.

#include "eqd/config/config.hpp"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "yaml_read.hpp"

namespace eqd::config {

namespace {

std::string format_error(const std::string& file, int line, int column, const std::string& key_path,
                         const std::string& message) {
  std::string s = file;
  if (line > 0) s += ":" + std::to_string(line) + ":" + std::to_string(column);
  s += ": ";
  if (!key_path.empty()) s += key_path + ": ";
  return s + message;
}

}  // namespace

ConfigError::ConfigError(std::string file_, int line_, int column_, std::string key_path_, std::string message_)
    : std::runtime_error(format_error(file_, line_, column_, key_path_, message_)),
      file(std::move(file_)),
      line(line_),
      column(column_),
      key_path(std::move(key_path_)),
      message(std::move(message_)) {}

Config parse_config(const std::string& yaml_text, const std::string& name_for_errors) {
  YAML::Node root;
  try {
    root = YAML::Load(yaml_text);
  } catch (const YAML::Exception& e) {
    const int line = e.mark.is_null() ? 0 : e.mark.line + 1;
    const int column = e.mark.is_null() ? 0 : e.mark.column + 1;
    throw ConfigError(name_for_errors, line, column, "", "YAML syntax error: " + e.msg);
  }
  std::map<std::string, YAML::Mark> marks;
  const detail::Ctx ctx{name_for_errors, true, &marks};
  if (!root.IsDefined() || root.IsNull())
    throw ConfigError(name_for_errors, 0, 0, "", "the file is empty (expected a mapping with at least 'buses')");
  Config cfg;
  cfg.source_path = name_for_errors;
  detail::decode_mapping(root, "", detail::top_keys(), cfg, ctx);
  if (!root["buses"]) detail::fail(ctx, root.Mark(), "buses", "missing required key 'buses' (expected at least one bus)");
  detail::resolve_and_validate(cfg, ctx, false);
  return cfg;
}

Config load_config(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw ConfigError(path, 0, 0, "", std::string("cannot open the file: ") + std::strerror(errno));
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) throw ConfigError(path, 0, 0, "", std::string("cannot read the file: ") + std::strerror(errno));
  return parse_config(text.str(), path);
}

namespace {

std::vector<std::string> split_dots(const std::string& s) {
  std::vector<std::string> out;
  std::size_t start = 0;
  for (;;) {
    const auto dot = s.find('.', start);
    out.push_back(s.substr(start, dot == std::string::npos ? std::string::npos : dot - start));
    if (dot == std::string::npos) return out;
    start = dot + 1;
  }
}

/// Sets one key of an entry/section through its table; `locked` names keys that identify the entry.
template <class T>
void set_key(T& obj, const std::vector<detail::Key<T>>& keys, const std::string& key, const YAML::Node& value,
             const detail::Ctx& c, const std::string& path, const char* locked = nullptr) {
  if (locked != nullptr && key == locked)
    detail::fail(c, value.Mark(), path, std::string("'") + locked + "' identifies the entry and cannot be overridden");
  const detail::Key<T>* k = detail::find_key(keys, key);
  if (k == nullptr) detail::fail(c, value.Mark(), path, detail::unknown_key_message("key", key, detail::names_of(keys)));
  k->set(obj, value, c, path);
}

template <class T, class Name>
T& find_entry(std::vector<T>& entries, const std::string& name, Name name_of, const char* what, const detail::Ctx& c,
              const std::string& path) {
  std::vector<std::string> names;
  for (auto& e : entries) {
    if (name_of(e) == name) return e;
    names.push_back(name_of(e));
  }
  detail::fail(c, YAML::Mark::null_mark(), path, detail::unknown_key_message(what, name, names));
}

void apply_one(Config& cfg, const std::string& key_path, const YAML::Node& value, const detail::Ctx& c) {
  using namespace detail;
  const std::vector<std::string> seg = split_dots(key_path);
  const std::string& top = seg[0];
  const auto bad_shape = [&](const char* shape) {
    fail(c, YAML::Mark::null_mark(), key_path, std::string("cannot override this path (expected ") + shape + ")");
  };
  if (top == "log_level" || top == "state_dir") {
    if (seg.size() != 1) bad_shape(top.c_str());
    set_key(cfg, top_keys(), top, value, c, key_path);
  } else if (top == "control_loop") {
    if (seg.size() != 2) bad_shape("control_loop.KEY");
    set_key(cfg.loop, loop_keys(), seg[1], value, c, key_path);
  } else if (top == "api") {
    if (seg.size() != 2) bad_shape("api.KEY");
    set_key(cfg.api, api_keys(), seg[1], value, c, key_path);
  } else if (top == "metrics") {
    if (seg.size() != 2) bad_shape("metrics.KEY");
    set_key(cfg.metrics, metrics_keys(), seg[1], value, c, key_path);
  } else if (top == "discovery") {
    if (seg.size() != 2) bad_shape("discovery.KEY");
    set_key(cfg.discovery, discovery_keys(), seg[1], value, c, key_path);
  } else if (top == "buses") {
    if (seg.size() != 3) bad_shape("buses.BUS_NAME.KEY");
    auto& b = find_entry(cfg.buses, seg[1], [](const BusConfig& x) { return x.name; }, "bus", c, key_path);
    set_key(b, bus_keys(), seg[2], value, c, key_path, "name");
  } else if (top == "controllers") {
    auto& ctl = find_entry(cfg.controllers, seg.size() > 1 ? seg[1] : std::string(),
                           [](const ControllerConfig& x) { return x.name; }, "controller", c, key_path);
    if (seg.size() == 4 && seg[2] == "channel_bus") {
      YAML::Node one(YAML::NodeType::Map);
      one[seg[3]] = value;
      set_key(ctl, controller_keys(), "channel_bus", one, c, key_path);
    } else {
      if (seg.size() != 3) bad_shape("controllers.NAME.KEY or controllers.NAME.channel_bus.N");
      set_key(ctl, controller_keys(), seg[2], value, c, key_path, "name");
    }
  } else if (top == "equalization") {
    if (seg.size() != 3) bad_shape("equalization.CONTROLLER/N.KEY");
    auto& buf = find_entry(cfg.buffers, seg[1], [](const BufferConfig& x) { return x.channel; }, "equalization channel",
                           c, key_path);
    set_key(buf, buffer_keys(), seg[2], value, c, key_path, "channel");
  } else if (top == "can_maps") {
    fail(c, YAML::Mark::null_mark(), key_path, "CAN signal maps cannot be overridden on the command line (edit the file)");
  } else if (top == "maps") {
    fail(c, YAML::Mark::null_mark(), key_path, "register maps cannot be overridden on the command line (edit the file)");
  } else {
    fail(c, YAML::Mark::null_mark(), key_path, unknown_key_message("key", top, names_of(top_keys())));
  }
}

}  // namespace

void apply_overrides(Config& cfg, const std::vector<std::string>& overrides) {
  for (const std::string& ov : overrides) {
    const detail::Ctx ctx{"--set " + ov, false, nullptr};
    const auto eq = ov.find('=');
    if (eq == std::string::npos || eq == 0)
      throw ConfigError(ctx.file, 0, 0, "", "expected KEY.PATH=VALUE, e.g. buses.main.tau_s=12");
    const std::string key_path = ov.substr(0, eq);
    YAML::Node value;
    try {
      value = YAML::Load(ov.substr(eq + 1));
    } catch (const YAML::Exception& e) {
      throw ConfigError(ctx.file, 0, 0, key_path, "cannot read the value: " + e.msg);
    }
    apply_one(cfg, key_path, value, ctx);
    detail::resolve_and_validate(cfg, ctx, true);
  }
}

std::vector<std::string> accepted_key_paths() {
  using namespace detail;
  std::vector<std::string> out;
  auto add_all = [&out](const std::string& prefix, const std::vector<std::string>& names) {
    for (const auto& n : names) out.push_back(prefix + n);
  };
  add_all("", names_of(top_keys()));
  add_all("control_loop.", names_of(loop_keys()));
  add_all("api.", names_of(api_keys()));
  add_all("metrics.", names_of(metrics_keys()));
  add_all("discovery.", names_of(discovery_keys()));
  add_all("buses[].", names_of(bus_keys()));
  add_all("controllers[].", names_of(controller_keys()));
  add_all("equalization[].", names_of(buffer_keys()));
  out.emplace_back("maps.*");
  add_all("maps.*.", names_of(map_keys()));
  // Every register field takes the same keys; they are documented once, so "FIELD" stands for any.
  add_all("maps.*.FIELD.", names_of(field_keys()));
  add_all("maps.*.range.", names_of(range_keys()));
  out.emplace_back("can_maps.*");
  add_all("can_maps.*.", names_of(can_map_keys()));
  add_all("can_maps.*.frames[].", names_of(can_frame_keys()));
  add_all("can_maps.*.frames[].signals[].", names_of(can_signal_keys()));
  return out;
}

}  // namespace eqd::config
