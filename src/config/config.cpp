/// @file config.cpp
/// Entry points: load/parse (YAML -> Config, then resolve_and_validate), --set overrides, and the
/// list of accepted key paths.

#include "eqd/config/config.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <optional>
#include <sstream>

#include <yaml-cpp/eventhandler.h>

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

namespace {

// Quoted scalars whose closing quote is missing.
//
// yaml-cpp 0.7 checks for the end of input inside a quoted scalar only right after a line's content
// (ScanScalar: "eof? if we're looking to eat something, then we throw"); when the input ends with a
// line break, that break is eaten and the scan loop `while (INPUT)` simply ends. So `host: "127.0.0.1`
// anywhere in a file that ends with a newline became a host made of the rest of the file, and the
// entries after it silently vanished. Appending a comment line without a line break puts the end of
// input right after content, where yaml-cpp does throw (EOF_IN_SCALAR); outside a quote the comment is
// harmless. A quote closed by a later, unrelated quote ("abc ... b: "") parses too: quoted values
// that run over several lines are therefore refused as well (no key of eqd needs one).
constexpr const char* kEofSentinel = "\n#";

/// True when the quoted scalar opening at text[pos] closes on the same line.
bool closes_on_its_line(const std::string& text, std::size_t pos) {
  const char q = text[pos];
  for (std::size_t i = pos + 1; i < text.size(); ++i) {
    const char ch = text[i];
    if (ch == '\n' || ch == '\r') return false;
    if (q == '"' && ch == '\\') {
      ++i;  // an escaped character, an escaped line break included (a deliberate continuation)
      continue;
    }
    if (ch == q) {
      if (q == '\'' && i + 1 < text.size() && text[i + 1] == '\'') {
        ++i;  // '' is a quote inside single quotes
        continue;
      }
      return true;
    }
  }
  return false;
}

/// 1-based line of the quote closing the scalar opened at text[pos] (0: none before the end).
int closing_line(const std::string& text, std::size_t pos, int open_line) {
  const char q = text[pos];
  int line = open_line;
  for (std::size_t i = pos + 1; i < text.size(); ++i) {
    const char ch = text[i];
    if (ch == '\n') ++line;
    if (q == '"' && ch == '\\') {
      if (i + 1 < text.size() && text[i + 1] == '\n') ++line;
      ++i;
      continue;
    }
    if (ch == q) {
      if (q == '\'' && i + 1 < text.size() && text[i + 1] == '\'') {
        ++i;
        continue;
      }
      return line;
    }
  }
  return 0;
}

struct OpenQuote {
  YAML::Mark mark;
  std::string path;  ///< key path of the value (or of the mapping, for a quoted key)
};

/// Records the first quoted scalar that does not close on its own line, with its key path, from the
/// parser's events: they arrive up to the point where a syntax error stops the parser, so the quote
/// is found even when what it swallowed breaks the YAML further down. yaml-cpp 0.7 marks a quoted
/// scalar at its opening quote and tags it "!" (non-specific).
class QuoteFinder : public YAML::EventHandler {
 public:
  explicit QuoteFinder(const std::string& text) : text_(text) {}
  std::optional<OpenQuote> found;

  void OnDocumentStart(const YAML::Mark&) override {}
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark&, YAML::anchor_t) override { (void)node_path(nullptr); }
  void OnAlias(const YAML::Mark&, YAML::anchor_t) override { (void)node_path(nullptr); }
  void OnScalar(const YAML::Mark& mark, const std::string& tag, YAML::anchor_t, const std::string& value) override {
    const std::string path = node_path(&value);
    if (found || tag != "!" || mark.is_null() || mark.pos < 0) return;
    const auto pos = static_cast<std::size_t>(mark.pos);
    if (pos >= text_.size() || (text_[pos] != '"' && text_[pos] != '\'')) return;
    if (!closes_on_its_line(text_, pos)) found = OpenQuote{mark, path.empty() ? "(top level)" : path};
  }
  void OnSequenceStart(const YAML::Mark&, const std::string&, YAML::anchor_t, YAML::EmitterStyle::value) override {
    frames_.push_back({false, true, {}, 0, node_path(nullptr)});
  }
  void OnSequenceEnd() override { frames_.pop_back(); }
  void OnMapStart(const YAML::Mark&, const std::string&, YAML::anchor_t, YAML::EmitterStyle::value) override {
    frames_.push_back({true, true, {}, 0, node_path(nullptr)});
  }
  void OnMapEnd() override { frames_.pop_back(); }

