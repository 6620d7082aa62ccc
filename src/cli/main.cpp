// eqctl: command-line client of eqd's control API. See docs/eqctl.md.
#include <CLI/CLI.hpp>
#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <iostream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "client.hpp"
#include "eqd/control/protocol.hpp"
#include "history_commands.hpp"
#include "render.hpp"
#include "report.hpp"

namespace {

using eqd::cli::AuditArgs;
using eqd::cli::Client;
using eqd::cli::kExitOk;
using eqd::cli::kExitRefused;
using eqd::cli::kExitUnreachable;
using eqd::cli::kExitUsage;
using eqd::cli::report_error;
using eqd::cli::ReportArgs;
using eqd::cli::run_audit;
using eqd::cli::run_backup;
using eqd::cli::run_report;
using eqd::cli::UnreachableError;
using eqd::control::ApiRequest;
using eqd::control::Command;
using nlohmann::json;

constexpr const char* kDefaultSocket = "/run/eqd/eqd.sock";
constexpr int kTimeoutMs = 10000;

volatile std::sig_atomic_t g_interrupted = 0;
extern "C" void on_sigint(int) { g_interrupted = 1; }

int run_reading(Client& client, const ApiRequest& r, bool as_json, std::string (*render)(const json&)) {
  const json resp = client.call(r);
  if (!resp.value("ok", false)) return report_error(resp, as_json);
  if (as_json)
    std::cout << resp["result"].dump(2) << "\n";
  else
    std::cout << render(resp["result"]);
  return kExitOk;
}

/// The daemon's unreachability as --json prints it: an error response of the same shape as a refusal's.
void print_unreachable_json(const std::string& why) {
  std::cout << json::parse(eqd::control::error_response(0, "unreachable", why)).dump(2) << "\n";
}

/// The names of `set`'s NAME=VALUE arguments, in the order given.
std::vector<std::string> set_names(const std::vector<std::string>& args) {
  std::vector<std::string> names;
  names.reserve(args.size());
  for (const std::string& a : args) names.push_back(a.substr(0, a.find('=')));
  return names;
}

int run_change(Client& client, const ApiRequest& r, bool as_json, const std::vector<std::string>& set_args = {}) {
  const json resp = client.call(r);
  if (!resp.value("ok", false)) return report_error(resp, as_json);
  const json& res = resp["result"];
  if (as_json) {
    std::cout << res.dump(2) << "\n";
  } else {
    // assign and set say what changed in words; the others carry the daemon's sentence.
    if (r.command == Command::assign)
      std::cout << eqd::cli::describe_assign(res) << "\n";
    else if (r.command == Command::set)
      std::cout << eqd::cli::describe_set(res, set_names(set_args)) << "\n";
    else if (res.contains("message") && res["message"].is_string())
      std::cout << res["message"].get<std::string>() << "\n";
    else
      std::cout << res.dump() << "\n";
    if (res.contains("warning") && res["warning"].is_string())
      std::fprintf(stderr, "eqctl: warning: %s\n", res["warning"].get<std::string>().c_str());
  }
  return kExitOk;
}

/// Local wall-clock time "2024-05-01 12:00:03" for watch's header.
std::string now_text() {
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  localtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", &tm);
  return buf;
}

/// On a terminal, redraws one screenful in place (the header always on the top row); otherwise
/// (a pipe, a file) appends each frame, so that a log keeps them all and holds no escape codes.
int run_watch(const std::string& socket, double interval_s, const std::string& bus) {
  struct sigaction sa {};
  sa.sa_handler = on_sigint;
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  const bool tty = ::isatty(STDOUT_FILENO) == 1;
  std::unique_ptr<Client> client;
  if (tty) std::fputs("\x1b[?25l", stdout);  // hide the cursor while redrawing
  while (!g_interrupted) {
    std::string screen;
    try {
      if (!client) client = std::make_unique<Client>(socket, kTimeoutMs);
      ApiRequest st;
      st.command = Command::status;
      json s;
      try {
        s = client->call(st);
      } catch (const UnreachableError&) {
        // eqd closes a connection idle longer than api.idle_timeout_ms (a long --interval): reconnect once.
        client = std::make_unique<Client>(socket, kTimeoutMs);
        s = client->call(st);
      }
      ApiRequest ch;
      ch.command = Command::channels;
      ch.role = eqd::control::RoleFilter::eq;
      ch.bus = bus;
      const json c = client->call(ch);
      screen = s.value("ok", false) ? eqd::cli::render_status(s["result"]) : s.dump() + "\n";
      screen += "\nequalization channels:\n";
      screen += c.value("ok", false) ? eqd::cli::render_channels(c["result"]) : c.dump() + "\n";
    } catch (const UnreachableError& e) {
      client.reset();
      screen = std::string("eqd unreachable: ") + e.what() + "\nretrying...\n";
    }
    const std::string header = eqd::cli::watch_header(socket, now_text(), interval_s);
    if (tty) {
      int rows = 24, cols = 80;  // when the terminal does not say
      winsize ws{};
      if (::ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_row > 0 && ws.ws_col > 0) {
        rows = ws.ws_row;
        cols = ws.ws_col;
      }
      // At most `rows` lines and no final newline: the header never scrolls off. Home, each line
      // cleared to its end, then the rest of the screen: no blank flash between frames.
      const std::string frame = eqd::cli::fit_screen(header + "\n" + screen, rows, cols);
      std::string out = "\x1b[H";
      for (char ch : frame) out += ch == '\n' ? std::string("\x1b[K\n") : std::string(1, ch);
      out += "\x1b[K\x1b[J";
      std::fputs(out.c_str(), stdout);
    } else {
      std::fputs((header + "\n" + screen + "\n").c_str(), stdout);
    }
    std::fflush(stdout);
    // Sleep in small steps so that Ctrl-C exits promptly.
    for (double t = 0; t < interval_s && !g_interrupted; t += 0.05)
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  if (tty) std::fputs("\x1b[?25h\n", stdout);  // show the cursor again, below the last frame
  std::fflush(stdout);
  return kExitOk;
}

/// One NAME=VALUE of `eqctl set` into r.params (numbers; a choice such as mode=caps by its index) or
/// r.flags (booleans: true/false, yes/no, on/off as in the configuration). False with `why` on a usage error.
bool parse_assignment(const std::string& arg, ApiRequest& r, std::string& why) {
  const auto eq = arg.find('=');
  if (eq == std::string::npos || eq == 0) {
    why = "expected NAME=VALUE, got '" + arg + "'";
    return false;
  }
  const std::string key = arg.substr(0, eq);
  const std::string v = arg.substr(eq + 1);
  const eqd::core::RuntimeParam* param = eqd::core::find_runtime_param(key);
  if (param == nullptr) {
    why = "'" + key + "' cannot be set (settable: " + eqd::control::settable_list() + ")";
    return false;
  }
  if (param->choice != nullptr) {
    const int i = eqd::core::find_runtime_choice(*param, v);
    if (i < 0) {
      why = key + ": '" + v + "' is not one of: " + eqd::control::choice_names(*param);
      return false;
    }
    r.params[key] = i;
    return true;
  }
  if (param->flag) {
    std::string l = v;
    for (char& ch : l) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    if (l == "true" || l == "yes" || l == "on")
      r.flags[key] = true;
    else if (l == "false" || l == "no" || l == "off")
      r.flags[key] = false;
    else {
      why = key + ": '" + v + "' is not true or false (also yes/no, on/off)";
      return false;
    }
    return true;
  }
  char* end = nullptr;
  errno = 0;
  const double value = std::strtod(v.c_str(), &end);
  if (v.empty() || end != v.c_str() + v.size() || errno == ERANGE || !std::isfinite(value)) {
    why = key + ": '" + v + "' is not a number";
    return false;
  }
  r.params[key] = value;
  return true;
}

/// CLI11's message without a leading "eqctl: " (some carry the program's name, most do not).
std::string cli11_message(const CLI::Error& e) {
  std::string m = e.what();
  if (m.rfind("eqctl: ", 0) == 0) m.erase(0, 7);
  return m;
}

/// Names of `app`'s subcommands: "status, channels, ...".
std::string subcommand_list(CLI::App& app) {
  std::string out;
  for (const CLI::App* sub : app.get_subcommands([](const CLI::App*) { return true; }))
    out += (out.empty() ? "" : ", ") + sub->get_name();
  return out;
}

/// Prints a usage error of CLI11 with the "eqctl:" prefix (an unknown command named as such, with the
/// valid ones) and returns the exit code: 0 for --help and --version, else kExitUsage.
int report_parse_error(CLI::App& app, const CLI::ParseError& e) {
  const std::string kind = e.get_name();
  if (kind == "CallForHelp" || kind == "CallForAllHelp" || kind == "CallForVersion") {
    app.exit(e);
    return kExitOk;
  }
  // The innermost command given ("eqctl", "eqctl controllers", ...).
  CLI::App* cmd = &app;
  std::string path = "eqctl";
  while (!cmd->get_subcommands().empty()) {
    cmd = cmd->get_subcommands().front();
    path += " " + cmd->get_name();
  }
  const bool takes_command = !cmd->get_subcommands([](const CLI::App*) { return true; }).empty();
  std::string word;
  for (const std::string& r : app.remaining(true))
    if (!r.empty() && r[0] != '-') {
      word = r;
      break;
    }
  std::string message;
  if (takes_command && !word.empty())
    message = "unknown " + (cmd == &app ? std::string() : path.substr(6) + " ") + "command '" + word +
              "' (commands: " + subcommand_list(*cmd) + ")";
  else if (cmd == &app && kind == "RequiredError")
    message = "a command is required (commands: " + subcommand_list(app) + ")";
  else
    message = cli11_message(e);
  std::fprintf(stderr, "eqctl: %s\neqctl: see '%s --help'\n", message.c_str(), path.c_str());
  return kExitUsage;
}

// What eqctl's command line asks for: the global options, each subcommand and the values of its
// options. CLI11 writes into these while it parses, so they must outlive the parse (main thread only).
struct Args {
  static constexpr std::size_t kLimits = std::size(eqd::control::kLimitFields);
  std::string socket;
  bool as_json = false;
  CLI::App* status = nullptr;
  CLI::App* channels = nullptr;
  std::string ch_bus, ch_role;
  CLI::App* controllers = nullptr;
  CLI::App* adopt = nullptr;
  std::string adopt_name, adopt_bus;
  CLI::App* forget = nullptr;
  std::string forget_name;
  CLI::App* watch = nullptr;
  double interval_s = 1.0;
  std::string watch_bus;
  CLI::App* assign = nullptr;
  std::string as_channel, as_bus;
  double lim[kLimits] = {};
  CLI::Option* lim_opt[kLimits] = {};
  CLI::App* release = nullptr;
  std::string rel_channel;
  CLI::App* set = nullptr;
  std::string set_bus;
  std::vector<std::string> set_args;
  CLI::App* audit = nullptr;
  AuditArgs audit_args;
  CLI::App* report = nullptr;
  ReportArgs report_args;
  CLI::Option* capacity_opt = nullptr;
  CLI::App* backup = nullptr;
  std::string backup_file;
};

// The subcommands that read: status, channels, controllers (with adopt and forget), watch.
void add_reading_commands(CLI::App& app, Args& a) {
  a.status = app.add_subcommand("status", "per bus: net, free and equalization power, energy, counts by health");
  a.channels = app.add_subcommand("channels", "one row per channel: role, state, V, A, W, setpoint, age, window");
  a.channels->add_option("--bus", a.ch_bus, "only channels of bus B");
  a.channels->add_option("--role", a.ch_role, "eq (equalization channels) or test")
      ->check(CLI::IsMember({"eq", "test"}));
  a.controllers =
      app.add_subcommand("controllers", "endpoint, transport, source, adoption, link state, poll rate, last error");
  a.controllers->require_subcommand(0, 1);
  a.adopt =
      a.controllers->add_subcommand("adopt", "let eqd command discovered controller NAME (it is read-only until then)");
  a.adopt->add_option("name", a.adopt_name, "controller name, as `eqctl controllers` shows it")->required();
  a.adopt->add_option("--bus", a.adopt_bus,
                      "the bus its channels are on (default: the bus it announces); needed when its bus is unknown");
  a.forget =
      a.controllers->add_subcommand("forget", "remove controller NAME from the connection cache (and its adoption)");
  a.forget->add_option("name", a.forget_name, "controller name, as `eqctl controllers` shows it")->required();
  a.watch = app.add_subcommand("watch", "live view of status and equalization channels (Ctrl-C exits)");
  a.watch->add_option("-n,--interval", a.interval_s, "refresh period, s")
      ->check(CLI::Range(0.1, 3600.0))
      ->capture_default_str();
  a.watch->add_option("--bus", a.watch_bus, "only equalization channels of bus B");
}

// The subcommands that change what eqd does: assign, release, set.
void add_change_commands(CLI::App& app, Args& a) {
  a.assign = app.add_subcommand("assign", "put CONTROLLER/CHANNEL into equalization mode");
  a.assign->add_option("channel", a.as_channel, "channel name, e.g. cab1/3")->required();
  a.assign->add_option("--bus", a.as_bus, "check that the channel is on bus B");
  // One option per limit of the protocol's table (control::kLimitFields).
  for (std::size_t i = 0; i < Args::kLimits; ++i)
    a.lim_opt[i] =
        a.assign->add_option(eqd::control::kLimitFields[i].flag, a.lim[i], eqd::control::kLimitFields[i].help);
  a.assign->footer(
      "Limits not given (--efficiency too) are the channel's persisted limits (its last assignment), else its config "
      "equalization: entry; without either, --max-charge-W, --max-discharge-W, --v-min-V and --v-max-V are required "
      "(--efficiency is then 1 unless given).");

  a.release = app.add_subcommand("release", "send stop to CONTROLLER/CHANNEL: it leaves equalization mode");
  a.release->add_option("channel", a.rel_channel, "channel name, e.g. cab1/3")->required();

  a.set = app.add_subcommand("set", "change bus parameters at run time: " + eqd::control::settable_list());
  a.set->add_option("--bus", a.set_bus, "bus to change")->required();
  a.set->add_option("params", a.set_args, "NAME=VALUE, NAME one of the parameters below")->required();
  {
    // The run-time parameter table (core::kRuntimeParams) says what each is.
    std::string about = "Parameters:";
    for (const eqd::core::RuntimeParam& r : eqd::core::kRuntimeParams)
      about += std::string("\n  ") + r.name +
               (r.choice != nullptr ? " (" + eqd::control::choice_names(r) + ")"
                                    : (r.flag ? " (true/false)" : std::string(" (") + r.unit + ")")) +
               ": " + r.help;
    a.set->footer(about);
  }
}

// The subcommands of the history: audit, report, backup.
void add_history_commands(CLI::App& app, Args& a) {
  a.audit = app.add_subcommand("audit", "who changed what: the audit log of change requests, starts, stops, reloads");
  a.audit->add_option("--since", a.audit_args.since,
                      "only records since a duration ago (24h, 30m, 7d) or a UTC time (ISO-8601)");
  a.audit->add_option("--user", a.audit_args.user, "only records of user NAME");
  a.audit->add_option("--channel", a.audit_args.channel, "only records of channel X (assign, release)");
  a.audit->add_option("--limit", a.audit_args.limit, "at most N records, the newest")
      ->check(CLI::Range(1, 1000000))
      ->capture_default_str();
  a.audit->footer("Times are UTC. With --json: one JSON object per record and line, oldest first.");

  a.report = app.add_subcommand(
      "report", "grid energy saved by equalization per period and bus: kWh, %, peak import, buffer use, money");
  a.report->add_option("--from", a.report_args.from,
                       "start, local date or time (2026-12-01, 2026-12-01T08:00); default: midnight 7 days ago");
  a.report->add_option("--to", a.report_args.to, "end (exclusive), local date or time; default: now");
  a.report->add_option("--by", a.report_args.by, "period: hour, day, week (from Monday) or month")
      ->check(CLI::IsMember({"hour", "day", "week", "month"}))
      ->capture_default_str();
  a.report->add_option("--bus", a.report_args.bus, "only bus B");
  a.report->add_option("--tariff", a.report_args.tariff,
                       "tariff file (YAML): energy price by time of day and weekday, demand price per kW of peak");
  a.report->add_option("--format", a.report_args.format, "table, csv, json or html (one self-contained file)")
      ->check(CLI::IsMember({"table", "csv", "json", "html"}))
      ->capture_default_str();
  a.capacity_opt = a.report
                       ->add_option("--buffer-capacity-kWh", a.report_args.capacity_kWh,
                                    "nominal energy of one buffer battery, kWh: gives equivalent full cycles")
                       ->check(CLI::PositiveNumber);
  a.report->footer(
      "Periods follow the local calendar of this machine (TZ), across DST changes: a day is midnight to midnight, "
      "23 or 25 hours long when the clocks change. The saving is the grid exchange (import + export) without "
      "equalization minus with it.");

  a.backup = app.add_subcommand(
      "backup", "write an archive of eqd's history database, state, connection cache and configuration to FILE");
  a.backup->add_option("FILE", a.backup_file, "the archive to write (tar; created 0600, replaced atomically)")
      ->required();
  a.backup->footer("Needs the admin role. Restore with `eqd --restore FILE` while eqd is stopped.");
}

// Runs the subcommand that was parsed into `a`; its exit status.
int dispatch(Args& a) {
  try {
    if (*a.watch) return run_watch(a.socket, a.interval_s, a.watch_bus);
    ApiRequest r;
    if (*a.set) {
      r.command = Command::set;
      r.bus = a.set_bus;
      for (const std::string& arg : a.set_args) {
        std::string why;
        if (!parse_assignment(arg, r, why)) {
          std::fprintf(stderr, "eqctl: set: %s\n", why.c_str());
          return kExitUsage;
        }
      }
    }
    Client client(a.socket, kTimeoutMs);
    if (*a.status) {
      r.command = Command::status;
      return run_reading(client, r, a.as_json, eqd::cli::render_status);
    }
    if (*a.channels) {
      r.command = Command::channels;
      r.bus = a.ch_bus;
      r.role = a.ch_role == "eq"     ? eqd::control::RoleFilter::eq
               : a.ch_role == "test" ? eqd::control::RoleFilter::test
                                     : eqd::control::RoleFilter::any;
      return run_reading(client, r, a.as_json, eqd::cli::render_channels);
    }
    if (*a.adopt) {
      r.command = Command::adopt;
      r.controller = a.adopt_name;
      r.bus = a.adopt_bus;
      return run_change(client, r, a.as_json);
    }
    if (*a.forget) {
      r.command = Command::forget;
      r.controller = a.forget_name;
      return run_change(client, r, a.as_json);
    }
    if (*a.controllers) {
      r.command = Command::controllers;
      return run_reading(client, r, a.as_json, eqd::cli::render_controllers);
    }
    if (*a.assign) {
      r.command = Command::assign;
      r.channel = a.as_channel;
      r.bus = a.as_bus;
      for (std::size_t i = 0; i < Args::kLimits; ++i)
        if (a.lim_opt[i]->count()) r.limits.*eqd::control::kLimitFields[i].arg = a.lim[i];
      return run_change(client, r, a.as_json);
    }
    if (*a.release) {
      r.command = Command::release;
      r.channel = a.rel_channel;
      return run_change(client, r, a.as_json);
    }
    if (*a.set) return run_change(client, r, a.as_json, a.set_args);
    if (*a.audit) return run_audit(client, a.audit_args, a.as_json);
    if (*a.report) {
      a.report_args.capacity_given = a.capacity_opt->count() > 0;
      return run_report(client, a.report_args, a.as_json);
    }
    if (*a.backup) return run_backup(client, a.backup_file, a.as_json);
  } catch (const UnreachableError& e) {
    if (a.as_json) print_unreachable_json(e.what());  // scripts reading stdout see why, as with a refusal
    std::fprintf(stderr, "eqctl: %s\n", e.what());
    return kExitUnreachable;
  }
  return kExitUsage;
}

int run(int argc, char** argv) {
  CLI::App app{"eqctl: inspect and command eqd, the power-equalization daemon", "eqctl"};
  app.require_subcommand(1);
  // Global options are accepted anywhere on the line: a subcommand passes what it does not know to
  // its parent (fallthrough is inherited by the subcommands added below).
  app.fallthrough();
  app.set_version_flag("--version", std::string("eqctl ") + EQD_VERSION, "print eqctl's version and exit");
  Args a;
  a.socket = std::getenv("EQD_SOCKET") ? std::getenv("EQD_SOCKET") : kDefaultSocket;
  app.add_option("--socket", a.socket, "eqd's control socket (env EQD_SOCKET)")->capture_default_str();
  app.add_flag("--json", a.as_json, "print the daemon's JSON result (for scripts)");
  add_reading_commands(app, a);
  add_change_commands(app, a);
  add_history_commands(app, a);
  app.footer(
      "--socket, --json and --version may come anywhere on the line.\n"
      "Exit codes: 0 ok, 1 refused by eqd, 2 usage error, 3 eqd unreachable.");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return report_parse_error(app, e);
  }
  return dispatch(a);
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "eqctl: %s\n", e.what());
    return kExitUsage;
  }
}
