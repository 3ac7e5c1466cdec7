// lutdose batch (cohort/batch.h): the rows of a batch are those of each patient run alone, whatever
// the thread count; shards cover the cohort once, in order; bad patients are failures.
#include <doctest/doctest.h>

#include <atomic>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lutdose/cohort/batch.h"
#include "lutdose/cohort/synth.h"
#include "lutdose/error.h"
#include "lutdose/io/case_file.h"
#include "lutdose/io/csv.h"
#include "lutdose/io/output_dir.h"
#include "lutdose/io/run_files.h"
#include "lutdose/io/store.h"
#include "lutdose/io/tac_table.h"
#include "lutdose/pipeline/pipeline.h"
#include "lutdose/pipeline/reference_data.h"

using namespace lutdose;
namespace fs = std::filesystem;

namespace {

const ReferenceData& reference() {
  static const ReferenceData ref = ReferenceData::load(LUTDOSE_TEST_DATA_DIR);
  return ref;
}

// A new temporary folder (removed by the caller's Folder).
struct Folder {
  fs::path path;
  Folder() {
    char name[] = "/tmp/lutdose-batch-test-XXXXXX";
    path = ::mkdtemp(name);
  }
  ~Folder() { fs::remove_all(path); }
  std::string operator/(const std::string& name) const { return (path / name).string(); }
};

// A seeded synthetic cohort written into `dir` (tables or case files).
void write_cohort(const Folder& dir, int patients, const std::string& format, int cycles = 1) {
  SynthOptions o;
  o.n_patients = patients;
  o.seed = 11;
  o.cycles = cycles;
  o.format = format;
  o.data_dir = LUTDOSE_TEST_DATA_DIR;
  const auto model = make_synth_model(reference(), o);
  for (const auto& f : synth_cohort_files(model, "test")) std::ofstream(dir / f.name, std::ios::binary) << f.bytes;
}

// Every row of a store, as one StoreRows.
StoreRows rows_of(const std::string& store) {
  StoreRows all;
  for_each_store_chunk(store, [&](const StoreRows& r) {
    StoreRows copy = r;
    all.append(std::move(copy));
  });
  return all;
}

// The numbers and keys of the VOI and target rows, for comparisons (NaN compares equal to NaN).
std::vector<std::string> key_numbers(const StoreRows& r) {
  std::vector<std::string> out;
  const auto num = [](double x) { return std::isnan(x) ? std::string("nan") : format_number(x); };
  for (const auto& v : r.vois)
    out.push_back(v.patient + "|" + std::to_string(v.cycle) + "|" + v.voi + "|" + v.function + "|" + num(v.tia_MBq_h) +
                  "|" + num(v.tia_u_MBq_h) + "|" + num(v.dose_Gy) + "|" + num(v.dose_u_Gy) + "|" + num(v.bed_Gy));
  for (const auto& t : r.targets)
    out.push_back(t.patient + "|" + std::to_string(t.cycle) + "|" + t.target + "|" + num(t.dose_Gy) + "|" +
                  num(t.dose_u_Gy));
  for (const auto& p : r.patients) out.push_back(p.patient + "|" + std::to_string(p.cycle) + "|" + p.status);
  return out;
}

BatchCohort tac_cohort(const Folder& dir) {
  BatchCohort c;
  c.kind = BatchCohort::Kind::tac_tables;
  c.tac_path = dir / "tacs.csv";
  c.patients_path = dir / "patients.csv";
  c.options.data_dir = LUTDOSE_TEST_DATA_DIR;
  c.options.dose = DoseOptions{};
  return c;
}

BatchProgress batch(const BatchCohort& c, const std::string& store, unsigned threads, int shard = 1, int shards = 1) {
  BatchOptions o;
  o.store_path = store;
  o.threads = threads;
  o.shard_index = shard;
  o.shard_count = shards;
  o.commit_rows = 5000;  // several segments even for a small cohort (about 180 rows per patient)
  return run_batch(c, reference(), o);
}

std::string failures_text(const StoreRows& r) {
  std::string s;
  for (const auto& f : r.failures) s += f.patient + ": " + f.error + "\n";
  return s;
}

}  // namespace

