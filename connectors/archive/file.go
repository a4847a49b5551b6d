package archive

import (
	"bytes"
	"cmp"
	"fmt"
	"slices"
	"strconv"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/compress/zstd"
)

// RowGroupRows bounds a row group: large enough for column pages to
// compress well and scans to stream, small enough that a reader asking
// for an hour's slice skips most of a big file by the row groups' ts
// statistics.
const RowGroupRows = 128 << 10

// rowGroupRows is RowGroupRows; tests lower it to get many row groups from
// few rows.
var rowGroupRows = RowGroupRows

// fileMeta is what an archive file's footer says about where it came from.
type fileMeta struct {
	kind      Kind
	topic     string
	partition int32
	first     int64
	last      int64
}

func (m fileMeta) options() []parquet.WriterOption {
	return []parquet.WriterOption{
		parquet.Compression(&zstd.Codec{Level: zstd.SpeedDefault}),
		parquet.MaxRowsPerRowGroup(int64(rowGroupRows)),
		// Version 1 data pages: the ones every reader (Spark, older
		// pyarrow, DuckDB) takes; parquet-go's default v2 pages have been
		// reported to trip Spark.
		parquet.DataPageVersion(1),
		parquet.DataPageStatistics(true),
		parquet.CreatedBy("eddy", "archive", strconv.Itoa(SchemaVersion)),
		parquet.KeyValueMetadata(MetaSchema, m.kind.schemaName()),
		parquet.KeyValueMetadata(MetaTopic, m.topic),
		parquet.KeyValueMetadata(MetaPartition, strconv.Itoa(int(m.partition))),
		parquet.KeyValueMetadata(MetaFirstOffset, strconv.FormatInt(m.first, 10)),
		parquet.KeyValueMetadata(MetaLastOffset, strconv.FormatInt(m.last, 10)),
	}
}

// encodeSorted sorts rows by time, then offset (so that row-group ts
// statistics are tight and ts deltas small), and encodes them.
func encodeSorted[R any](rows []R, schema *parquet.Schema, m fileMeta, key func(*R) (ts, offset int64)) ([]byte, error) {
	slices.SortFunc(rows, func(a, b R) int {
		at, ao := key(&a)
		bt, bo := key(&b)
		return cmp.Or(cmp.Compare(at, bt), cmp.Compare(ao, bo))
	})
	return encodeFile(rows, schema, m)
}

// encodeFile writes rows as one Parquet file in memory.
func encodeFile[R any](rows []R, schema *parquet.Schema, m fileMeta) ([]byte, error) {
	var buf bytes.Buffer
	w := parquet.NewGenericWriter[R](&buf, append(m.options(), schema)...)
	if _, err := w.Write(rows); err != nil {
		return nil, fmt.Errorf("archive: encode %s rows: %w", m.kind, err)
	}
	if err := w.Close(); err != nil {
		return nil, fmt.Errorf("archive: encode %s file: %w", m.kind, err)
	}
	return buf.Bytes(), nil
}
