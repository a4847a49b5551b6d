package recs

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/eddyrec/eddy/internal/jsonscan"
)

// List is one decoded served list.
type List struct {
	RequestID    string
	UserID       string
	ModelVersion string
	Variant      string
	// Policy is written only by a scorer running an experiment: the
	// variant's serving policy ("popularity" for lists that the ranker
	// did not rank).
	Policy   string
	Fallback bool
	TsMillis int64
	Items    []Item
}

// Item is one served item: its id, position (0-based), score and the
// ranker's feature values at serving time.
// Its JSON (encoding/json) is the recs/v1 item.
type Item struct {
	ItemID   string  `json:"item_id"`
	Position int     `json:"position"`
	Score    float64 `json:"score"`
	// Features are sorted by name, without duplicates. Their names are
	// interned by the Decoder: a name costs no allocation after the first
	// list that carries it.
	Features Features `json:"features,omitempty"`
}

// Feature is one named feature value.
type Feature struct {
	Name  string
	Value float64
}

// Features are an item's feature values, sorted by name. Their JSON is an
// object, as in the record.
type Features []Feature

// MarshalJSON writes the features as a JSON object in their order.
func (fs Features) MarshalJSON() ([]byte, error) {
	b := []byte{'{'}
	for i, f := range fs {
		if i > 0 {
			b = append(b, ',')
		}
		k, err := json.Marshal(f.Name)
		if err != nil {
			return nil, err
		}
		v, err := json.Marshal(f.Value)
		if err != nil {
			return nil, fmt.Errorf("feature %q: %w", f.Name, err)
		}
		b = append(append(append(b, k...), ':'), v...)
	}
	return append(b, '}'), nil
}

// Lookup returns the value of the feature name (binary search).
func (it *Item) Lookup(name string) (float64, bool) {
	i, ok := slices.BinarySearchFunc(it.Features, name, func(f Feature, n string) int { return strings.Compare(f.Name, n) })
	if !ok {
		return 0, false
	}
	return it.Features[i].Value, true
}

// Limits a decoded List respects; a record beyond them is invalid.
const (
	MaxItems       = 1000
	MaxIDBytes     = 256 // request_id, user_id, item_id, model_version, variant, policy
	MaxFeatures    = 255 // per item
	MaxFeatureName = 64  // bytes
	// MaxTsMillis is the largest ts: 2^53 ms, where float64 consumers
	// still see exact milliseconds.
	MaxTsMillis = 1 << 53
)

// ErrInvalid matches every error Decode returns: malformed JSON (a
// *jsonscan.SyntaxError) or a well-formed record that breaks the contract
// (a *FieldError).
var ErrInvalid = errors.New("recs: invalid served list")

// FieldError names the field of a served list that breaks the contract.
type FieldError struct {
	Field string // JSON path: "user_id", "items[3].features[\"x\"]"
	Rule  string
}

func (e *FieldError) Error() string {
	return fmt.Sprintf("%v: %s: %s", ErrInvalid, e.Field, e.Rule)
}

// Is makes errors.Is(err, ErrInvalid) hold.
func (e *FieldError) Is(target error) bool { return target == ErrInvalid }

// maxInterned bounds the Decoder's table of feature names: a producer
// that writes a new name in every record cannot grow it without bound
// (names beyond it are allocated per record instead).
const maxInterned = 4096

// Decoder decodes served lists one at a time. It keeps the feature names
// it has seen, so one Decoder per consumer: it is not safe for concurrent
// use. The zero value is ready.
type Decoder struct {
	jsonscan.Scanner
	names map[string]string
	// feats is the backing array the items of one list share.
	feats []Feature
}

// Decode decodes and validates one record value. White space may surround
// the object; nothing else may. Fields it does not know are skipped (they
// must still be well-formed, valid UTF-8 JSON); null stands for an absent
// field; keys match exactly (encoding/json would also match them ignoring
// case). ts is Unix milliseconds or an RFC 3339 string.
func (d *Decoder) Decode(b []byte) (List, error) {
	d.Scanner = jsonscan.Scanner{Buf: b, Kind: ErrInvalid}
	// The items of this list share one array, made by the first features
	// object (a list without features, or a reader that only wants the
	// user id, costs none); the previous list's items keep the old one.
	d.feats = nil
	var l List
	if d.Peek() != '{' {
		if err := d.SkipValue(0, false); err != nil {
			return List{}, err
		}
		return List{}, &FieldError{Field: "(record)", Rule: "must be a JSON object"}
	}
	err := d.members("", func(key []byte) error {
		switch string(key) {
		case "request_id":
			return d.id(&l.RequestID, "request_id", MaxIDBytes)
		case "user_id":
			return d.id(&l.UserID, "user_id", MaxIDBytes)
		case "model_version":
			return d.id(&l.ModelVersion, "model_version", MaxIDBytes)
		case "variant":
			return d.id(&l.Variant, "variant", MaxIDBytes)
		case "policy":
			return d.id(&l.Policy, "policy", MaxIDBytes)
		case "fallback":
			return d.boolean(&l.Fallback, "fallback")
		case "ts":
			return d.ts(&l.TsMillis)
		case "items":
			return d.items(&l)
		}
		return d.skip(key)
	})
	if err != nil {
		return List{}, err
	}
	if !d.AtEnd() {
		return List{}, d.Unexpected("end of input")
	}
	switch {
	case l.RequestID == "":
		return List{}, &FieldError{"request_id", "required"}
	case l.UserID == "":
		return List{}, &FieldError{"user_id", "required"}
	case l.TsMillis == 0:
		return List{}, &FieldError{"ts", "required"}
	}
	return l, nil
}