TEST_CASE("batch: shard ranges are contiguous blocks that cover the list once, in order") {
  for (std::size_t n : {0u, 1u, 7u, 200u, 1001u})
    for (int count : {1, 2, 3, 7, 16}) {
      std::size_t next = 0;
      for (int i = 1; i <= count; ++i) {
        const auto [first, last] = shard_range(n, i, count);
        CHECK(first == next);
        CHECK(last >= first);
        CHECK(last == n * static_cast<std::size_t>(i) / static_cast<std::size_t>(count));  // floor(i n / N)
        next = last;
      }
      CHECK(next == n);
    }
  CHECK_THROWS_AS(shard_range(10, 0, 3), InputError);
  CHECK_THROWS_AS(shard_range(10, 4, 3), InputError);
  CHECK(parse_shard("2/8") == std::pair<int, int>{2, 8});
  for (const char* bad : {"0/3", "4/3", "2", "a/b", "1.5/3", "-1/3", ""}) CHECK_THROWS_AS(parse_shard(bad), InputError);
}

TEST_CASE("batch: TAC tables, each patient's rows equal the run of that patient alone, with 1 and 2 threads") {
  Folder dir;
  write_cohort(dir, 200, "tables");
  const auto c = tac_cohort(dir);
  const auto p1 = batch(c, dir / "one.h5", 1);
  const auto p2 = batch(c, dir / "two.h5", 2);
  const auto one = rows_of(dir / "one.h5"), two = rows_of(dir / "two.h5");
  INFO(failures_text(one));
  CHECK(p1.done == 200);
  CHECK(p1.failed == 0);
  CHECK(p1.total == 200);
  CHECK(p2.done == 200);
  CHECK(key_numbers(one) == key_numbers(two));
  CHECK(one.candidates.size() == two.candidates.size());
  CHECK(one.budget.size() == two.budget.size());
  // Patient by patient: the whole table's series of that patient, run alone.
  const auto all = read_tac_table(c.tac_path);
  std::map<std::string, std::vector<TacSeries>> by_patient;
  for (const auto& s : all) by_patient[s.patient].push_back(s);
  StoreRows expected;
  RunOptions o = c.options;
  o.administered_MBq = 7400;  // synth's default activity, in patients.csv
  o.dose->phantom = "icrp110-am";
  for (const auto& [patient, series] : by_patient) expected.append(store_rows(run_tac_table(series, o, reference()), "", ""));
  CHECK(key_numbers(one) == key_numbers(expected));
}

TEST_CASE("batch: case files, rows equal run_case of each case alone, shards 1/3..3/3 make the one-process batch") {
  Folder dir;
  write_cohort(dir, 60, "cases", 2);
  BatchCohort c;
  c.kind = BatchCohort::Kind::case_files;
  c.cases_dir = dir.path.string();
  const auto names = batch_case_files(c.cases_dir);
  REQUIRE(names.size() == 60);  // manifest.json-like own files are not cases; truth.csv is not *.json
  const auto whole = batch(c, dir / "whole.h5", 2);
  CHECK(whole.done == 60);
  CHECK(whole.patient_cycles == 120);
  StoreRows expected;
  for (const auto& name : names) {
    const auto cf = load_case_file(dir / name);
    expected.append(store_rows(run_case(cf, LUTDOSE_TEST_DATA_DIR), name, cf.sha256));
  }
  const auto rows = rows_of(dir / "whole.h5");
  INFO(failures_text(rows));
  CHECK(key_numbers(rows) == key_numbers(expected));
  StoreRows shards;
  for (int i = 1; i <= 3; ++i) {
    const auto p = batch(c, dir / ("shard" + std::to_string(i) + ".h5"), 2, i, 3);
    CHECK(p.total == 20);
    shards.append(rows_of(dir / ("shard" + std::to_string(i) + ".h5")));
  }
  CHECK(key_numbers(shards) == key_numbers(rows));
}

