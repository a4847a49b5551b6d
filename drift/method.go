package drift

import (
	"encoding/json"
	"fmt"
	"math"
)

// Method names a drift statistic.
type Method uint8

// The methods. MethodAuto (the zero value) asks DefaultMethod to choose.
const (
	MethodAuto        Method = iota
	MethodPSI                // population stability index, reference-quantile bins
	MethodJS                 // Jensen–Shannon distance, base e
	MethodKS                 // two-sample Kolmogorov–Smirnov test
	MethodWasserstein        // Wasserstein-1 distance / reference std
	MethodChiSquare          // chi-square test of homogeneity
	MethodZTest              // two-proportion Z-test
)

var methodNames = [...]string{
	MethodAuto:        "auto",
	MethodPSI:         "psi",
	MethodJS:          "js",
	MethodKS:          "ks",
	MethodWasserstein: "wasserstein",
	MethodChiSquare:   "chisquare",
	MethodZTest:       "ztest",
}

// String returns the method's name ("psi", "ks", ...).
func (m Method) String() string {
	if int(m) < len(methodNames) {
		return methodNames[m]
	}
	return fmt.Sprintf("method(%d)", uint8(m))
}

// ParseMethod parses a name returned by String.
func ParseMethod(s string) (Method, error) {
	for m, name := range methodNames {
		if s == name {
			return Method(m), nil
		}
	}
	return 0, fmt.Errorf("drift: unknown method %q (want auto, psi, js, ks, wasserstein, chisquare or ztest)", s)
}

// MarshalText implements encoding.TextMarshaler.
func (m Method) MarshalText() ([]byte, error) {
	if int(m) >= len(methodNames) {
		return nil, fmt.Errorf("drift: invalid method %d", uint8(m))
	}
	return []byte(m.String()), nil
}

// UnmarshalText implements encoding.TextUnmarshaler.
func (m *Method) UnmarshalText(b []byte) error {
	v, err := ParseMethod(string(b))
	if err != nil {
		return err
	}
	*m = v
	return nil
}

// HasPValue reports whether the method is a hypothesis test whose drift
// decision compares a p-value with the threshold (drift when p < threshold);
// the others are distances (drift when score ≥ threshold).
func (m Method) HasPValue() bool {
	return m == MethodKS || m == MethodChiSquare || m == MethodZTest
}

// DefaultThreshold returns the conventional threshold: p < 0.05 for the
// tests, 0.1 for the JS and normalised Wasserstein distances (Evidently's
// defaults) and 0.1 for PSI (the edge between "stable" and "moderate").
func (m Method) DefaultThreshold() float64 {
	if m.HasPValue() {
		return 0.05
	}
	return 0.1
}

// Kind says how a signal is summarised.
type Kind uint8

// The kinds of signal.
const (
	KindNumeric     Kind = iota + 1 // summarised by a Sketch
	KindCategorical                 // summarised by a FreqTable
)

