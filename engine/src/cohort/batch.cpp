// lutdose batch (cohort/batch.h): the work list, the thread pool and the ordered commits.
#include "lutdose/cohort/batch.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <exception>
#include <map>
#include <mutex>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <unistd.h>

#include "batch_input.h"
#include "lutdose/error.h"
#include "lutdose/io/csv.h"
#include "lutdose/io/run_files.h"

namespace lutdose {

namespace batch_detail {

StoreRows guarded_rows(const std::function<std::string()>& patient, const std::string& source,
                       const std::function<StoreRows()>& run) {
  try {
    return run();
  } catch (const InputError& e) {
    return failure_rows(patient(), 0, source, e.what());
  } catch (const std::exception& e) {
    return failure_rows(patient(), 0, source, std::string("internal error: ") + e.what());
  }
}

std::string file_name_of(const std::string& path) {
  std::string p = path;
  while (p.size() > 1 && p.back() == '/') p.pop_back();
  const auto slash = p.rfind('/');
  return slash == std::string::npos ? p : p.substr(slash + 1);
}

}  // namespace batch_detail

std::pair<std::size_t, std::size_t> shard_range(std::size_t n, int index, int count) {
  if (count < 1 || index < 1 || index > count)
    throw_input_error("command line", "--shard", std::to_string(index) + "/" + std::to_string(count),
                      "I/N with 1 <= I <= N");
  // floor(i n / N) without overflow: (n / N) i + (n % N) i / N, exactly.
  const auto N = static_cast<std::size_t>(count);
  const auto at = [&](int i) { return n / N * static_cast<std::size_t>(i) + n % N * static_cast<std::size_t>(i) / N; };
  return {at(index - 1), at(index)};
}

std::pair<int, int> parse_shard(const std::string& text) {
  const auto slash = text.find('/');
  double i = 0, n = 0;
  if (slash == std::string::npos || !parse_double(text.substr(0, slash), i) || !parse_double(text.substr(slash + 1), n) ||
      i != std::floor(i) || n != std::floor(n) || !(i >= 1) || !(n >= i) || n > 1e6)
    throw_input_error("command line", "--shard", text, "I/N, whole numbers with 1 <= I <= N <= 1000000 (e.g. 2/8)");
  return {static_cast<int>(i), static_cast<int>(n)};
}

namespace {

using batch_detail::BatchInput;
using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// Counts in `p` the VOIs of `rows` fitted by a population or previous-cycles MAP and those whose
// MAP failed its criteria (their fit's note, pipeline.cpp: "population MAP not used: ..." or
// "previous-cycles kinetics: MAP not used: ...").
void count_maps(const StoreRows& rows, BatchProgress& p) {
  for (const auto& v : rows.vois)
    if (v.method == "population MAP" || v.method == "previous-cycles MAP") ++p.maps_used;
  for (const auto& n : rows.notes)
    if (n.note.rfind("population MAP not used: ", 0) == 0 ||
        n.note.rfind("previous-cycles kinetics: MAP not used: ", 0) == 0)
      ++p.maps_not_used;
}

// The store of options.store_path: a new one, or the one to resume (none yet: a new one).
std::unique_ptr<StoreWriter> open_store(const BatchOptions& o, const StoreHeader& header) {
  const bool exists = ::access(o.store_path.c_str(), F_OK) == 0 || ::access((o.store_path + ".parts").c_str(), F_OK) == 0;
  if (o.resume && exists) return StoreWriter::resume(o.store_path, header);
  return StoreWriter::create(o.store_path, header);
}

// The committed items of a resumed store (its /patients rows) must be the first items of the shard:
// returns how many; adds the patients to `seen` and counts them in `p`. InputError otherwise.
std::size_t check_resumed(BatchInput& input, const std::string& path, const StoreIndex& index, std::size_t first,
                          std::size_t last, std::set<std::string>& seen, BatchProgress& p) {
  const auto& keys = index.patient_cycles;
  std::size_t r = 0, k = 0;
  while (r < keys.size()) {
    const std::string expected = first + k < last ? input.patient_of(first + k) : std::string("(none: the shard has ") +
                                                                                  std::to_string(last - first) + " patients)";
    const bool failed = index.status[r] == "failed";
    if (keys[r].first != expected || (failed && keys[r].second != 0))
      throw InputError(path + ": the store's patient " + std::to_string(k + 1) + " is '" + keys[r].first +
                       "', but patient " + std::to_string(k + 1) + " of this shard of the cohort is '" + expected +
                       "'; expected a store made from this cohort, in this order (resume refused, nothing changed)");
    ++(failed ? p.failed : p.done);
    seen.insert(expected);
    ++r;
    while (!failed && r < keys.size() && keys[r].first == expected && index.status[r] != "failed") ++r;
    ++k;
  }
  p.resumed = p.committed = static_cast<long long>(k);
  return k;
}

// The ordered commit of the items [begin, end) computed by a pool of threads (file comment of batch.h).
class OrderedRun {
 public:
  OrderedRun(BatchInput& input, const ReferenceData& ref, const BatchOptions& o, StoreWriter& writer,
             std::set<std::string>& seen, BatchProgress& p, Clock::time_point start)
      : input_(input), ref_(ref), o_(o), writer_(writer), seen_(seen), p_(p), start_(start) {}