TEST_CASE("batch: lutdose's own files are not case files") {
  Folder dir;
  for (const char* name : {"b.json", "a.json", "manifest.json", "synth.json", "notes.txt", "c.JSON"})
    std::ofstream(dir / name) << "{}";
  fs::create_directory(dir.path / "sub.json");
  CHECK(batch_case_files(dir.path.string()) == std::vector<std::string>{"a.json", "b.json"});
  CHECK_THROWS_AS(batch_case_files(dir / "missing"), InputError);
}

TEST_CASE("batch: a population file in the folder is no case file (issue 15)") {
  // `population learn CASES_DIR --out CASES_DIR/pop.json` put one there (0.14): batch read it as a
  // broken case (a failed patient), population learn stopped on it. Only the format decides: a
  // broken JSON file or another JSON file stays a case file (its error is given when it is run).
  Folder dir;
  std::ofstream(dir / "a.json") << "{}";
  std::ofstream(dir / "pop.json") << "{\n  \"format\": \"lutdose-population\",\n  \"format_version\": 2\n}\n";
  std::ofstream(dir / "broken.json") << "{\"format\": \"lutdose-population\"";
  std::ofstream(dir / "other.json") << "{\"format\": \"lutdose-population-x\", \"note\": \"lutdose-population\"}";
  CHECK(batch_case_files(dir.path.string()) == std::vector<std::string>{"a.json", "broken.json", "other.json"});
}

TEST_CASE("batch: a bad patient is a failure with its message, the others are done") {
  Folder dir;
  write_cohort(dir, 30, "tables");
  // Patient P00007: a negative activity in one row; P00012: an unknown phantom.
  std::ifstream tin(dir / "tacs.csv");
  std::string tacs((std::istreambuf_iterator<char>(tin)), {}), line;
  const auto at = tacs.find("P00007,1,liver,24,");
  REQUIRE(at != std::string::npos);
  const auto value = at + 18;  // the activity cell
  tacs.replace(value, tacs.find(',', value) - value, "-5");
  std::ofstream(dir / "tacs.csv", std::ios::trunc) << tacs;
  std::ifstream pin(dir / "patients.csv");
  std::string patients((std::istreambuf_iterator<char>(pin)), {});
  const auto p12 = patients.find("P00012,1,7400,icrp110-am");
  patients.replace(p12 + 14, 10, "no-phantom");
  std::ofstream(dir / "patients.csv", std::ios::trunc) << patients;
  const auto p = batch(tac_cohort(dir), dir / "s.h5", 2);
  CHECK(p.done == 28);
  CHECK(p.failed == 2);
  const auto rows = rows_of(dir / "s.h5");
  REQUIRE(rows.failures.size() == 2);
  CHECK(rows.failures[0].patient == "P00007");
  CHECK(rows.failures[0].error.find("column activity_MBq is '-5'") != std::string::npos);
  CHECK(rows.failures[1].patient == "P00012");
  // The patients file, its line (header, then one row per patient), the column and the known phantoms.
  CHECK(rows.failures[1].error.find("patients.csv:13: column phantom is 'no-phantom'") != std::string::npos);
  CHECK(rows.failures[1].error.find("icrp110-am") != std::string::npos);
}

TEST_CASE("batch: a mass_g_<VOI> column of a VOI the patient has not is a failure of the patient") {
  Folder dir;
  std::ofstream(dir / "t.csv") << "patient,voi,time_h,activity_MBq\nA,liver,4,100\nA,liver,24,80\nA,liver,96,40\n"
                                  "B,liver,4,100\nB,liver,24,80\nB,liver,96,40\n";
  // A typo in the header (livr); B's cell is empty: nothing to apply, B is done.
  std::ofstream(dir / "p.csv") << "patient,administered_MBq,phantom,mass_g_livr\nA,7000,icrp110-am,1500\n"
                                  "B,7000,icrp110-am,\n";
  BatchCohort c = tac_cohort(dir);
  c.tac_path = dir / "t.csv";
  c.patients_path = dir / "p.csv";
  const auto p = batch(c, dir / "s.h5", 1);
  CHECK(p.done == 1);
  CHECK(p.failed == 1);
  const auto rows = rows_of(dir / "s.h5");
  REQUIRE(rows.failures.size() == 1);
  CHECK(rows.failures[0].patient == "A");
  INFO(rows.failures[0].error);
  CHECK(rows.failures[0].error.find("p.csv:2: column mass_g_livr is '1500'") != std::string::npos);
  CHECK(rows.failures[0].error.find("its VOIs: liver") != std::string::npos);
}

