//go:build !linux

package topk

import "unsafe"

// adviseHugePages is a no-op where transparent huge pages are not asked
// for by madvise.
func adviseHugePages(unsafe.Pointer, int) {}
