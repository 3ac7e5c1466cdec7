// The program's heap on transparent huge pages (cli/huge_page_heap.h).
#include "huge_page_heap.h"

#include <gperftools/malloc_extension.h>
#include <sys/mman.h>

#include <cstdint>

namespace lutdose_cli {

namespace {

// The x86-64 and arm64 (4 KiB base pages) huge-page size: 2 MiB.
constexpr std::size_t kHugePageBytes = std::size_t{2} << 20;

std::uintptr_t round_up(std::uintptr_t x) { return (x + kHugePageBytes - 1) & ~(kHugePageBytes - 1); }

// tcmalloc's source of memory (gperftools' SysAllocator): mappings of whole 2 MiB-aligned huge
// pages, marked MADV_HUGEPAGE, so that the kernel backs them with huge pages where it can (Linux's
// transparent huge pages in mode "madvise" or "always"; in mode "never" they are ordinary pages).
// Anything it cannot serve (an alignment above 2 MiB, a failed mapping) goes to tcmalloc's own.
class HugePageAllocator : public SysAllocator {
 public:
  explicit HugePageAllocator(SysAllocator* fallback) : fallback_(fallback) {}

  void* Alloc(std::size_t size, std::size_t* actual_size, std::size_t alignment) override {
    if (alignment > kHugePageBytes || size == 0 || size > SIZE_MAX / 2) return fallback(size, actual_size, alignment);
    const std::size_t bytes = round_up(size);
    // Map one huge page more than asked for and unmap the ends outside the aligned range.
    void* raw = ::mmap(nullptr, bytes + kHugePageBytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (raw == MAP_FAILED) return fallback(size, actual_size, alignment);
    const auto start = reinterpret_cast<std::uintptr_t>(raw), aligned = round_up(start);
    const std::uintptr_t end = start + bytes + kHugePageBytes, aligned_end = aligned + bytes;
    if (aligned > start) ::munmap(raw, aligned - start);
    if (end > aligned_end) ::munmap(reinterpret_cast<void*>(aligned_end), end - aligned_end);
    ::madvise(reinterpret_cast<void*>(aligned), bytes, MADV_HUGEPAGE);  // advice: failure changes nothing
    if (actual_size) *actual_size = bytes;
    return reinterpret_cast<void*>(aligned);
  }

 private:
  void* fallback(std::size_t size, std::size_t* actual_size, std::size_t alignment) {
    return fallback_ ? fallback_->Alloc(size, actual_size, alignment) : nullptr;
  }
  SysAllocator* fallback_;
};

}  // namespace

void use_huge_page_heap() {
  MallocExtension* m = MallocExtension::instance();
  static HugePageAllocator allocator(m->GetSystemAllocator());  // lives as long as the heap
  m->SetSystemAllocator(&allocator);
}

}  // namespace lutdose_cli
