// The history store: opening the database (SQLite or PostgreSQL, backend.hpp), and its writer thread
// (see store.hpp).
#include "eqd/history/store.hpp"

#include <algorithm>
#include <filesystem>
#include <future>
#include <iterator>
#include <optional>
#include <system_error>

#include <spdlog/spdlog.h>

#include "eqd/daemon/logging.hpp"
#include "eqd/util/atomic_file.hpp"
#include "store_detail.hpp"

namespace eqd::history {

namespace {

using nlohmann::json;

// Problems (drops, failed writes) are logged at most this often, with their counts.
constexpr std::chrono::seconds kReportPeriod{10};
// Old rows are deleted at open and then this often.
constexpr std::chrono::hours kPrunePeriod{1};
// An unreachable PostgreSQL is tried again this often; its rows wait in the queue meanwhile.
constexpr std::chrono::seconds kRetryPeriod{2};

std::string dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

// The audit record in the journal: MESSAGE_ID and EQD_AUDIT_* fields (docs/operations.md).
void journal(const AuditRecord& r) {
  const std::string uid = r.uid < 0 ? std::string() : std::to_string(r.uid);
  const std::string pid = r.pid < 0 ? std::string() : std::to_string(r.pid);
  const std::string result = r.ok ? std::string("ok") : r.error_code;
  const std::string request = dump(r.request);
  const std::string before = r.before.is_null() ? std::string() : dump(r.before);
  const std::string after = r.after.is_null() ? std::string() : dump(r.after);
  daemon::logging::log_with(r.ok ? spdlog::level::info : spdlog::level::warn,
                            {{"MESSAGE_ID", kAuditMessageId},
                             {"EQD_AUDIT_USER", r.user},
                             {"EQD_AUDIT_UID", uid},
                             {"EQD_AUDIT_PID", pid},
                             {"EQD_AUDIT_ROLE", r.role},
                             {"EQD_AUDIT_COMMAND", r.command},
                             {"EQD_AUDIT_CHANNEL", r.channel},
                             {"EQD_AUDIT_BUS", r.bus},
                             {"EQD_AUDIT_CONTROLLER", r.controller},
                             {"EQD_AUDIT_REQUEST", request},
                             {"EQD_AUDIT_RESULT", result},
                             {"EQD_AUDIT_BEFORE", before},
                             {"EQD_AUDIT_AFTER", after}},
                            "{}", summary(r));
}

// Moves `path` and its WAL and shared-memory files aside (a stale WAL must never meet a new file).
std::string move_database_aside(const std::string& path) {
  std::string moved = util::move_aside(path, "corrupt");
  for (const char* suffix : {"-wal", "-shm"}) {
    std::error_code ec;
    if (std::filesystem::exists(path + suffix, ec)) std::filesystem::rename(path + suffix, moved + suffix, ec);
  }
  return moved;
}

}  // namespace

HistoryStore::HistoryStore(HistoryOptions opts) : opts_(std::move(opts)) { open_database(); }

HistoryStore::~HistoryStore() { stop(); }

// Where the history is, for log lines (never the URL: it may hold a password).
std::string HistoryStore::where() const { return opts_.url.empty() ? opts_.path : "in PostgreSQL (history.url)"; }

void HistoryStore::open_database() {
  db_.reset();
  if (opts_.path.empty() && opts_.url.empty()) return;
  std::string error;
  try {
    if (!opts_.url.empty()) {
      db_ = std::make_unique<Db>(open_postgres(opts_.url, opts_.instance));
    } else {
      const std::filesystem::path parent = std::filesystem::path(opts_.path).parent_path();
      std::error_code ec;
      if (!parent.empty()) std::filesystem::create_directories(parent, ec);
      try {
        db_ = std::make_unique<Db>(open_sqlite(opts_.path));
      } catch (const BackendError& e) {
        if (e.kind != BackendError::Kind::corrupt) throw;
        const std::string moved = move_database_aside(opts_.path);
        spdlog::warn("history database {} is corrupt ({}); moved it aside to {} and started a fresh one", opts_.path,
                     e.what(), moved);
        db_ = std::make_unique<Db>(open_sqlite(opts_.path));
      }
    }
  } catch (const std::exception& e) {
    db_.reset();
    error = e.what();
    const bool unreachable = dynamic_cast<const BackendError*>(&e) != nullptr &&
                             static_cast<const BackendError&>(e).kind == BackendError::Kind::unreachable;
    if (unreachable) {
      stats_->unreachable.fetch_add(1, std::memory_order_relaxed);
      last_error_ = error;
      ++errors_since_report_;
    } else {
      spdlog::error("history database {}: {}; control goes on without it (audit records still reach the log)", where(),
                    error);
    }
  }
  std::lock_guard lock(m_);
  db_error_ = error;
}

std::string HistoryStore::database_error() const {
  std::lock_guard lock(m_);
  if (opts_.path.empty() && opts_.url.empty()) return "the history database is off (history.enabled: false)";
  return db_error_;
}

void HistoryStore::start() {
  std::lock_guard lock(m_);
  if (running_ || stopping_) return;
  running_ = true;
  writer_ = std::thread([this] { run(); });
}

void HistoryStore::stop() {
  {
    std::lock_guard lock(m_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (writer_.joinable()) writer_.join();
  db_.reset();
}

bool HistoryStore::push(Job job, bool bounded) noexcept {
  try {
    {
      std::lock_guard lock(m_);
      // Jobs held back for an unreachable PostgreSQL count against the same bound: rows are lost only
      // beyond it.
      if (stopping_ || (bounded && queue_.size() + held_count_ >= opts_.queue_capacity)) {
        stats_->dropped_queue_full.fetch_add(1, std::memory_order_relaxed);
        return false;
      }
      queue_.push_back(std::move(job));
    }
    cv_.notify_one();
    return true;
  } catch (...) {  // out of memory: a lost record, counted, never an exception into the caller
    stats_->dropped_queue_full.fetch_add(1, std::memory_order_relaxed);
    return false;
  }
}

bool HistoryStore::record(AuditRecord r) noexcept {
  Job j;
  j.kind = Job::Kind::record;
  j.record = std::move(r);
  return push(std::move(j), true);
}

bool HistoryStore::query(const AuditQuery& q, std::function<void(AuditPage)> done) noexcept {
  try {
    Job j;
    j.kind = Job::Kind::query;
    j.q = q;
    j.done = std::move(done);
    return push(std::move(j), true);
  } catch (...) {
    return false;
  }
}

bool HistoryStore::report(const ReportQuery& q, std::function<void(ReportAnswer)> done) noexcept {
  try {
    Job j;
    j.kind = Job::Kind::report;
    j.report = q;
    j.report_done = std::move(done);
    return push(std::move(j), true);
  } catch (...) {
    return false;
  }
}

bool HistoryStore::record_energy(EnergyMinute m) noexcept {
  Job j;
  j.kind = Job::Kind::energy;
  j.energy = std::move(m);
  return push(std::move(j), true);
}

bool HistoryStore::flush(std::chrono::milliseconds timeout) {
  {
    std::lock_guard lock(m_);
    if (!running_) return false;
  }
  Job j;
  j.kind = Job::Kind::barrier;
  j.barrier = std::make_shared<std::promise<void>>();
  std::future<void> done = j.barrier->get_future();
  if (!push(std::move(j), false)) return false;
  return done.wait_for(timeout) == std::future_status::ready;
}

void HistoryStore::prune_now() noexcept {
  Job j;
  j.kind = Job::Kind::prune;
  (void)push(std::move(j), false);
}

void HistoryStore::run() {
  prune();  // at start, before anything queued is written
  next_prune_ = std::chrono::steady_clock::now() + kPrunePeriod;
  for (;;) {
    std::deque<Job> batch;
    bool stop = false;
    {
      std::unique_lock lock(m_);
      const auto now = std::chrono::steady_clock::now();
      if (held_.empty()) {
        cv_.wait_until(lock, std::min(next_prune_, now + kReportPeriod),
                       [this] { return stopping_ || !queue_.empty(); });
      } else {
        // PostgreSQL was unreachable: new rows wait with the held ones until the next try; audit and
        // report queries are answered at once (that there is no database), not after the rows.
        const auto is_query = [](const Job& j) { return j.kind == Job::Kind::query || j.kind == Job::Kind::report; };
        const auto has_query = [&] { return std::any_of(queue_.begin(), queue_.end(), is_query); };
        cv_.wait_until(lock, next_retry_, [&] { return stopping_ || has_query(); });
        if (!stopping_ && std::chrono::steady_clock::now() < next_retry_) {
          std::deque<Job> queries;
          for (auto it = queue_.begin(); it != queue_.end();) {
            if (is_query(*it)) {
              queries.push_back(std::move(*it));
              it = queue_.erase(it);
            } else {
              ++it;
            }
          }
          lock.unlock();
          for (const Job& q : queries) {
            if (q.kind == Job::Kind::report)
              run_report_job(q);
            else
              run_query(q);
          }
          continue;
        }
      }
      batch.swap(held_);
      held_count_ = 0;
      std::move(queue_.begin(), queue_.end(), std::back_inserter(batch));
      queue_.clear();
      stop = stopping_;
    }
    process(batch, stop);
    const auto now = std::chrono::steady_clock::now();
    if (now >= next_prune_ && held_.empty()) {
      prune();
      next_prune_ = now + kPrunePeriod;
    }
    report_problems(now);
    if (stop) {
      std::lock_guard lock(m_);
      if (queue_.empty() && held_.empty()) break;  // what was queued while stopping is written on the next round
    }
  }
  report_problems(std::chrono::steady_clock::now() + kReportPeriod);
}

void HistoryStore::hold(std::deque<Job>& batch, std::size_t from) {
  std::lock_guard lock(m_);
  for (std::size_t i = from; i < batch.size(); ++i) held_.push_back(std::move(batch[i]));
  held_count_ = held_.size();
  next_retry_ = std::chrono::steady_clock::now() + kRetryPeriod;
}

void HistoryStore::process(std::deque<Job>& batch, bool stopping) {
  // An unreachable PostgreSQL is tried again (at most every kRetryPeriod) before anything is written.
  if (!db_ && !opts_.url.empty()) open_database();
  for (std::size_t i = 0; i < batch.size();) {
    Job& j = batch[i];
    if (j.kind == Job::Kind::record) {
      std::size_t end = i;
      while (end < batch.size() && batch[end].kind == Job::Kind::record) ++end;
      if (!write_records(batch, i, end)) {
        if (!stopping) return hold(batch, i);
        stats_->write_errors.fetch_add(end - i, std::memory_order_relaxed);  // stopping: no more tries
      }
      i = end;
      continue;
    }
    if (j.kind == Job::Kind::energy) {
      if (!write_energy(j.energy)) {
        if (!stopping) return hold(batch, i);
        stats_->write_errors.fetch_add(j.energy.buses.size() + j.energy.buffers.size(), std::memory_order_relaxed);
      }
    } else if (j.kind == Job::Kind::query) {
      run_query(j);
    } else if (j.kind == Job::Kind::report) {
      run_report_job(j);
    } else if (j.kind == Job::Kind::prune) {
      prune();
    } else if (j.kind == Job::Kind::backup) {
      run_backup(j);
    } else if (j.barrier) {
      j.barrier->set_value();
    }
    ++i;
  }
}

bool HistoryStore::write_records(std::deque<Job>& batch, std::size_t begin, std::size_t end) {
  std::vector<AuditRecord> records;
  records.reserve(end - begin);
  for (std::size_t i = begin; i < end; ++i) {
    Job& j = batch[i];
    if (!j.journaled) {  // once, also when the write is retried later
      // The user name is looked up here, not by the caller: getpwuid_r may read files or ask NSS.
      if (j.record.user.empty() && j.record.uid >= 0) j.record.user = user_name(static_cast<uid_t>(j.record.uid));
      if (j.record.time_ms == 0) j.record.time_ms = now_utc_ms();
      if (opts_.journal) journal(j.record);
      j.journaled = true;
    }
    records.push_back(j.record);
  }
  if (opts_.path.empty() && opts_.url.empty()) return true;  // no database configured: the journal is the audit log
  const Outcome o = write_with(records.size(), [&] { db_->backend->write_audit(records); });
  if (o == Outcome::written) stats_->rows_written[0].fetch_add(records.size(), std::memory_order_relaxed);
  return o != Outcome::held;
}

bool HistoryStore::write_energy(const EnergyMinute& m) {
  if ((opts_.path.empty() && opts_.url.empty()) || (m.buses.empty() && m.buffers.empty())) return true;
  const Outcome o = write_with(m.buses.size() + m.buffers.size(), [&] { db_->backend->write_energy(m); });
  if (o == Outcome::written) {
    stats_->rows_written[1].fetch_add(m.buses.size(), std::memory_order_relaxed);
    stats_->rows_written[2].fetch_add(m.buffers.size(), std::memory_order_relaxed);
  }
  return o != Outcome::held;
}

HistoryStore::Outcome HistoryStore::write_with(std::size_t rows, const std::function<void()>& write) {
  if (!db_) {
    if (!opts_.url.empty()) {
      stats_->unreachable.fetch_add(1, std::memory_order_relaxed);
      return Outcome::held;  // retried
    }
    on_database_error(database_error(), false, rows);
    return Outcome::lost;
  }
  try {
    write();
    stats_->last_write_ms.store(now_utc_ms(), std::memory_order_relaxed);
    return Outcome::written;
  } catch (const BackendError& e) {
    if (e.kind == BackendError::Kind::unreachable) {
      stats_->unreachable.fetch_add(1, std::memory_order_relaxed);
      ++errors_since_report_;
      last_error_ = e.what();
      db_.reset();  // reconnect on the next try
      std::lock_guard lock(m_);
      db_error_ = e.what();
      return Outcome::held;
    }
    on_database_error(e.what(), e.kind == BackendError::Kind::corrupt, rows);
    return Outcome::lost;
  }
}

void HistoryStore::on_database_error(const std::string& what, bool corrupt, std::size_t lost) {
  stats_->write_errors.fetch_add(lost, std::memory_order_relaxed);
  ++errors_since_report_;
  last_error_ = what;
  if (corrupt) {
    spdlog::warn("history database {}: {}: the file is corrupt; replacing it", opts_.path, what);
    db_.reset();
    try {
      const std::string moved = move_database_aside(opts_.path);
      spdlog::warn("history database {}: corrupt file moved aside to {}", opts_.path, moved);
    } catch (const std::exception& e) {
      spdlog::error("history database {}: cannot move the corrupt file aside: {}", opts_.path, e.what());
      std::lock_guard lock(m_);
      db_error_ = std::string("corrupt and cannot be moved aside: ") + e.what();
      return;
    }
    open_database();
  }
}

void HistoryStore::report_problems(std::chrono::steady_clock::time_point now) {
  if (now - last_report_ < kReportPeriod) return;
  const std::uint64_t drops = stats_->dropped_queue_full.load(std::memory_order_relaxed);
  if (drops == reported_drops_ && errors_since_report_ == 0) return;
  last_report_ = now;
  if (drops != reported_drops_)
    spdlog::warn("history: {} record(s) dropped because the writer's queue was full ({} in all)",
                 drops - reported_drops_, drops);
  if (errors_since_report_ > 0)
    spdlog::error(
        "history database {}: {} failed write(s) since the last report (last: {}); {} record(s) lost in all, {} "
        "waiting for the database",
        where(), errors_since_report_, last_error_, stats_->write_errors.load(std::memory_order_relaxed), held_.size());
  reported_drops_ = drops;
  errors_since_report_ = 0;
}

void HistoryStore::prune() {
  if (!db_ || opts_.retention_days <= 0) return;
  const std::int64_t cutoff = now_utc_ms() - static_cast<std::int64_t>(opts_.retention_days) * 86'400'000;
  try {
    const std::int64_t deleted = db_->backend->prune(cutoff);
    if (deleted > 0)
      spdlog::info("history database {}: deleted {} row(s) older than {} days (history.retention_days)", where(),
                   deleted, opts_.retention_days);
  } catch (const BackendError& e) {
    if (e.kind == BackendError::Kind::unreachable) {
      db_.reset();
      return;  // tried again at the next hour
    }
    on_database_error(e.what(), e.kind == BackendError::Kind::corrupt, 0);
  }
}

void HistoryStore::run_query(const Job& job) {
  AuditPage page;
  if (!db_) {
    page.error = database_error();
    if (page.error.empty()) page.error = "the history database is not open";
  } else {
    try {
      page = db_->backend->query_audit(job.q);
    } catch (const std::exception& e) {
      page.records.clear();
      page.error = std::string("audit query failed: ") + e.what();
    }
  }
  try {
    if (job.done) job.done(std::move(page));
  } catch (const std::exception& e) {
    spdlog::error("history: an audit query's answer failed: {}", e.what());
  }
}

void HistoryStore::run_report_job(const Job& job) {
  ReportAnswer a;
  a.error = validate(job.report);
  if (a.error.empty() && !db_) {
    a.error = database_error();
    if (a.error.empty()) a.error = "the history database is not open";
  } else if (a.error.empty()) {
    try {
      a = db_->backend->report(job.report);
    } catch (const std::exception& e) {
      a.intervals.clear();
      a.error = e.what();
    }
  }
  try {
    if (job.report_done) job.report_done(std::move(a));
  } catch (const std::exception& e) {
    spdlog::error("history: a report query's answer failed: {}", e.what());
  }
}

}  // namespace eqd::history