 private:
  struct Frame {
    bool map;
    bool expect_key;
    std::string key;
    std::size_t index;
    std::string path;
  };
  /// Path of the node whose event arrives now; `scalar` is its value when it is a scalar (a key's name).
  std::string node_path(const std::string* scalar) {
    if (frames_.empty()) return {};
    Frame& f = frames_.back();
    if (!f.map) return f.path + "[" + std::to_string(f.index++) + "]";
    if (f.expect_key) {
      f.expect_key = false;
      f.key = scalar != nullptr ? *scalar : std::string("?");
      return f.path;
    }
    f.expect_key = true;
    return detail::join(f.path, f.key);
  }

  const std::string& text_;
  std::vector<Frame> frames_;
};

/// The first quoted scalar of `yaml` (a variant of `text` with the same positions) that runs past its
/// line; stops quietly at a syntax error.
std::optional<OpenQuote> find_open_quote(const std::string& yaml, const std::string& text) {
  QuoteFinder finder(text);
  try {
    std::istringstream in(yaml);
    YAML::Parser parser(in);
    while (parser.HandleNextDocument(finder)) {}
  } catch (const YAML::Exception&) {}
  return finder.found;
}

std::string quote_name(char q) { return q == '"' ? "\"" : "'"; }

[[noreturn]] void unterminated(const std::string& file, const std::string& text, const OpenQuote& o) {
  const char q = text[static_cast<std::size_t>(o.mark.pos)];
  throw ConfigError(file, o.mark.line + 1, o.mark.column + 1, o.path,
                    "the quoted text opened here has no closing " + quote_name(q) +
                        " before the end of the file (add the missing " + quote_name(q) +
                        "; as it is, the rest of the file would be this value)");
}

// YAML allows tab, line feed and carriage return among the C0 controls, and no DEL: anything else
// is a binary file or a wrong path, and would otherwise end up in an error message.
void check_text(const std::string& text, const std::string& file) {
  if (text.size() > kMaxConfigBytes)
    throw ConfigError(file, 0, 0, "",
                      "the text is " + std::to_string(text.size()) + " bytes (a configuration may have at most " +
                          std::to_string(kMaxConfigBytes) + " bytes, 4 MiB)");
  int line = 1, column = 1;
  for (const char c : text) {
    const auto u = static_cast<unsigned char>(c);
    if ((u < 0x20 && c != '\t' && c != '\n' && c != '\r') || u == 0x7F) {
      char hex[8];
      std::snprintf(hex, sizeof hex, "0x%02X", u);
      throw ConfigError(
          file, line, column, "",
          std::string("control character ") + hex + " (a configuration is YAML text; is this the right file?)");
    }
    if (c == '\n') {
      ++line;
      column = 1;
    } else {
      ++column;
    }
  }
}

[[noreturn]] void runs_on(const std::string& file, const std::string& text, const OpenQuote& o,
                          const std::string& then) {
  const char q = text[static_cast<std::size_t>(o.mark.pos)];
  const int to = closing_line(text, static_cast<std::size_t>(o.mark.pos), o.mark.line + 1);
  throw ConfigError(file, o.mark.line + 1, o.mark.column + 1, o.path,
                    "the quoted text opened here runs on to line " + std::to_string(to) + " (is its closing " +
                        quote_name(q) + " missing? quoted values must fit on one line)" + then);
}

