// The lutdose program's heap on transparent huge pages: tcmalloc (CMakeLists.txt) takes its memory
// from the system in 2 MiB-aligned mappings advised MADV_HUGEPAGE, so that a run touches its heap
// with one page fault per 2 MiB instead of one per 4 KiB. A fault cost about 10 us of system time on
// the 2-core virtual machine of the benchmarks: `lutdose fit` of 20 000 TACs took 6 850 faults
// before, 2 380 with this, and 16 % less CPU time (README, "Speed"). Only speed changes: the kernel
// may back the memory with ordinary pages (transparent huge pages off) and nothing depends on it.
#pragma once

namespace lutdose_cli {

//! Makes tcmalloc take its memory as above; call first in main(), before the run allocates.
void use_huge_page_heap();

}  // namespace lutdose_cli
