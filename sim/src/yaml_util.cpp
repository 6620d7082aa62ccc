#include "yaml_util.hpp"

#include <cmath>
#include <filesystem>

namespace eqd::sim::detail {

void YamlCtx::fail(const YAML::Node& at, const std::string& path, const std::string& msg) const {
  const YAML::Mark m = at.Mark();
  const int line = m.line >= 0 ? m.line + 1 : 0;
  const int col = m.column >= 0 ? m.column + 1 : 0;
  throw InputError(file, line, col, path, msg);
}

void YamlCtx::check_keys(const YAML::Node& map, const std::string& path,
                         std::initializer_list<const char*> allowed) const {
  require_map(map, path);
  for (const auto& kv : map) {
    const std::string k = kv.first.as<std::string>();
    bool ok = false;
    for (const char* a : allowed) ok = ok || k == a;
    if (!ok) {
      std::string list;
      for (const char* a : allowed) list += (list.empty() ? "" : ", ") + std::string(a);
      fail(kv.first, path.empty() ? k : path + "." + k, "unknown key '" + k + "' (expected " + list + ")");
    }
  }
}

void YamlCtx::require_map(const YAML::Node& n, const std::string& path) const {
  if (!n.IsMap()) fail(n, path, "expected a mapping");
}

void YamlCtx::require_seq(const YAML::Node& n, const std::string& path) const {
  if (!n.IsSequence()) fail(n, path, "expected a list");
}

double YamlCtx::num(const YAML::Node& n, const std::string& path) const {
  if (!n.IsScalar()) fail(n, path, "expected a number");
  double v = 0.0;
  if (!YAML::convert<double>::decode(n, v) || !std::isfinite(v))
    fail(n, path, "expected a number, got '" + n.Scalar() + "'");
  return v;
}

double YamlCtx::num(const YAML::Node& map, const char* key, const std::string& path, double def, double lo,
                    double hi) const {
  const YAML::Node n = map[key];
  if (!n) return def;
  const std::string p = path.empty() ? std::string(key) : path + "." + key;
  const double v = num(n, p);
  if (v < lo || v > hi)
    fail(n, p, "value " + n.Scalar() + " out of range [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
  return v;
}

std::int64_t YamlCtx::integer(const YAML::Node& map, const char* key, const std::string& path, std::int64_t def,
                              std::int64_t lo, std::int64_t hi) const {
  const YAML::Node n = map[key];
  if (!n) return def;
  const std::string p = path.empty() ? std::string(key) : path + "." + key;
  long long v = 0;
  if (!n.IsScalar() || !YAML::convert<long long>::decode(n, v)) fail(n, p, "expected an integer");
  if (v < lo || v > hi)
    fail(n, p, "value " + n.Scalar() + " out of range [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
  return v;
}

std::pair<double, double> YamlCtx::range(const YAML::Node& map, const char* key, const std::string& path,
                                         std::pair<double, double> def, double lo, double hi) const {
  const YAML::Node n = map[key];
  if (!n) return def;
  const std::string p = path.empty() ? std::string(key) : path + "." + key;
  if (n.IsScalar()) {
    const double v = num(map, key, path, 0.0, lo, hi);
    return {v, v};
  }
  if (!n.IsSequence() || n.size() != 2) fail(n, p, "expected a number or a list [low, high]");
  double ends[2];
  for (std::size_t i = 0; i < 2; ++i) {
    const std::string ip = p + "[" + std::to_string(i) + "]";
    ends[i] = num(n[i], ip);
    if (ends[i] < lo || ends[i] > hi)
      fail(n[i], ip,
           "value " + n[i].Scalar() + " out of range [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
  }
  if (ends[0] > ends[1]) fail(n, p, "low end " + n[0].Scalar() + " is above high end " + n[1].Scalar());
  return {ends[0], ends[1]};
}

bool YamlCtx::boolean(const YAML::Node& map, const char* key, const std::string& path, bool def) const {
  const YAML::Node n = map[key];
  if (!n) return def;
  bool v = false;
  if (!n.IsScalar() || !YAML::convert<bool>::decode(n, v))
    fail(n, path.empty() ? std::string(key) : path + "." + key, "expected true or false");
  return v;
}

std::string YamlCtx::str(const YAML::Node& map, const char* key, const std::string& path, const std::string& def,
                         bool required) const {
  const YAML::Node n = map[key];
  if (!n) {
    if (required) fail(map, path, std::string("missing key '") + key + "'");
    return def;
  }
  if (!n.IsScalar() || n.Scalar().empty())
    fail(n, path.empty() ? std::string(key) : path + "." + key, "expected a non-empty string");
  return n.Scalar();
}

std::string YamlCtx::resolve(const std::string& p) const {
  const std::filesystem::path fp(p);
  if (fp.is_absolute() || dir.empty()) return p;
  return (std::filesystem::path(dir) / fp).lexically_normal().string();
}

YAML::Node load_yaml_file(const std::string& path) {
  try {
    return YAML::LoadFile(path);
  } catch (const YAML::BadFile&) {
    throw InputError(path, 0, 0, "", "cannot open file");
  } catch (const YAML::ParserException& e) {
    throw InputError(path, e.mark.line + 1, e.mark.column + 1, "", "YAML syntax error: " + e.msg);
  }
}

}  // namespace eqd::sim::detail
