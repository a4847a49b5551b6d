package archive

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/compress/zstd"

	"github.com/eddyrec/eddy/learner/modelrec"
)

// A model snapshot is a Parquet file of a trained model's rows: every user
// and item vector with the fields of its model-topic record
// (learner/modelrec), so that promotion can publish the rows as they are
// and an operator can audit a model with DuckDB or pyarrow:
//
//	SELECT kind, count(*), max(updates) FROM 'models/ials-….parquet' GROUP BY kind
//
// The footer carries MetaSchema = "eddy.model/1" and MetaModel, a JSON
// description of the run that produced it (range, hyperparameters, loss).
const (
	ModelSchemaVersion = 1
	// MetaModel is the footer key of the run's JSON description.
	MetaModel = "eddy.model.meta"
	// ModelsFolder is where snapshots live in an archive.
	ModelsFolder = "models/"

	modelSchemaName = "eddy.model/1"
	userKind        = "user"
	itemKind        = "item"
)

// ModelRow is one row of a model snapshot.
type ModelRow struct {
	Kind         string  `parquet:"kind,dict"` // "user" or "item"
	ID           string  `parquet:"id"`
	ModelVersion int64   `parquet:"model_version"`
	Updates      int64   `parquet:"updates"`
	Ts           int64   `parquet:"ts,timestamp(millisecond:utc)"`
	Bias         float32 `parquet:"bias"`
	Popularity   float32 `parquet:"popularity"`
	Impressions  float32 `parquet:"impressions"`
	// Vec holds the latent factors; every row of a snapshot has as many.
	Vec []float32 `parquet:"vec,list"`
	// Seen lists a user's recently consumed item ids, oldest first.
	Seen []string `parquet:"seen,list"`
}

// ModelRecord is a model row as the model topics carry it: its key and its
// modelrec Vector.
type ModelRecord struct {
	ID     string
	Vector modelrec.Vector
}

// Model is a snapshot read back.
type Model struct {
	// Meta is the JSON description written with it.
	Meta         []byte
	Users, Items []ModelRecord
}

// ErrModel marks a file that is not a valid model snapshot.
var ErrModel = errors.New("archive: not a valid model snapshot")

// EncodeModel writes the records as one Parquet file in memory, users and
// items in the order given.
func EncodeModel(meta []byte, recs []ModelRecord) ([]byte, error) {
	rows := make([]ModelRow, len(recs))
	dim := -1
	for i := range recs {
		v := &recs[i].Vector
		if _, err := modelrec.AppendVector(nil, v); err != nil {
			return nil, fmt.Errorf("archive: model row %d: %w", i, err)
		}
		if dim >= 0 && len(v.Vec) != dim {
			return nil, fmt.Errorf("archive: model row %d has %d dimensions, the others %d", i, len(v.Vec), dim)
		}
		dim = len(v.Vec)
		kind := userKind
		if v.Kind == modelrec.KindItem {
			kind = itemKind
		}
		rows[i] = ModelRow{Kind: kind, ID: recs[i].ID, ModelVersion: int64(v.ModelVersion), Updates: int64(v.Updates),
			Ts: v.TsMillis, Bias: v.Bias, Popularity: v.Popularity, Impressions: v.Impressions, Vec: v.Vec, Seen: v.Seen}
	}
	var buf bytes.Buffer
	w := parquet.NewGenericWriter[ModelRow](&buf,
		parquet.Compression(&zstd.Codec{Level: zstd.SpeedDefault}),
		parquet.DataPageVersion(1),
		parquet.CreatedBy("eddy", "model", strconv.Itoa(ModelSchemaVersion)),
		parquet.KeyValueMetadata(MetaSchema, modelSchemaName),
		parquet.KeyValueMetadata(MetaModel, string(meta)))
	if _, err := w.Write(rows); err != nil {
		return nil, fmt.Errorf("archive: encode model: %w", err)
	}
	if err := w.Close(); err != nil {
		return nil, fmt.Errorf("archive: encode model: %w", err)
	}
	return buf.Bytes(), nil
}

// WriteModel stores a snapshot at key (under ModelsFolder by convention),
// atomically: a reader sees the whole file or none.
func WriteModel(ctx context.Context, st Store, key string, meta []byte, recs []ModelRecord) error {
	b, err := EncodeModel(meta, recs)
	if err != nil {
		return err
	}
	return st.Put(ctx, key, b)
}