YAML::Node load_yaml(const std::string& text, const std::string& file) {
  const std::string guarded = text + kEofSentinel;
  YAML::Node root;
  try {
    root = YAML::Load(guarded);
  } catch (const YAML::ParserException& e) {
    if (e.msg == YAML::ErrorMsg::EOF_IN_SCALAR) {
      // Only a quoted scalar must find its end. Without the sentinel (and with a final line break)
      // yaml-cpp accepts the text, quote and all, and reports where the quote opened.
      if (const auto open = find_open_quote(text + "\n", text)) unterminated(file, text, *open);
      const int line = e.mark.is_null() ? 0 : e.mark.line + 1;
      throw ConfigError(file, line, line > 0 ? e.mark.column + 1 : 0, "",
                        "a quoted text has no closing quote before the end of the file");
    }
    const int line = e.mark.is_null() ? 0 : e.mark.line + 1;
    const int column = e.mark.is_null() ? 0 : e.mark.column + 1;
    // A quote closed by a later one usually breaks the YAML after it: the quote is the cause.
    if (const auto open = find_open_quote(guarded, text); open && open->mark.pos <= e.mark.pos)
      runs_on(file, text, *open,
              "; the YAML then fails at line " + std::to_string(line) + ", column " + std::to_string(column) + ": " +
                  e.msg);
    throw ConfigError(file, line, column, "", "YAML syntax error: " + e.msg);
  } catch (const YAML::Exception& e) {
    const int line = e.mark.is_null() ? 0 : e.mark.line + 1;
    const int column = e.mark.is_null() ? 0 : e.mark.column + 1;
    throw ConfigError(file, line, column, "", "YAML syntax error: " + e.msg);
  }
  if (const auto open = find_open_quote(guarded, text)) runs_on(file, text, *open, "");
  return root;
}

}  // namespace

Config parse_config(const std::string& yaml_text, const std::string& name_for_errors) {
  check_text(yaml_text, name_for_errors);
  const YAML::Node root = load_yaml(yaml_text, name_for_errors);
  std::map<std::string, YAML::Mark> marks;
  const detail::Ctx ctx{name_for_errors, true, &marks};
  if (!root.IsDefined() || root.IsNull())
    throw ConfigError(name_for_errors, 0, 0, "", "the file is empty (expected a mapping with at least 'buses')");
  Config cfg;
  cfg.source_path = name_for_errors;
  detail::decode_mapping(root, "", detail::top_keys(), cfg, ctx);
  if (!root["buses"])
    detail::fail(ctx, root.Mark(), "buses", "missing required key 'buses' (expected at least one bus)");
  detail::resolve_and_validate(cfg, ctx, false);
  return cfg;
}

namespace {

const char* file_kind(mode_t mode) {
  if (S_ISDIR(mode)) return "a directory";
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  if (S_ISFIFO(mode)) return "a FIFO";
  if (S_ISSOCK(mode)) return "a socket";
  return "not a regular file";
}

std::string size_error(std::uint64_t bytes) {
  return "the file is " + std::to_string(bytes) + " bytes (a configuration may have at most " +
         std::to_string(kMaxConfigBytes) + " bytes, 4 MiB; is this the right file?)";
}

}  // namespace

eqd::io::SettingsBox transport_defaults(std::string_view transport) {
  const eqd::io::Transport* t = eqd::io::find_transport(transport);
  return t != nullptr ? eqd::io::SettingsBox(t->defaults()) : eqd::io::SettingsBox();
}

