package topk

import (
	"syscall"
	"unsafe"
)

// hugePageSize is the x86-64 and arm64 transparent huge page size.
const hugePageSize = 2 << 20

// adviseHugePages asks Linux to back the 2 MiB-aligned part of a fresh,
// not yet touched allocation with transparent huge pages (needed where
// THP is in "madvise" mode, a common default). The item matrix is read at
// random rows (re-scoring) and streamed whole per search; with 4 KiB pages
// most of those reads also miss the TLB. Best effort: errors are ignored.
func adviseHugePages(p unsafe.Pointer, n int) {
	start := (uintptr(p) + hugePageSize - 1) &^ (hugePageSize - 1)
	end := (uintptr(p) + uintptr(n)) &^ (hugePageSize - 1)
	if end <= start {
		return
	}
	_, _, _ = syscall.Syscall(syscall.SYS_MADVISE, start, end-start, 14 /* MADV_HUGEPAGE */)
}