TEST_CASE("batch: a folder without case files is a bad cohort, nothing written") {
  Folder dir;
  fs::create_directory(dir.path / "cases");
  std::ofstream(dir / "cases/manifest.json") << "{}";  // lutdose's own: not a case file
  BatchCohort c;
  c.kind = BatchCohort::Kind::case_files;
  c.cases_dir = dir / "cases";
  try {
    batch(c, dir / "s.h5", 1);
    FAIL("no error");
  } catch (const InputError& e) {
    CHECK(std::string(e.what()).find(dir / "cases") != std::string::npos);
    CHECK(std::string(e.what()).find("no case files") != std::string::npos);
  }
  CHECK(!fs::exists(dir / "s.h5"));
  CHECK(!fs::exists(dir / "s.h5.parts"));
}

TEST_CASE("batch: a patient whose rows are not contiguous is a bad cohort") {
  Folder dir;
  std::ofstream(dir / "t.csv") << "patient,voi,time_h,activity_MBq\nA,liver,1,10\nB,liver,1,10\nA,liver,2,9\n";
  std::ofstream(dir / "p.csv") << "patient,administered_MBq,phantom\nA,7400,icrp110-am\nB,7400,icrp110-am\n";
  BatchCohort c = tac_cohort(dir);
  c.tac_path = dir / "t.csv";
  c.patients_path = dir / "p.csv";
  try {
    batch(c, dir / "s.h5", 1);
    FAIL("no error");
  } catch (const InputError& e) {
    CHECK(std::string(e.what()).find("t.csv:4") != std::string::npos);
    CHECK(std::string(e.what()).find("sort the table by patient") != std::string::npos);
  }
  CHECK(!fs::exists(dir / "s.h5"));
}

TEST_CASE("batch: a batch stopped after a commit resumes to the rows of an uninterrupted one, another cohort is refused") {
  Folder dir;
  write_cohort(dir, 80, "tables");
  const auto c = tac_cohort(dir);
  batch(c, dir / "whole.h5", 2);
  BatchOptions o;
  o.store_path = dir / "resumed.h5";
  o.threads = 2;
  o.commit_rows = 300;  // a segment every 2 patients or so (about 180 rows each)
  struct Stop {};
  o.progress = [](const BatchProgress& p) {
    if (p.committed > 0) throw Stop{};  // as a kill after the first commit
  };
  CHECK_THROWS_AS(run_batch(c, reference(), o), Stop);
  o.progress = nullptr;
  o.resume = true;
  const auto p = run_batch(c, reference(), o);
  CHECK(p.resumed > 0);
  CHECK(p.resumed < 80);
  CHECK(p.committed == 80);
  CHECK(p.done == 80);
  CHECK(key_numbers(rows_of(dir / "resumed.h5")) == key_numbers(rows_of(dir / "whole.h5")));
  // Other options (another fit function): refused, the store unchanged.
  BatchCohort other = c;
  other.options.fit.forced_function = "E1";
  other.options.fit.candidates = {"E1"};
  CHECK_THROWS_AS(run_batch(other, reference(), o), InputError);
  CHECK(key_numbers(rows_of(dir / "resumed.h5")) == key_numbers(rows_of(dir / "whole.h5")));
  // Without --resume an existing store is refused.
  o.resume = false;
  CHECK_THROWS_AS(run_batch(c, reference(), o), InputError);
}