// members walks the object at the cursor, calling fn with each key (valid
// until fn reads the value) and the cursor on its value. path names the
// object in errors.
func (d *Decoder) members(path string, fn func(key []byte) error) error {
	if d.Peek() != '{' {
		return d.Unexpected("'{'" + inPath(path))
	}
	d.Pos++
	if d.Peek() == '}' {
		d.Pos++
		return nil
	}
	for {
		if d.Peek() != '"' {
			return d.Unexpected("object key")
		}
		key, err := d.ReadString()
		if err != nil {
			return err
		}
		if d.Peek() != ':' {
			return d.Unexpected("':'")
		}
		d.Pos++
		if err := fn(key); err != nil {
			return err
		}
		if more, err := d.Next('}'); !more {
			return err
		}
	}
}

func inPath(path string) string {
	if path == "" {
		return ""
	}
	return " at " + path
}

// skip steps over the value of an unknown key.
func (d *Decoder) skip(key []byte) error {
	if !utf8.Valid(key) {
		return &FieldError{strconv.Quote(string(key)), "key is not valid UTF-8"}
	}
	name := string(key)
	if err := d.SkipValue(1, true); err != nil {
		if err == jsonscan.ErrStringNotUTF8 {
			return &FieldError{name, "not valid UTF-8"}
		}
		return err
	}
	return nil
}

// wrongType skips the value at the cursor and reports that field must be
// rule; a value that is not even well-formed JSON is a syntax error
// instead.
func (d *Decoder) wrongType(field, rule string) error {
	if err := d.SkipValue(1, false); err != nil {
		return err
	}
	return &FieldError{field, rule}
}

// null consumes a null at the cursor, if there is one.
func (d *Decoder) null() (bool, error) {
	if d.Peek() != 'n' {
		return false, nil
	}
	return true, d.ReadLiteral("null")
}

// str reads a string of at most max bytes of valid UTF-8 (empty allowed).
// The result aliases the input or the scanner's scratch space.
func (d *Decoder) str(field string, max int) ([]byte, error) {
	if d.Peek() != '"' {
		return nil, d.wrongType(field, "must be a string")
	}
	s, err := d.ReadString()
	if err != nil {
		return nil, err
	}
	switch {
	case len(s) > max:
		return nil, &FieldError{field, fmt.Sprintf("at most %d bytes", max)}
	case !utf8.Valid(s):
		return nil, &FieldError{field, "not valid UTF-8"}
	}
	return s, nil
}

func (d *Decoder) id(dst *string, field string, max int) error {
	if null, err := d.null(); null || err != nil {
		return err
	}
	s, err := d.str(field, max)
	if err != nil {
		return err
	}
	*dst = string(s)
	return nil
}

func (d *Decoder) boolean(dst *bool, field string) error {
	switch d.Peek() {
	case 't':
		*dst = true
		return d.ReadLiteral("true")
	case 'f':
		*dst = false
		return d.ReadLiteral("false")
	case 'n':
		return d.ReadLiteral("null")
	}
	return d.wrongType(field, "must be true or false")
}

// number reads a finite JSON number. Its FieldError has no Field: the
// caller names it (see at), so that the path is built only on error.
func (d *Decoder) number() (float64, error) {
	if c := d.Peek(); c != '-' && !jsonscan.IsDigit(c) {
		return 0, d.wrongType("", "must be a number")
	}
	num, _, err := d.ReadNumber()
	if err != nil {
		return 0, err
	}
	v, err := strconv.ParseFloat(string(num), 64)
	if err != nil || math.IsInf(v, 0) {
		return 0, &FieldError{Rule: "out of range"}
	}
	return v, nil
}

// at names the field of a FieldError that has none yet.
func at(err error, field func() string) error {
	if fe, ok := err.(*FieldError); ok && fe.Field == "" {
		fe.Field = field()
	}
	return err
}

