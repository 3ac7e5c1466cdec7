// Result sets (lutdose/output_dir.h): manifest, replacement of an earlier set only, refusals.
// The crash, kill, full-disk and concurrency cases are end-to-end: tests/e2e/test_output_safety.py.
#include <doctest/doctest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>

#include "../test_util.h"
#include "lutdose/error.h"
#include "lutdose/io/output_dir.h"

namespace fs = std::filesystem;
using namespace lutdose;

namespace {

using test::TempDir;

using test::read;

std::set<std::string> names(const fs::path& dir) {
  std::set<std::string> n;
  for (const auto& e : fs::directory_iterator(dir)) n.insert(e.path().filename().string());
  return n;
}

const std::vector<OutputFile> kFiles = {{"results.json", "{}\n"}, {"results.csv", "a,b\n"}, {"results.h5", "h5"}};

}  // namespace

TEST_CASE("sha256_hex: the FIPS 180-2 test vectors") {
  CHECK(sha256_hex("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  CHECK(sha256_hex("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

TEST_CASE("write_output_files: one set with its manifest, an earlier set replaced as a whole") {
  TempDir tmp;
  const auto out = tmp.path / "a" / "out";
  const std::string id1 = write_output_files(out.string(), ResultKind::run, kFiles, "9.9.9");
  CHECK(names(out) == std::set<std::string>{"manifest.json", "results.csv", "results.h5", "results.json"});
  CHECK(names(tmp.path / "a") == std::set<std::string>{"out"});  // no temporary name left
  const auto m = nlohmann::json::parse(read(out / "manifest.json"));
  CHECK(m["format"] == "lutdose-result-set");
  CHECK(m["run_id"] == id1);
  CHECK(m["lutdose_version"] == "9.9.9");
  REQUIRE(m["files"].size() == 3);
  for (size_t i = 0; i < kFiles.size(); ++i) {
    CHECK(m["files"][i]["name"] == kFiles[i].name);
    CHECK(m["files"][i]["size_bytes"] == kFiles[i].bytes.size());
    CHECK(m["files"][i]["sha256"] == sha256_hex(read(out / kFiles[i].name)));
  }
  const std::string id2 = write_output_files(out.string(), ResultKind::run, {{"results.json", "[]\n"}}, "9.9.9");
  CHECK(id2 != id1);
  CHECK(names(out) == std::set<std::string>{"manifest.json", "results.json"});
  CHECK(read(out / "results.json") == "[]\n");
  CHECK(names(tmp.path / "a") == std::set<std::string>{"out"});
}

TEST_CASE("ResultSetWriter: files written in pieces - the set and manifest of write_output_files, "
          "destroyed unpublished, it leaves the earlier set and nothing else") {
  TempDir tmp;
  const auto out = tmp.path / "a" / "out";
  {
    ResultSetWriter w(out.string(), ResultKind::run, "9.9.9");
    w.begin_file("results.json");
    w.write("{");
    w.write("}\n");
    w.begin_file("results.csv");
    w.write("a,b\n");
    w.begin_file("results.h5");
    w.write("h");
    w.write("");
    w.write("5");
    CHECK(!fs::exists(out));  // nothing published before publish()
    w.publish();
  }
  CHECK(names(out) == std::set<std::string>{"manifest.json", "results.csv", "results.h5", "results.json"});
  CHECK(names(tmp.path / "a") == std::set<std::string>{"out"});
  const auto m = nlohmann::json::parse(read(out / "manifest.json"));
  REQUIRE(m["files"].size() == 3);
  for (size_t i = 0; i < kFiles.size(); ++i) {
    CHECK(read(out / kFiles[i].name) == kFiles[i].bytes);
    CHECK(m["files"][i]["name"] == kFiles[i].name);
    CHECK(m["files"][i]["size_bytes"] == kFiles[i].bytes.size());
    CHECK(m["files"][i]["sha256"] == sha256_hex(kFiles[i].bytes));
  }
  const std::string manifest = read(out / "manifest.json");
  {
    ResultSetWriter w(out.string(), ResultKind::run, "9.9.9");  // the earlier set may be replaced
    w.begin_file("results.json");
    w.write("[]\n");
    CHECK_THROWS_AS(w.begin_file("vois.csv"), std::logic_error);  // not a run's file
  }  // destroyed unpublished
  CHECK(read(out / "manifest.json") == manifest);
  CHECK(read(out / "results.json") == "{}\n");
  CHECK(names(tmp.path / "a") == std::set<std::string>{"out"});  // its staging directory removed
  {
    ResultSetWriter w((tmp.path / "new" / "deeper" / "out").string(), ResultKind::run, "9.9.9");
  }
  CHECK(!fs::exists(tmp.path / "new"));  // the parents it created removed
}

TEST_CASE("write_output_files: a directory with other files, a file, a link are refused and unchanged") {
  TempDir tmp;
  const auto user = tmp.path / "user";
  fs::create_directory(user);
  std::ofstream(user / "results.json") << "mine";  // a result name, but no lutdose manifest
  CHECK_THROWS_AS(check_output_dir(user.string(), ResultKind::run), InputError);
  CHECK_THROWS_AS(write_output_files(user.string(), ResultKind::run, kFiles, "x"), InputError);
  CHECK(read(user / "results.json") == "mine");
  CHECK(names(user) == std::set<std::string>{"results.json"});
  fs::create_directory_symlink(user, tmp.path / "link");
  CHECK_THROWS_AS(write_output_files((tmp.path / "link").string(), ResultKind::run, kFiles, "x"), InputError);
  CHECK_THROWS_AS(check_output_dir("", ResultKind::run), InputError);
  CHECK_THROWS_AS(check_output_dir((tmp.path / "new" / "..").string(), ResultKind::run), InputError);
  CHECK(names(tmp.path) == std::set<std::string>{"link", "user"});
  CHECK(names(user) == std::set<std::string>{"results.json"});
}

// plan --out: own checksum
TEST_CASE("write_output_files: a set of another kind is refused and unchanged, one of the same kind replaced") {
  // A synth cohort (its truth.csv is the user's study data) must survive a run or an export into it.
  TempDir tmp;
  const auto cohort = tmp.path / "cohort", tables = tmp.path / "tables", runs = tmp.path / "runs";
  const std::vector<OutputFile> synth = {{"tacs.csv", "t\n"}, {"patients.csv", "p\n"}, {"truth.csv", "truth\n"},
                                         {"synth.json", "{}\n"}, {"case-P001.json", "{}\n"}};
  const std::vector<OutputFile> exported = {{"patients.csv", "p\n"}, {"vois.csv", "v\n"}};
  write_output_files(cohort.string(), ResultKind::synth, synth, "x");
  write_output_files(tables.string(), ResultKind::store_export, exported, "x");
  write_output_files(runs.string(), ResultKind::run, kFiles, "x");
  const auto cohort_before = names(cohort);
  const auto manifest_before = read(cohort / "manifest.json");
  for (const auto kind : {ResultKind::run, ResultKind::store_export}) {
    CHECK_THROWS_WITH_AS(check_output_dir(cohort.string(), kind),
                         doctest::Contains("holds a lutdose synth result set"), InputError);
    CHECK_THROWS_WITH_AS(write_output_files(cohort.string(), kind, kind == ResultKind::run ? kFiles : exported, "x"),
                         doctest::Contains("choose another directory"), InputError);
  }
  CHECK(names(cohort) == cohort_before);
  CHECK(read(cohort / "truth.csv") == "truth\n");
  CHECK(read(cohort / "manifest.json") == manifest_before);
  CHECK_THROWS_WITH_AS(check_output_dir(tables.string(), ResultKind::synth),
                       doctest::Contains("holds a lutdose export result set"), InputError);
  CHECK_THROWS_WITH_AS(check_output_dir(runs.string(), ResultKind::store_export),
                       doctest::Contains("holds a lutdose run result set"), InputError);
  CHECK_THROWS_AS(write_output_files(runs.string(), ResultKind::synth, synth, "x"), InputError);
  CHECK(names(runs) == std::set<std::string>{"manifest.json", "results.csv", "results.h5", "results.json"});
  // The same kind replaces its set as a whole; a name of another kind is a programming error.
  write_output_files(cohort.string(), ResultKind::synth, {{"synth.json", "[]\n"}}, "x");
  CHECK(names(cohort) == std::set<std::string>{"manifest.json", "synth.json"});
  write_output_files(tables.string(), ResultKind::store_export, {{"notes.csv", "n\n"}}, "x");
  CHECK(names(tables) == std::set<std::string>{"manifest.json", "notes.csv"});
  CHECK_THROWS_AS(write_output_files((tmp.path / "new").string(), ResultKind::run, {{"truth.csv", "t"}}, "x"),
                  std::logic_error);
  CHECK_FALSE(fs::exists(tmp.path / "new"));
}

TEST_CASE("a file with its own checksum recognises itself, and any edit is seen") {
  const std::string json = "{\n  \"next_cycle\": 3,\n  \"activity_MBq\": 7400.0\n}\n";
  const std::string file = with_own_checksum(json);
  CHECK(has_own_checksum(file));
  CHECK(nlohmann::json::parse(file)["next_cycle"] == 3);  // still valid JSON with the same members
  for (size_t i = 0; i < file.size(); i += 7) {  // a byte changed anywhere (every 7th position)
    std::string edited = file;
    edited[i] = edited[i] == 'x' ? 'y' : 'x';
    CAPTURE(i);
    CHECK_FALSE(has_own_checksum(edited));
  }
  CHECK_FALSE(has_own_checksum(json));
  CHECK_THROWS_AS(with_own_checksum("{}"), std::logic_error);
}

TEST_CASE("write_file_atomically swaps back a file put at the name after the check") {
  namespace fs = std::filesystem;
  const fs::path dir = fs::temp_directory_path() / ("lutdose-followup-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  const std::string path = (dir / "plan.json").string();
  { std::ofstream(path) << "someone else's file\n"; }
  int calls = 0;
  // The first check (before writing) accepts, the recheck of what the swap took out refuses: as if
  // another file had been put at the name between the two.
  auto first_only = [&](const std::string&) { return ++calls == 1; };
  CHECK_THROWS_AS(write_file_atomically(path, "new\n", first_only), InputError);
  CHECK(calls == 2);
  CHECK(read(path) == "someone else's file\n");
  int entries = 0;
  for ([[maybe_unused]] const auto& e : fs::directory_iterator(dir)) ++entries;
  CHECK(entries == 1);  // no temporary left
  fs::remove_all(dir);
}