TEST_CASE("batch: a stop request ends the batch at a commit, unfinished and resumable to the rows of an uninterrupted one") {
  Folder dir;
  write_cohort(dir, 60, "tables");
  const auto c = tac_cohort(dir);
  batch(c, dir / "whole.h5", 2);
  std::atomic<bool> stop{false};
  BatchOptions o;
  o.store_path = dir / "stopped.h5";
  o.threads = 2;
  o.commit_rows = 300;  // a segment every 2 patients or so (about 180 rows each)
  o.stop = &stop;
  o.progress = [&](const BatchProgress& p) {
    if (p.committed > 0) stop = true;  // as a Ctrl-C after the first commit
  };
  const auto stopped = run_batch(c, reference(), o);
  CHECK(stopped.interrupted);
  CHECK(stopped.committed > 0);
  CHECK(stopped.committed < 60);
  // Not finished: the master over the committed segments, as after a kill (io/store.h).
  CHECK(fs::exists(dir / "stopped.h5.parts"));
  CHECK(rows_of(dir / "stopped.h5").patients.size() == static_cast<std::size_t>(stopped.committed));  // one cycle each
  stop = false;
  o.progress = nullptr;
  o.resume = true;
  const auto p = run_batch(c, reference(), o);
  CHECK_FALSE(p.interrupted);
  CHECK(p.resumed == stopped.committed);
  CHECK(p.committed == 60);
  CHECK(key_numbers(rows_of(dir / "stopped.h5")) == key_numbers(rows_of(dir / "whole.h5")));
}

TEST_CASE("CsvReader: the records of parse_csv, the file's SHA-256, raw lines, and seek") {
  Folder dir;
  // A BOM, comments, a blank line, a quoted cell over two lines, CRLF, and no final newline.
  const std::string text = "\xEF\xBB\xBFpatient,voi,note\n# comment\nA,liver,\"x, y\"\r\n\nB,\"spl\neen\",z\n# c2\nC,liver,w";
  std::ofstream(dir / "t.csv", std::ios::binary) << text;
  const auto table = parse_csv(text, dir / "t.csv");
  CsvReader reader(dir / "t.csv");
  CHECK(reader.header() == table.header);
  CHECK(reader.column("voi") == 1);
  CsvRow row;
  std::string raw;
  std::vector<CsvReader::Position> at;
  std::vector<std::string> raws;
  for (const auto& expected : table.rows) {
    at.push_back(reader.position());
    REQUIRE(reader.next(row, &raw));
    CHECK(row.line == expected.line);
    CHECK(row.cells == expected.cells);
    raws.push_back(raw);
  }
  CHECK(!reader.next(row));
  CHECK(reader.sha256() == sha256_hex(text));
  CHECK(raws[0] == "A,liver,\"x, y\"\r\n");
  CHECK(raws[1] == "B,\"spl\neen\",z\n");  // both lines of the record, not the blank line before it
  CHECK(raws[2] == "C,liver,w\n");
  reader.seek(at[1]);
  REQUIRE(reader.next(row));
  CHECK(row.line == table.rows[1].line);
  CHECK(row.cells == table.rows[1].cells);
  CHECK_THROWS_AS(reader.sha256(), std::logic_error);  // after a seek the hash is not the file's
  std::ofstream(dir / "bad.csv") << "a,b\n1,2\n3\n";
  CsvReader bad(dir / "bad.csv");
  REQUIRE(bad.next(row));
  CHECK_THROWS_WITH_AS(bad.next(row), doctest::Contains("bad.csv:3: the row has 1 cells"), InputError);
  CHECK_THROWS_AS(CsvReader(dir / "missing.csv"), InputError);
}

TEST_CASE("TacRowParser: the checks of read_tac_table, block by block") {
  const std::vector<std::string> header = {"patient", "voi", "time_h", "activity_MBq"};
  TacRowParser parser(header, "t.csv");
  CHECK(parser.patient_column() == 0);
  parser.add({2, {"A", "liver", "1", "10"}});
  parser.add({3, {"A", "liver", "2", "9"}});
  parser.add({4, {"A", "spleen", "1", "3"}});
  const auto a = parser.take();
  REQUIRE(a.size() == 2);
  CHECK(a[0].patient == "A");
  CHECK(a[0].time_h.size() == 2);
  CHECK(a[1].voi == "spleen");
  CHECK(parser.take().empty());
  parser.add({5, {"B", "liver", "1", "10"}});
  CHECK_THROWS_WITH_AS(parser.add({6, {"B", "liver", "1", "8"}}), doctest::Contains("t.csv:6: column time_h"), InputError);
  CHECK_THROWS_WITH_AS(parser.add({7, {"B", "kidneys", "1", "x"}}), doctest::Contains("t.csv:7: column activity_MBq"),
                       InputError);
  CHECK_THROWS_AS(TacRowParser({"voi", "time_h", "activity"}, "t.csv"), InputError);
  CHECK(TacRowParser({"voi", "time_h", "activity_MBq"}, "t.csv").patient_column() == -1);
}