// String returns "numeric" or "categorical".
func (k Kind) String() string {
	switch k {
	case KindNumeric:
		return "numeric"
	case KindCategorical:
		return "categorical"
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// ParseKind parses a name returned by String.
func ParseKind(s string) (Kind, error) {
	switch s {
	case "numeric":
		return KindNumeric, nil
	case "categorical":
		return KindCategorical, nil
	}
	return 0, fmt.Errorf("drift: unknown kind %q (want numeric or categorical)", s)
}

// SmallReference is the reference size up to which DefaultMethod picks
// hypothesis tests; above it, tests flag negligible differences, so it picks
// distances.
const SmallReference = 1000

// DefaultMethod chooses a method as Evidently does. nUnique is the number of
// distinct values in reference and current together (any value > 5 means
// "many"). With refN ≤ SmallReference: KS for numeric signals with more
// than 5 distinct values, chi-square for more than 2 categories, the
// Z-test otherwise. With a larger reference: normalised Wasserstein for
// numeric signals with more than 5 distinct values, Jensen–Shannon
// otherwise.
func DefaultMethod(kind Kind, refN int64, nUnique int) Method {
	continuous := kind == KindNumeric && nUnique > maxFewDistinct
	switch {
	case refN <= SmallReference && continuous:
		return MethodKS
	case refN <= SmallReference && nUnique > 2:
		return MethodChiSquare
	case refN <= SmallReference:
		return MethodZTest
	case continuous:
		return MethodWasserstein
	}
	return MethodJS
}

// Options choose how Compare* measure drift. The zero value means
// automatic method, its default threshold and DefaultBins.
type Options struct {
	Method    Method
	Threshold float64 // 0: Method.DefaultThreshold()
	Bins      int     // PSI and binned JS; 0: DefaultBins
}

// Result is one drift measurement of a window against its reference.
// Score is the method's statistic: PSI, JS distance, KS D, normalised
// Wasserstein distance, chi-square statistic or signed z. PValue is set
// only for tests (Method.HasPValue) and is omitted from JSON otherwise.
type Result struct {
	Method    Method  `json:"method"`
	Score     float64 `json:"score"`
	PValue    float64 `json:"p_value"`
	Threshold float64 `json:"threshold"`
	Drifted   bool    `json:"drifted"`
	N         int64   `json:"n"`
	RefN      int64   `json:"ref_n"`
}

// MarshalJSON writes p_value only for methods that have one.
func (r Result) MarshalJSON() ([]byte, error) {
	type plain Result
	if r.Method.HasPValue() {
		return json.Marshal(plain(r))
	}
	return json.Marshal(struct {
		plain
		PValue *float64 `json:"p_value,omitempty"`
	}{plain: plain(r)})
}

func (r *Result) decide(opt Options) {
	r.Threshold = opt.Threshold
	if r.Threshold == 0 {
		r.Threshold = r.Method.DefaultThreshold()
	}
	if r.Method.HasPValue() {
		r.Drifted = r.PValue < r.Threshold
	} else {
		r.Drifted = r.Score >= r.Threshold
	}
}

func validOptions(opt Options) error {
	if int(opt.Method) >= len(methodNames) {
		return fmt.Errorf("drift: invalid method %d", uint8(opt.Method))
	}
	if math.IsNaN(opt.Threshold) || opt.Threshold < 0 {
		return fmt.Errorf("drift: threshold %v, want ≥ 0", opt.Threshold)
	}
	return nil
}

// CompareSketches measures the drift of the numeric window cur against
// ref. Chi-square and the Z-test need both sketches to have at most 5
// distinct values (they use the exact counts); PSI and JS use
// reference-quantile bins.
func CompareSketches(ref, cur *Sketch, opt Options) (Result, error) {
	if err := validOptions(opt); err != nil {
		return Result{}, err
	}
	res := Result{Method: opt.Method, N: cur.Count(), RefN: ref.Count()}
	if res.N == 0 || res.RefN == 0 {
		return res, fmt.Errorf("drift: compare: %w", ErrEmpty)
	}
	keys, rc, cc, few := fewUnion(ref, cur)
	if res.Method == MethodAuto {
		nUnique := maxFewDistinct + 1
		if few {
			nUnique = len(keys)
		}
		res.Method = DefaultMethod(KindNumeric, res.RefN, nUnique)
	}
	var err error
	switch res.Method {
	case MethodPSI:
		res.Score, err = PSISketch(ref, cur, opt.Bins)
	case MethodJS:
		res.Score, err = JSSketch(ref, cur, opt.Bins)
	case MethodKS:
		res.Score, res.PValue, err = KSSketch(ref, cur)
	case MethodWasserstein:
		res.Score, err = NormalizedWassersteinSketch(ref, cur)
	case MethodChiSquare:
		if !few {
			return res, fmt.Errorf("drift: compare: chisquare on a numeric signal with more than %d values: %w", maxFewDistinct, ErrNotApplicable)
		}
		res.Score, res.PValue, _, err = ChiSquare(rc, cc)
	case MethodZTest:
		if !few || len(keys) > 2 {
			return res, fmt.Errorf("drift: compare: ztest on a numeric signal with more than 2 values: %w", ErrNotApplicable)
		}
		res.Score, res.PValue, err = ZTest(int64(rc[0]), res.RefN, int64(cc[0]), res.N)
	}
	if err != nil {
		return res, fmt.Errorf("drift: compare %s: %w", res.Method, err)
	}
	res.decide(opt)
	return res, nil
}

// fewUnion aligns the exact distinct-value counts of two sketches when both
// have at most 5 distinct values and so do they together.
func fewUnion(ref, cur *Sketch) (keys, rc, cc []float64, ok bool) {
	rv, rn, ok1 := ref.Distinct()
	cv, cn, ok2 := cur.Distinct()
	if !ok1 || !ok2 {
		return nil, nil, nil, false
	}
	i, j := 0, 0
	for i < len(rv) || j < len(cv) {
		switch {
		case j >= len(cv) || (i < len(rv) && rv[i] < cv[j]):
			keys, rc, cc = append(keys, rv[i]), append(rc, float64(rn[i])), append(cc, 0)
			i++
		case i >= len(rv) || cv[j] < rv[i]:
			keys, rc, cc = append(keys, cv[j]), append(rc, 0), append(cc, float64(cn[j]))
			j++
		default:
			keys, rc, cc = append(keys, rv[i]), append(rc, float64(rn[i])), append(cc, float64(cn[j]))
			i++
			j++
		}
	}
	return keys, rc, cc, len(keys) <= maxFewDistinct
}

// CompareTables measures the drift of the categorical window cur against
// ref. KS and Wasserstein do not apply to categories.
func CompareTables(ref, cur *FreqTable, opt Options) (Result, error) {
	if err := validOptions(opt); err != nil {
		return Result{}, err
	}
	res := Result{Method: opt.Method, N: cur.Total(), RefN: ref.Total()}
	if res.N == 0 || res.RefN == 0 {
		return res, fmt.Errorf("drift: compare: %w", ErrEmpty)
	}
	r, c := alignTables(ref, cur)
	if res.Method == MethodAuto {
		res.Method = DefaultMethod(KindCategorical, res.RefN, len(r))
	}
	var err error
	switch res.Method {
	case MethodPSI:
		res.Score, err = PSICounts(r, c)
	case MethodJS:
		res.Score, err = JS(r, c)
	case MethodChiSquare:
		res.Score, res.PValue, _, err = ChiSquare(r, c)
	case MethodZTest:
		res.Score, res.PValue, err = ZTestFreq(ref, cur)
	default:
		return res, fmt.Errorf("drift: compare: %s on categories: %w", res.Method, ErrNotApplicable)
	}
	if err != nil {
		return res, fmt.Errorf("drift: compare %s: %w", res.Method, err)
	}
	res.decide(opt)
	return res, nil
}