func (d *Decoder) ts(dst *int64) error {
	if null, err := d.null(); null || err != nil {
		return err
	}
	var ms int64
	if d.Peek() == '"' {
		s, err := d.str("ts", 64)
		if err != nil {
			return err
		}
		t, err := time.Parse(time.RFC3339Nano, string(s))
		if err != nil {
			return &FieldError{"ts", "Unix milliseconds or an RFC 3339 time"}
		}
		ms = t.UnixMilli()
	} else {
		if c := d.Peek(); c != '-' && !jsonscan.IsDigit(c) {
			return d.wrongType("ts", "Unix milliseconds or an RFC 3339 time")
		}
		num, isInt, err := d.ReadNumber()
		if err != nil {
			return err
		}
		if !isInt {
			return &FieldError{"ts", "whole milliseconds"}
		}
		if ms, err = strconv.ParseInt(string(num), 10, 64); err != nil {
			return &FieldError{"ts", "out of range"}
		}
	}
	if ms <= 0 || ms > MaxTsMillis {
		return &FieldError{"ts", "out of range (1 ms to 2^53 ms after 1970)"}
	}
	*dst = ms
	return nil
}

func (d *Decoder) items(l *List) error {
	if null, err := d.null(); null || err != nil {
		return err
	}
	if d.Peek() != '[' {
		return d.wrongType("items", "must be an array")
	}
	d.Pos++
	l.Items = l.Items[:0]
	if d.Peek() == ']' {
		d.Pos++
		return nil
	}
	for {
		if len(l.Items) == MaxItems {
			return &FieldError{"items", fmt.Sprintf("at most %d", MaxItems)}
		}
		l.Items = append(l.Items, Item{})
		if err := d.item(&l.Items[len(l.Items)-1], len(l.Items)-1); err != nil {
			return err
		}
		if more, err := d.Next(']'); !more {
			return err
		}
	}
}

func itemPath(i int) string { return "items[" + strconv.Itoa(i) + "]" }

func (d *Decoder) item(it *Item, i int) error {
	if null, err := d.null(); null || err != nil {
		if err == nil {
			err = &FieldError{itemPath(i), "must be an object"}
		}
		return err
	}
	err := d.members("items[]", func(key []byte) error {
		switch string(key) {
		case "item_id":
			return d.id(&it.ItemID, "item_id", MaxIDBytes)
		case "position":
			return d.position(&it.Position)
		case "score":
			if null, err := d.null(); null || err != nil {
				return err
			}
			v, err := d.number()
			it.Score = v
			return at(err, func() string { return "score" })
		case "features":
			return d.features(it)
		}
		return d.skip(key)
	})
	if err == nil && it.ItemID == "" {
		err = &FieldError{"item_id", "required"}
	}
	if fe, ok := err.(*FieldError); ok {
		// Field errors inside an item name the field relative to it.
		fe.Field = itemPath(i) + "." + fe.Field
	}
	return err
}

func (d *Decoder) position(dst *int) error {
	const field = "position"
	if null, err := d.null(); null || err != nil {
		return err
	}
	if c := d.Peek(); c != '-' && !jsonscan.IsDigit(c) {
		return d.wrongType(field, "must be an integer")
	}
	num, isInt, err := d.ReadNumber()
	if err != nil {
		return err
	}
	v, perr := strconv.Atoi(string(num))
	if !isInt || perr != nil || v < 0 || v > math.MaxInt32 {
		return &FieldError{field, "must be an integer from 0"}
	}
	*dst = v
	return nil
}

// features reads an item's feature object into the list's shared backing
// array, sorted by name; it rejects a duplicate name. Errors name the
// field relative to the item.
func (d *Decoder) features(it *Item) error {
	if null, err := d.null(); null || err != nil {
		return err
	}
	if d.feats == nil {
		d.feats = make([]Feature, 0, 64)
	}
	start := len(d.feats)
	sorted := true
	err := d.members("features", func(key []byte) error {
		if len(d.feats)-start == MaxFeatures {
			return &FieldError{"features", fmt.Sprintf("at most %d", MaxFeatures)}
		}
		if len(key) == 0 || len(key) > MaxFeatureName || !utf8.Valid(key) {
			return &FieldError{"features", fmt.Sprintf("names are 1–%d bytes of UTF-8", MaxFeatureName)}
		}
		name := d.intern(key)
		if n := len(d.feats); n > start && d.feats[n-1].Name >= name {
			sorted = false
		}
		v, err := d.number()
		if err != nil {
			return at(err, func() string { return "features[" + strconv.Quote(name) + "]" })
		}
		d.feats = append(d.feats, Feature{Name: name, Value: v})
		return nil
	})
	if err != nil {
		return err
	}
	fs := Features(d.feats[start:len(d.feats):len(d.feats)])
	if !sorted {
		slices.SortFunc(fs, func(a, b Feature) int { return strings.Compare(a.Name, b.Name) })
		for k := 1; k < len(fs); k++ {
			if fs[k].Name == fs[k-1].Name {
				return &FieldError{"features[" + strconv.Quote(fs[k].Name) + "]", "duplicate key"}
			}
		}
	}
	if len(fs) > 0 {
		it.Features = fs
	}
	return nil
}

// intern returns name as a string, the same one for the same bytes.
func (d *Decoder) intern(name []byte) string {
	if s, ok := d.names[string(name)]; ok {
		return s
	}
	s := string(name)
	if d.names == nil {
		d.names = make(map[string]string)
	}
	if len(d.names) < maxInterned {
		d.names[s] = s
	}
	return s
}