TEST_CASE("batch: the patients table, per cycle or per patient, its masses, and patients missing from one table") {
  Folder dir;
  write_cohort(dir, 6, "tables", 2);
  const auto c = tac_cohort(dir);
  const auto p = batch(c, dir / "s.h5", 2);
  CHECK(p.done == 6);
  CHECK(p.patient_cycles == 12);
  // Without a cycle column one row serves every cycle; masses from the table fill empty TAC cells,
  // a different one is an error; a patient only in the patients table fails, as one without a row.
  std::ofstream(dir / "t.csv") << "patient,cycle,voi,time_h,activity_MBq,mass_g\n"
                                  "A,1,liver,4,100,\nA,1,liver,24,80,\nA,1,liver,96,40,\nA,2,liver,4,100,\n"
                                  "A,2,liver,24,80,\nA,2,liver,96,40,\n"
                                  "B,1,liver,4,100,1000\nB,1,liver,24,80,1000\nB,1,liver,96,40,1000\n"
                                  "D,1,liver,4,100,\nD,1,liver,24,80,\nD,1,liver,96,40,\n";
  std::ofstream(dir / "p.csv") << "patient,administered_MBq,phantom,mass_g_liver\nA,7000,icrp110-am,1500\n"
                                  "B,7000,icrp110-am,1500\nC,7000,icrp110-am,\n";
  BatchCohort t = c;
  t.tac_path = dir / "t.csv";
  t.patients_path = dir / "p.csv";
  const auto q = batch(t, dir / "t.h5", 1);
  CHECK(q.total == 4);  // A, B, D of the TAC table, then C of the patients table
  CHECK(q.done == 1);
  const auto rows = rows_of(dir / "t.h5");
  INFO(failures_text(rows));
  REQUIRE(rows.failures.size() == 3);
  CHECK(rows.failures[0].patient == "B");
  CHECK(rows.failures[0].error.find("mass_g") != std::string::npos);
  CHECK(rows.failures[1].patient == "D");
  CHECK(rows.failures[1].error.find("no row for patient D") != std::string::npos);
  CHECK(rows.failures[2].patient == "C");
  CHECK(rows.failures[2].error.find("no rows for patient C") != std::string::npos);
  REQUIRE(rows.vois.size() == 2);
  CHECK(rows.vois[0].mass_g == 1500);  // from the patients table
  CHECK(rows.vois[1].cycle == 2);
}

TEST_CASE("batch: two case files of one patient, the later one is a failure") {
  Folder dir;
  write_cohort(dir, 3, "cases");
  fs::copy_file(dir / "case-P00002.json", dir / "case-P00002-copy.json");
  BatchCohort c;
  c.kind = BatchCohort::Kind::case_files;
  c.cases_dir = dir.path.string();
  const auto p = batch(c, dir / "s.h5", 2);
  CHECK(p.total == 4);
  CHECK(p.done == 3);
  CHECK(p.failed == 1);
  const auto rows = rows_of(dir / "s.h5");
  REQUIRE(rows.failures.size() == 1);
  CHECK(rows.failures[0].patient == "P00002");
  CHECK(rows.failures[0].source == "case-P00002.json");  // sorted: "case-P00002-copy.json" comes first
  CHECK(rows.failures[0].error.find("already in the batch") != std::string::npos);
}