Config load_config(const std::string& path) {
  // O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer; fstat then refuses it.
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
  if (fd < 0) throw ConfigError(path, 0, 0, "", std::string("cannot open the file: ") + std::strerror(errno));
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  struct stat st {};
  if (::fstat(fd, &st) != 0)
    throw ConfigError(path, 0, 0, "", std::string("cannot read the file: ") + std::strerror(errno));
  if (!S_ISREG(st.st_mode))
    throw ConfigError(path, 0, 0, "",
                      std::string("is ") + file_kind(st.st_mode) + ", not a regular file (expected a YAML file)");
  if (static_cast<std::uint64_t>(st.st_size) > kMaxConfigBytes)
    throw ConfigError(path, 0, 0, "", size_error(st.st_size));
  // Read at most one byte past the bound: the file may grow between fstat and read.
  std::string text;
  text.resize(static_cast<std::size_t>(st.st_size) + 1);
  std::size_t got = 0;
  for (;;) {
    if (got == text.size()) {
      if (text.size() > kMaxConfigBytes) throw ConfigError(path, 0, 0, "", size_error(text.size()));
      text.resize(std::min(text.size() * 2, kMaxConfigBytes + 1));
    }
    const ssize_t n = ::read(fd, text.data() + got, text.size() - got);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw ConfigError(path, 0, 0, "", std::string("cannot read the file: ") + std::strerror(errno));
    if (n == 0) break;
    got += static_cast<std::size_t>(n);
  }
  text.resize(got);
  return parse_config(text, path);
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
  if (k == nullptr)
    detail::fail(c, value.Mark(), path, detail::unknown_key_message("key", key, detail::names_of(keys)));
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
  } else if (top == "history") {
    if (seg.size() != 2) bad_shape("history.KEY");
    set_key(cfg.history, history_keys(), seg[1], value, c, key_path);
  } else if (top == "buses") {
    if (seg.size() == 5 && seg[2] == "meter" && seg[3] == "power") {
      auto& b = find_entry(
          cfg.buses, seg[1], [](const BusConfig& x) { return x.name; }, "bus", c, key_path);
      if (!b.meter || !b.meter->power)
        fail(c, YAML::Mark::null_mark(), key_path,
             "bus '" + seg[1] + "' has no meter power register to override (configure it in the file)");
      set_key(*b.meter->power, field_keys(), seg[4], value, c, key_path);
      return;
    }
    if (seg.size() == 4 && seg[2] == "meter") {
      auto& b = find_entry(
          cfg.buses, seg[1], [](const BusConfig& x) { return x.name; }, "bus", c, key_path);
      if (!b.meter)
        fail(c, YAML::Mark::null_mark(), key_path, "bus '" + seg[1] + "' has no meter (configure it in the file)");
      if (seg[3] == "power")
        fail(c, YAML::Mark::null_mark(), key_path, "set one key of the power register: buses.BUS.meter.power.KEY");
      set_key(*b.meter, meter_keys(), seg[3], value, c, key_path, "transport");
      if (const auto [key, why] = meter_problem(*b.meter); !key.empty())
        fail(c, YAML::Mark::null_mark(), key_path, why);
      return;
    }
    if (seg.size() != 3) bad_shape("buses.BUS_NAME.KEY or buses.BUS_NAME.meter.KEY");
    auto& b = find_entry(
        cfg.buses, seg[1], [](const BusConfig& x) { return x.name; }, "bus", c, key_path);
    set_key(b, bus_keys(), seg[2], value, c, key_path, "name");
  } else if (top == "controllers") {
    auto& ctl = find_entry(
        cfg.controllers, seg.size() > 1 ? seg[1] : std::string(), [](const ControllerConfig& x) { return x.name; },
        "controller", c, key_path);
    if (seg.size() == 4 && seg[2] == "channel_bus") {
      YAML::Node one(YAML::NodeType::Map);
      one[seg[3]] = value;
      set_key(ctl, controller_keys(ctl), "channel_bus", one, c, key_path);
    } else {
      if (seg.size() != 3) bad_shape("controllers.NAME.KEY or controllers.NAME.channel_bus.N");
      set_key(ctl, controller_keys(ctl), seg[2], value, c, key_path, "name");
    }
  } else if (top == "equalization") {
    if (seg.size() != 3) bad_shape("equalization.CONTROLLER/N.KEY");
    auto& buf = find_entry(
        cfg.buffers, seg[1], [](const BufferConfig& x) { return x.channel; }, "equalization channel", c, key_path);
    set_key(buf, buffer_keys(), seg[2], value, c, key_path, "channel");
  } else if (top == "can_maps") {
    fail(c, YAML::Mark::null_mark(), key_path,
         "CAN signal maps cannot be overridden on the command line (edit the file)");
  } else if (top == "maps") {
    fail(c, YAML::Mark::null_mark(), key_path,
         "register maps cannot be overridden on the command line (edit the file)");
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
  add_all("history.", names_of(history_keys()));
  add_all("buses[].", names_of(bus_keys()));
  add_all("buses[].schedule[].", names_of(schedule_window_keys()));
  add_all("buses[].meter.", names_of(meter_keys()));
  for (const std::string& n : names_of(field_keys()))
    if (n != "stride") out.push_back("buses[].meter.power." + n);  // a meter has no channels
  add_all("controllers[].", all_controller_key_names());
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
