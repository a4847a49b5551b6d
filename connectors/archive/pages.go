package archive

import (
	"bufio"
	"fmt"
	"io"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/encoding/thrift"
	"github.com/parquet-go/parquet-go/format"
)

// MaxPageBytes bounds a page's compressed and uncompressed size. Eddy's
// writers produce pages of a few hundred kilobytes; other writers' rarely
// exceed a few megabytes.
const MaxPageBytes = 256 << 20

// CheckPages walks the page headers of every column chunk of f (opened
// from r, of size bytes) and rejects a file whose chunks or pages claim
// more bytes than the file holds, or pages above MaxPageBytes. parquet-go
// v0.32 allocates a page's claimed size before it reads it, so a 2 KB file
// whose header claims 2 GB would cost 2 GB; this pass costs a read of each
// header. Call it before reading rows from a file of outside origin.
func CheckPages(f *parquet.File, r io.ReaderAt, size int64) error {
	compact := thrift.CompactProtocol{}
	for g, rg := range f.Metadata().RowGroups {
		for c := range rg.Columns {
			md := &rg.Columns[c].MetaData
			start := md.DataPageOffset
			if md.DictionaryPageOffset > 0 && md.DictionaryPageOffset < start {
				start = md.DictionaryPageOffset
			}
			end := start + md.TotalCompressedSize
			if start < 0 || md.TotalCompressedSize < 0 || end > size || end < start {
				return fmt.Errorf("%w: row group %d column %d spans [%d, %d) of a %d-byte file", ErrCorrupt, g, c, start, end, size)
			}
			cr := &countingReader{r: bufio.NewReaderSize(io.NewSectionReader(r, start, end-start), 4096)}
			dec := thrift.NewDecoder(compact.NewReader(cr))
			pos := start
			for pos < end {
				var h format.PageHeader
				cr.n = 0
				if err := dec.Decode(&h); err != nil {
					return fmt.Errorf("%w: row group %d column %d: page header at %d: %v", ErrCorrupt, g, c, pos, err)
				}
				body := int64(h.CompressedPageSize)
				switch {
				case h.CompressedPageSize < 0 || h.UncompressedPageSize < 0:
					return fmt.Errorf("%w: row group %d column %d: negative page size", ErrCorrupt, g, c)
				case h.CompressedPageSize > MaxPageBytes || h.UncompressedPageSize > MaxPageBytes:
					return fmt.Errorf("%w: row group %d column %d: a page of %d bytes (%d uncompressed), over %d", ErrCorrupt, g, c, h.CompressedPageSize, h.UncompressedPageSize, MaxPageBytes)
				case pos+cr.n+body > end:
					return fmt.Errorf("%w: row group %d column %d: a page of %d bytes at %d overruns its chunk's end %d", ErrCorrupt, g, c, body, pos, end)
				}
				if _, err := cr.Discard(int(body)); err != nil {
					return fmt.Errorf("%w: row group %d column %d: %v", ErrCorrupt, g, c, err)
				}
				pos += cr.n
			}
		}
	}
	return nil
}

// countingReader counts the bytes consumed through it.
type countingReader struct {
	r *bufio.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	k, err := c.r.Read(p)
	c.n += int64(k)
	return k, err
}

func (c *countingReader) ReadByte() (byte, error) {
	b, err := c.r.ReadByte()
	if err == nil {
		c.n++
	}
	return b, err
}

func (c *countingReader) Discard(n int) (int, error) {
	k, err := c.r.Discard(n)
	c.n += int64(k)
	return k, err
}