// ReadModel reads and checks the snapshot at key.
func ReadModel(ctx context.Context, st Store, key string) (*Model, error) {
	o, err := st.Open(ctx, key)
	if err != nil {
		return nil, err
	}
	defer o.Close()
	m, err := DecodeModel(o, o.Size())
	if err != nil {
		return nil, fmt.Errorf("%s/%s: %w", st, key, err)
	}
	return m, nil
}

// DecodeModel parses a snapshot of size bytes from r. Every row must be a
// valid model record (finite values, ids of 1–256 bytes, users' seen
// lists only) with the same number of dimensions.
func DecodeModel(r io.ReaderAt, size int64) (m *Model, err error) {
	defer Recover("model snapshot", &err)
	f, err := parquet.OpenFile(r, size, parquet.SkipBloomFilters(true), parquet.SkipPageIndex(true))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrModel, err)
	}
	if v, _ := f.Lookup(MetaSchema); v != modelSchemaName {
		return nil, fmt.Errorf("%w: %s is %q, this build reads %s", ErrSchemaVersion, MetaSchema, v, modelSchemaName)
	}
	if err := CheckPages(f, r, size); err != nil {
		return nil, err
	}
	meta, _ := f.Lookup(MetaModel)
	m = &Model{Meta: []byte(meta)}
	rd := parquet.NewGenericReader[ModelRow](f)
	defer rd.Close()
	buf := make([]ModelRow, 1024)
	dim := -1
	n := 0
	for {
		k, err := rd.Read(buf)
		for i := range buf[:k] {
			row := &buf[i]
			v := modelrec.Vector{ModelVersion: uint64(row.ModelVersion), Updates: uint64(row.Updates), TsMillis: row.Ts,
				Bias: row.Bias, Popularity: row.Popularity, Impressions: row.Impressions, Vec: row.Vec}
			if len(row.Seen) > 0 {
				v.Seen = row.Seen
			}
			switch row.Kind {
			case userKind:
				v.Kind = modelrec.KindUser
			case itemKind:
				v.Kind = modelrec.KindItem
			default:
				return nil, fmt.Errorf("%w: row %d: kind %q", ErrModel, n, row.Kind)
			}
			if row.Updates < 0 || row.ModelVersion < 0 {
				return nil, fmt.Errorf("%w: row %d: negative counter", ErrModel, n)
			}
			if _, err := modelrec.AppendVector(nil, &v); err != nil {
				return nil, fmt.Errorf("%w: row %d: %v", ErrModel, n, err)
			}
			if err := checkID(row.ID); err != nil {
				return nil, fmt.Errorf("%w: row %d: %v", ErrModel, n, err)
			}
			if dim >= 0 && len(v.Vec) != dim {
				return nil, fmt.Errorf("%w: row %d has %d dimensions, the rows before %d", ErrModel, n, len(v.Vec), dim)
			}
			dim = len(v.Vec)
			rec := ModelRecord{ID: row.ID, Vector: v}
			if v.Kind == modelrec.KindUser {
				m.Users = append(m.Users, rec)
			} else {
				m.Items = append(m.Items, rec)
			}
			n++
		}
		// The reader reuses buf's slices; the records keep their own.
		buf = make([]ModelRow, len(buf))
		if errors.Is(err, io.EOF) {
			return m, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrModel, err)
		}
	}
}

// checkID applies the model topics' key rule: 1–256 bytes of UTF-8
// without control characters (modelrec's rule for seen ids).
func checkID(id string) error {
	v := modelrec.Vector{Kind: modelrec.KindUser, Vec: []float32{0}, Seen: []string{id}}
	if _, err := modelrec.AppendVector(nil, &v); err != nil {
		return fmt.Errorf("id: %v", err)
	}
	return nil
}

// ErrCorrupt marks a Parquet file the reader could not make sense of.
var ErrCorrupt = errors.New("archive: corrupt Parquet file")

// Recover turns a panic of the Parquet reader into an ErrCorrupt error
// (deferred by every reader of files from outside the process: parquet-go
// v0.32 panics on some corrupt footers and pages instead of failing).
func Recover(what string, err *error) {
	if r := recover(); r != nil {
		*err = fmt.Errorf("%w: %s: %v", ErrCorrupt, what, r)
	}
}
