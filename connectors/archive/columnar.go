package archive

import (
	"fmt"
	"io"

	"github.com/parquet-go/parquet-go"
)

// eventColumns reads an events row group column by column: parquet-go's
// row reader rebuilds each row by reflection (about 2.4 µs a row with the
// context map, 0.8 µs without), where reading each column's values in a
// batch and interning the dictionary-encoded strings costs a fraction of
// that. Scan of events uses it; served lists, read far less, use the row
// reader.
type eventColumns struct {
	// interned strings of the dictionary-encoded columns, shared across
	// the row groups of a scan: each distinct id is allocated once.
	users, items, types, ctxKeys, ctxVals intern
	values                                []parquet.Value
}

// intern returns one string per distinct byte sequence; bounded, so a
// column of unique values (a foreign file's ids) cannot grow it for ever.
type intern map[string]string

const maxInterned = 1 << 20

func (m *intern) get(b []byte) string {
	if *m == nil {
		*m = make(intern, 1024)
	}
	if s, ok := (*m)[string(b)]; ok {
		return s
	}
	s := string(b)
	if len(*m) < maxInterned {
		(*m)[s] = s
	}
	return s
}

// leaf is one column to read: its index in the row group and how to store
// each value of it.
type leaf struct {
	index  int
	maxDef int
}

func lookupLeaf(f *parquet.File, path ...string) (leaf, bool) {
	c, ok := f.Schema().Lookup(path...)
	if !ok {
		return leaf{}, false
	}
	return leaf{index: c.ColumnIndex, maxDef: c.MaxDefinitionLevel}, true
}

// each calls fn with every value of column l of rg, in order.
func (c *eventColumns) each(rg parquet.RowGroup, l leaf, fn func(v *parquet.Value)) error {
	pages := rg.ColumnChunks()[l.index].Pages()
	defer pages.Close()
	if cap(c.values) == 0 {
		c.values = make([]parquet.Value, 4096)
	}
	for {
		p, err := pages.ReadPage()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		vr := p.Values()
		for {
			n, err := vr.ReadValues(c.values)
			for i := range n {
				fn(&c.values[i])
			}
			if err == io.EOF {
				break
			}
			if err != nil {
				parquet.Release(p)
				return err
			}
		}
		parquet.Release(p)
	}
}

// read fills rows (len = the row group's row count) from rg. With
// withContext false the context map is left nil (a trainer needs none).
func (c *eventColumns) read(f *parquet.File, rg parquet.RowGroup, rows []EventRow, withContext bool) error {
	n := len(rows)
	floats := make([]float64, 2*n) // value, duration: rows point into it
	var reqs []string
	str := func(name string, dst func(i int, s string), in *intern) error {
		l, ok := lookupLeaf(f, name)
		if !ok {
			return nil // an optional column a foreign file lacks
		}
		i := 0
		return c.each(rg, l, func(v *parquet.Value) {
			if i < n && !v.IsNull() {
				if in != nil {
					dst(i, in.get(v.ByteArray()))
				} else {
					dst(i, string(v.ByteArray()))
				}
			}
			i++
		})
	}
	i64 := func(name string, dst func(i int, x int64)) error {
		l, ok := lookupLeaf(f, name)
		if !ok {
			return nil
		}
		i := 0
		return c.each(rg, l, func(v *parquet.Value) {
			if i < n && !v.IsNull() {
				dst(i, v.Int64())
			}
			i++
		})
	}
	f64 := func(name string, off int, dst func(i int, p *float64)) error {
		l, ok := lookupLeaf(f, name)
		if !ok {
			return nil
		}
		i := 0
		return c.each(rg, l, func(v *parquet.Value) {
			if i < n && !v.IsNull() {
				floats[off+i] = v.Double()
				dst(i, &floats[off+i])
			}
			i++
		})
	}
	steps := []func() error{
		func() error { return str("event_id", func(i int, s string) { rows[i].EventID = s }, nil) },
		func() error { return str("user_id", func(i int, s string) { rows[i].UserID = s }, &c.users) },
		func() error { return str("item_id", func(i int, s string) { rows[i].ItemID = s }, &c.items) },
		func() error { return str("type", func(i int, s string) { rows[i].Type = s }, &c.types) },
		func() error { return i64("ts", func(i int, x int64) { rows[i].Ts = x }) },
		func() error { return f64("value", 0, func(i int, p *float64) { rows[i].Value = p }) },
		func() error { return f64("duration", n, func(i int, p *float64) { rows[i].Duration = p }) },
		func() error {
			return str("request_id", func(i int, s string) {
				if reqs == nil {
					reqs = make([]string, n)
				}
				reqs[i] = s
				rows[i].RequestID = &reqs[i]
			}, nil)
		},
		func() error {
			l, ok := lookupLeaf(f, "kafka_partition")
			if !ok {
				return nil
			}
			i := 0
			return c.each(rg, l, func(v *parquet.Value) {
				if i < n {
					rows[i].Partition = v.Int32()
				}
				i++
			})
		},
		func() error { return i64("kafka_offset", func(i int, x int64) { rows[i].Offset = x }) },
		func() error { return i64("kafka_timestamp", func(i int, x int64) { rows[i].RecordTs = x }) },
	}
	if withContext {
		steps = append(steps, func() error { return c.readContext(f, rg, rows) })
	}
	for _, step := range steps {
		if err := step(); err != nil {
			return err
		}
	}
	return nil
}

// readContext fills the context maps from the map's key and value leaves:
// repetition level 0 starts a row; a value at the maximum definition level
// is an entry (lower levels are an empty or absent map).
func (c *eventColumns) readContext(f *parquet.File, rg parquet.RowGroup, rows []EventRow) error {
	kl, ok1 := lookupLeaf(f, "context", "key_value", "key")
	vl, ok2 := lookupLeaf(f, "context", "key_value", "value")
	if !ok1 || !ok2 {
		return nil
	}
	type entry struct {
		row  int
		k, v string
	}
	var entries []entry
	r := -1
	if err := c.each(rg, kl, func(v *parquet.Value) {
		if v.RepetitionLevel() == 0 {
			r++
		}
		if v.DefinitionLevel() == kl.maxDef {
			entries = append(entries, entry{row: r, k: c.ctxKeys.get(v.ByteArray())})
		}
	}); err != nil {
		return err
	}
	j := 0
	if err := c.each(rg, vl, func(v *parquet.Value) {
		if v.DefinitionLevel() == vl.maxDef && j < len(entries) {
			entries[j].v = c.ctxVals.get(v.ByteArray())
			j++
		}
	}); err != nil {
		return err
	}
	if j != len(entries) {
		return fmt.Errorf("archive: context map has %d keys and %d values", len(entries), j)
	}
	for s := 0; s < len(entries); {
		e := s
		for e < len(entries) && entries[e].row == entries[s].row {
			e++
		}
		if row := entries[s].row; row >= 0 && row < len(rows) {
			m := make(map[string]string, e-s)
			for _, x := range entries[s:e] {
				m[x.k] = x.v
			}
			rows[row].Context = m
		}
		s = e
	}
	return nil
}
