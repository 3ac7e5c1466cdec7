#!/usr/bin/env bash
# Installs the Debian 12 packages lutdose needs to build and test, and only those that are missing.
# Does nothing (and needs no network) when everything is already installed.
# Run as root, or as a user with sudo.   Usage: scripts/install-deps.sh [--peer] [--fuzz] [--slurm] [--plots] [--browser]
#   --peer   also the Python packages of the side-by-side peer benchmark (numpy, scipy, lmfit, pandas)
#   --fuzz   also clang and its sanitizer/libFuzzer runtimes (scripts/fuzz.sh, scripts/sanitize.sh)
#   --slurm  also Slurm and MUNGE, for the single-node Slurm test (tests/slurm, docs/cluster.md)
#   --plots  also matplotlib, for the Python example's figure (examples/python/cohort_study.py)
#   --browser  also headless Chromium, for PDF/PNG reports (lutdose report --pdf) and the browser tests
set -euo pipefail

packages=(
  build-essential cmake         # compiler, CMake, CTest
  ninja-build                   # the build tool scripts/build.sh and asan-build.sh use for new build trees
  libeigen3-dev                 # linear algebra and Levenberg-Marquardt (unsupported/NonLinearOptimization)
  libceres-dev                  # ceres/tiny_solver.h: allocation-free Levenberg-Marquardt of the TAC fits (header only)
  libtcmalloc-minimal4 libgoogle-perftools-dev  # gperftools: thread-caching malloc of the lutdose program, its heap on huge pages (cli/huge_page_heap.h)
  libboost-dev                  # Boost headers (Odeint for compartment models)
  libhdf5-dev hdf5-tools        # HDF5 results (h5dump for checks)
  libssl-dev                    # SHA-256 (OpenSSL libcrypto) of the result files in manifest.json
  doctest-dev                   # unit tests
  nlohmann-json3-dev            # JSON in and out
  libcli11-dev                  # command-line parsing
  libhowardhinnant-date-dev tzdata  # calendar dates, IANA time zones (uses the system tz database)
  libbenchmark-dev              # Google Benchmark
  python3                       # end-to-end test driver
  python3-h5py                  # end-to-end checks of results.h5 from Python
  python3-clang-14              # tests/quality/function_lengths.py: function lengths by clang's parser
  strace                        # end-to-end check that new parents of --out are flushed (fsync)
  pybind11-dev python3-dev python3-pybind11  # the Python module lutdose (docs/python.md), built by default
  python3-numpy python3-pandas  # the Python module's arrays and DataFrames
  python3-pytest                # the Python module's tests (tests/python)
)
for arg in "$@"; do
  case "$arg" in
    --peer) packages+=(python3-numpy python3-scipy python3-lmfit python3-pandas) ;;
    --fuzz) packages+=(clang libclang-rt-14-dev) ;;   # Debian 12: clang 14, libFuzzer + ASan/UBSan runtimes
    # slurm-wlm: slurmctld, slurmd and the client commands (22.05 in Debian 12); munge: munged,
    # mungekey (Slurm's authentication). The test starts its own daemons (tests/slurm/start_slurm.sh).
    --slurm) packages+=(slurm-wlm munge) ;;
    --plots) packages+=(python3-matplotlib) ;;
    # chromium: headless printing to PDF/PNG (docs/report.md); chromium-driver: WebDriver for it.
    --browser) packages+=(chromium chromium-driver) ;;
    *) echo "install-deps: unknown option $arg (known: --peer, --fuzz, --slurm, --plots, --browser)" >&2; exit 2 ;;
  esac
done

missing=()
for p in "${packages[@]}"; do
  [[ "$p" == \#* ]] && continue
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [[ ${#missing[@]} -eq 0 ]]; then
  echo "install-deps: all ${#packages[@]} packages present"
  exit 0
fi

echo "install-deps: installing ${missing[*]}"
SUDO=""
if [[ $(id -u) -ne 0 ]]; then
  command -v sudo >/dev/null || { echo "install-deps: not root and no sudo; install as root: apt-get install ${missing[*]}" >&2; exit 1; }
  SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