// Sanitizers reserve terabytes of address space: an address-space limit cannot be used under them.
#if !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
TEST_CASE("batch: a worker thread that cannot be started is an error, the started ones are joined") {
  Folder dir;
  write_cohort(dir, 3, "tables");
  reference();  // loaded before the fork
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    // The child: an address space of what it uses now + 256 MiB, so that thread stacks (8 MiB
    // each by default) run out after a few dozen of the 100000 threads asked for.
    std::ifstream status("/proc/self/status");
    std::string key;
    long long kb = -1;
    while (status >> key && key != "VmSize:") status.ignore(1 << 12, '\n');
    status >> kb;
    const rlim_t limit = static_cast<rlim_t>(kb + 256 * 1024) * 1024;
    const rlimit lim{limit, limit};
    if (kb < 0 || ::setrlimit(RLIMIT_AS, &lim) != 0) ::_exit(10);
    try {
      batch(tac_cohort(dir), dir / "s.h5", 100000);
      ::_exit(11);  // no error: every thread started
    } catch (const std::runtime_error& e) {
      ::_exit(std::string(e.what()).find("cannot start worker thread") != std::string::npos ? 0 : 12);
    } catch (...) {
      ::_exit(13);
    }
  }
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  INFO("0: the clean error; 10: no limit set; 11: no error; 12, 13: another error; a signal: abort");
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
}
#endif

TEST_CASE("administered_activities_MBq: each TAC's activity from the patients table, per cycle or per patient") {
  // population learn --patients (docs/population.md): the batch's patients table, without phantom
  Folder dir;
  std::ofstream(dir / "t.csv") << "patient,cycle,voi,time_h,activity_MBq\n"
                                  "A,1,liver,4,100\nA,1,liver,24,80\nA,2,liver,4,50\nA,2,liver,24,40\n"
                                  "B,1,liver,4,90\nB,1,liver,24,70\n";
  const auto series = read_tac_table(dir / "t.csv");
  REQUIRE(series.size() == 3);  // A cycle 1, A cycle 2, B cycle 1
  std::ofstream(dir / "cycles.csv") << "patient,cycle,administered_MBq\nA,1,7400\nA,2,3700\nB,1,5550\n";
  std::string sha;
  const auto per_cycle = administered_activities_MBq(series, dir / "cycles.csv", "t.csv", &sha);
  CHECK(per_cycle == std::vector<double>{7400, 3700, 5550});
  CHECK(sha.size() == 64);
  std::ofstream(dir / "patients.csv") << "patient,administered_MBq,phantom\nA,7000,icrp110-am\nB,6000,icrp110-am\n";
  CHECK(administered_activities_MBq(series, dir / "patients.csv", "t.csv") == std::vector<double>{7000, 7000, 6000});
  const std::string no_b = dir / "no_b.csv";
  std::ofstream(no_b) << "patient,cycle,administered_MBq\nA,1,7400\nA,2,3700\n";
  CHECK_THROWS_WITH_AS(administered_activities_MBq(series, no_b, "t.csv"),
                       doctest::Contains((no_b + ": administered_MBq of patient B, cycle 1 is 'missing'").c_str()), InputError);
  const std::string no_2 = dir / "no_2.csv";
  std::ofstream(no_2) << "patient,cycle,administered_MBq\nA,1,7400\nB,1,5550\n";
  CHECK_THROWS_WITH_AS(administered_activities_MBq(series, no_2, "t.csv"),
                       doctest::Contains("administered_MBq of patient A, cycle 2 is 'missing'"), InputError);
  const std::string empty = dir / "empty.csv";
  std::ofstream(empty) << "patient,cycle,administered_MBq\nA,1,7400\nA,2,\nB,1,5550\n";
  CHECK_THROWS_WITH_AS(administered_activities_MBq(series, empty, "t.csv"),
                       doctest::Contains((empty + ":3: administered_MBq of patient A, cycle 2 is ''").c_str()), InputError);
  const std::string twice = dir / "twice.csv";
  std::ofstream(twice) << "patient,cycle,administered_MBq\nA,1,7400\nA,1,3700\nA,2,3700\nB,1,5550\n";
  CHECK_THROWS_WITH_AS(administered_activities_MBq(series, twice, "t.csv"), doctest::Contains("cycle 1 again"),
                       InputError);
  const std::string negative = dir / "negative.csv";
  std::ofstream(negative) << "patient,administered_MBq\nA,-1\nB,5550\n";
  CHECK_THROWS_WITH_AS(administered_activities_MBq(series, negative, "t.csv"),
                       doctest::Contains("column administered_MBq is '-1'"), InputError);
}