  void run(std::size_t begin, std::size_t end) {
    next_read_ = next_commit_ = begin;
    end_ = end;
    unsigned n = o_.threads ? o_.threads : std::max(1u, std::thread::hardware_concurrency());
    window_ = 16 * static_cast<std::size_t>(n) + 16;
    input_.seek(begin);
    std::vector<std::thread> pool;
    std::exception_ptr error;
    try {
      for (unsigned i = 0; i < n; ++i) pool.emplace_back([this] { work(); });
    } catch (const std::exception& e) {
      // Stop and join the threads already started (a joinable std::thread must not be destroyed).
      error = std::make_exception_ptr(std::runtime_error("cannot start worker thread " + std::to_string(pool.size() + 1) +
                                                         " of " + std::to_string(n) + ": " + e.what() +
                                                         "; use fewer --threads"));
    }
    try {
      if (!error) commit_loop();
    } catch (...) {
      error = std::current_exception();
    }
    stop();
    for (auto& t : pool) t.join();
    if (!error) error = worker_error_;
    if (error) std::rethrow_exception(error);
  }

 private:
  void stop() {
    std::lock_guard<std::mutex> lock(m_);
    stop_ = true;
    space_.notify_all();
    ready_.notify_all();
  }

  // A worker: claims the next item and reads it (in order, under read_m_), computes it, hands it in.
  void work() {
    try {
      for (;;) {
        std::unique_lock<std::mutex> read_lock(read_m_);
        std::size_t i;
        {
          std::unique_lock<std::mutex> lock(m_);
          space_.wait(lock, [&] { return stop_ || next_read_ >= end_ || has_space(); });
          if (stop_ || next_read_ >= end_) return;
          i = next_read_++;
        }
        auto item = input_.read();
        read_lock.unlock();
        StoreRows rows = item->compute(ref_);
        std::lock_guard<std::mutex> lock(m_);
        results_rows_ += rows.total_rows();
        results_.emplace(i, std::move(rows));
        ready_.notify_all();
      }
    } catch (...) {
      std::lock_guard<std::mutex> lock(m_);
      if (!worker_error_) worker_error_ = std::current_exception();
      stop_ = true;
      ready_.notify_all();
      space_.notify_all();
    }
  }

  // Room for another item in flight: always a few per thread; more (so that the threads go on
  // while a segment is written) while the rows waiting stay under commit_rows. Memory stays bounded.
  bool has_space() const {
    const std::size_t in_flight = next_read_ - next_commit_;
    return in_flight < window_ || (results_rows_ < o_.commit_rows && in_flight < kMaxInFlight);
  }
  static constexpr std::size_t kMaxInFlight = 100000;
  void commit_loop();
  // Moves the ready items that come next into `pending_`; false when stopped by a worker's error.
  bool take_ready(Clock::time_point deadline);
  void add_pending(StoreRows&& rows);

  BatchInput& input_;
  const ReferenceData& ref_;
  const BatchOptions& o_;
  StoreWriter& writer_;
  std::set<std::string>& seen_;
  BatchProgress& p_;
  Clock::time_point start_;
  std::mutex m_, read_m_;
  std::condition_variable space_, ready_;
  std::map<std::size_t, StoreRows> results_;
  std::size_t next_read_ = 0, next_commit_ = 0, end_ = 0, window_ = 0, results_rows_ = 0;
  bool stop_ = false;
  std::exception_ptr worker_error_;
  StoreRows pending_;
  long long pending_items_ = 0;
  BatchProgress pending_counts_;
};

void OrderedRun::commit_loop() {
  auto last_commit = Clock::now();
  const auto interval = std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(o_.commit_interval_s));
  for (;;) {
    // A stop request: return at once, without a commit (a commit's fsyncs can take seconds); the
    // items computed since the last commit are computed again by a resume.
    if (o_.stop && o_.stop->load()) {
      p_.interrupted = next_commit_ < end_ || pending_items_ > 0;
      return;
    }
    // With nothing pending, wait for the next item as long as it takes (no deadline to keep), but
    // look at the stop flag every 0.1 s.
    auto deadline = pending_items_ > 0 ? last_commit + interval : Clock::now() + std::chrono::hours(1);
    if (o_.stop) deadline = std::min(deadline, Clock::now() + std::chrono::milliseconds(100));
    if (next_commit_ < end_ && !take_ready(deadline)) return;  // a worker failed
    if (o_.stop && o_.stop->load()) continue;
    const bool due = Clock::now() - last_commit >= interval || pending_.total_rows() >= o_.commit_rows ||
                     next_commit_ >= end_;
    if (pending_items_ > 0 && due) {
      writer_.commit(pending_);
      pending_.clear();
      p_.committed += pending_items_;
      p_.done += pending_counts_.done;
      p_.failed += pending_counts_.failed;
      p_.patient_cycles += pending_counts_.patient_cycles;
      p_.cycles_flagged += pending_counts_.cycles_flagged;
      p_.maps_used += pending_counts_.maps_used;
      p_.maps_not_used += pending_counts_.maps_not_used;
      pending_items_ = 0;
      pending_counts_ = BatchProgress{};
      last_commit = Clock::now();
      p_.elapsed_s = seconds_since(start_);
      if (o_.progress) o_.progress(p_);
    }
    if (next_commit_ >= end_ && pending_items_ == 0) return;
  }
}

bool OrderedRun::take_ready(Clock::time_point deadline) {
  std::unique_lock<std::mutex> lock(m_);
  ready_.wait_until(lock, deadline, [&] { return stop_ || results_.count(next_commit_) > 0; });
  if (stop_) return false;
  std::vector<StoreRows> taken;
  for (auto it = results_.find(next_commit_); it != results_.end(); it = results_.find(next_commit_)) {
    results_rows_ -= it->second.total_rows();
    taken.push_back(std::move(it->second));
    results_.erase(it);
    ++next_commit_;
  }
  space_.notify_all();
  lock.unlock();
  for (auto& rows : taken) add_pending(std::move(rows));
  return true;
}

// One item's rows into the pending segment; a patient already in the store (two case files with
// one id) becomes a failure of the later item.
void OrderedRun::add_pending(StoreRows&& rows) {
  const std::string patient = rows.patients.empty() ? std::string() : rows.patients.front().patient;
  const bool failed = rows.patients.empty() || rows.patients.front().status == "failed";
  if (!failed && !seen_.insert(patient).second) {
    const std::string source = rows.patients.front().source;
    rows = failure_rows(patient, 0, source,
                        source + ": patient " + patient + " is already in the batch (an earlier item); expected one "
                                                          "case file per patient");
  } else {
    seen_.insert(patient);
  }
  if (rows.patients.empty() || rows.patients.front().status == "failed") {
    ++pending_counts_.failed;
  } else {
    ++pending_counts_.done;
    for (const auto& row : rows.patients) {
      ++pending_counts_.patient_cycles;
      if (row.n_fits_flagged > 0) ++pending_counts_.cycles_flagged;
    }
    count_maps(rows, pending_counts_);
  }
  pending_.append(std::move(rows));
  ++pending_items_;
}

}  // namespace

BatchProgress run_batch(const BatchCohort& cohort, const ReferenceData& ref, const BatchOptions& o) {
  const auto start = Clock::now();
  BatchCohort c = cohort;
  // case files: only --population FILE (options.population_source); a compartment population's model is
  // checked here by its SHA-256, before the store is made
  read_run_files(c.options, ref);
  if (c.learn_population) {
    std::vector<std::string> notes;
    if (c.kind == BatchCohort::Kind::tac_tables) batch_detail::learn_cohort_population(c, o.threads, notes);
    else batch_detail::learn_cases_population(c, ref, o.threads, notes);
    if (o.note)
      for (const auto& n : notes) o.note(n);
  }
  auto input = c.kind == BatchCohort::Kind::case_files ? batch_detail::open_case_input(c, ref)
                                                       : batch_detail::open_tac_input(c, ref);
  const auto [first, last] = shard_range(input->size(), o.shard_index, o.shard_count);
  StoreHeader header = store_header_of(input->provenance(), "batch");
  header.cohort = input->cohort();
  header.shard = std::to_string(o.shard_index) + "/" + std::to_string(o.shard_count);
  header.cohort_patients = static_cast<long long>(last - first);
  auto writer = open_store(o, header);
  BatchProgress p;
  p.total = static_cast<long long>(last - first);
  std::set<std::string> seen;
  const std::size_t k = check_resumed(*input, o.store_path, writer->index(), first, last, seen, p);
  p.elapsed_s = seconds_since(start);
  if (o.progress) o.progress(p);
  if (!writer->index().consolidated) {
    if (first + k < last) OrderedRun(*input, ref, o, *writer, seen, p, start).run(first + k, last);
    if (!p.interrupted) writer->finish();
  }
  p.elapsed_s = seconds_since(start);
  return p;
}

}  // namespace lutdose
