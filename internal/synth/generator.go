package synth

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"time"

	"github.com/eddyrec/eddy/event"
)

// Context keys and values the generator sets on every event.
const (
	ContextDevice  = "device"
	ContextCountry = "country"
)

var (
	devices       = [...]string{"mobile", "desktop", "tv"}
	deviceWeights = [...]float64{0.6, 0.3, 0.1}
	countries     = [...]string{"US", "IN", "BR", "GB", "DE", "JP", "FR"}
	countryWeight = [...]float64{0.35, 0.15, 0.12, 0.1, 0.1, 0.1, 0.08}
)

// primaryDeviceShare is the share of a user's sessions on their usual device.
const primaryDeviceShare = 0.8

// idCacheLimit bounds the precomputed id strings ("u123"): below it, ids cost
// no allocation per event; above it they are formatted on demand, because
// tens of millions of cached strings would cost more memory than they save.
const idCacheLimit = 1 << 20

// calibrationSamples is the number of impressions the click intercept is
// fitted on. The fitted CTR is exact for the sample; on the stream it is off
// by the sample's noise, which heavy-tailed user activity makes larger than
// the binomial bound (at 2^15 it was 3 % relative, at 2^17 under 1 %).
const calibrationSamples = 1 << 17

// pending is one event of a request, decided when the request is generated
// and emitted later, interleaved with other sessions' events.
type pending struct {
	typ         event.Type
	hasValue    bool
	hasDuration bool
	item        int32
	value       float64
	duration    float64
}

// session is one open session slot.
type session struct {
	user   int32
	device uint8
	left   int // requests still to serve, including none in progress
	reqID  string
	queue  []pending
	head   int
}

// Generator produces the stream a Config describes. It is not safe for
// concurrent use; run one Generator per goroutine (with different seeds for
// different streams).
type Generator struct {
	cfg Config

	userVec []float32 // Users×Dim, row-major
	itemVec []float32 // Items×Dim
	itemLen []float64 // seconds, whole

	itemRank    []int32   // 1-based popularity rank
	itemPop     []float64 // popularity term of the click logit, in [0,1]
	itemWeight  []float64 // probability under the popularity sampler
	itemSampler alias
	userSampler alias
	userCountry []uint8
	userDevice  []uint8

	userIDs []string // cached ids for indices < idCacheLimit
	itemIDs []string

	traffic *rng
	drift   *rng

	bias        float64 // calibrated click intercept
	watchFactor float64 // multiplies watch ratios; <1 after watch-ratio drift
	gapMs       float64 // mean inter-event gap in milliseconds

	sessions []session
	chosen   []int32 // items of the request being generated
	served   bool    // the last event of Next began a request (Served)

	startMs   int64
	clockMs   float64 // simulated time since Start
	driftAtMs int64   // DriftAtTime in Unix ms; valid when hasDriftT
	hasDriftT bool

	emitted  int64
	requests int64
	drifted  bool

	eventPrefix   []byte // "e<seed>-"
	requestPrefix []byte // "r<seed>-"
	buf           []byte
}

// New validates cfg and builds its model: latent vectors, popularity ranks,
// item lengths and the calibrated click intercept. It costs O((Users+Items)·Dim)
// time and memory.
func New(cfg Config) (*Generator, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	g := &Generator{
		cfg:         cfg,
		traffic:     newRNG(cfg.Seed, streamTraffic),
		drift:       newRNG(cfg.Seed, streamDrift),
		watchFactor: 1,
		gapMs:       float64(cfg.MeanInterEvent) / float64(time.Millisecond),
		startMs:     cfg.Start.UnixMilli(),
		sessions:    make([]session, cfg.ConcurrentSessions),
		chosen:      make([]int32, 0, cfg.ImpressionsPerRequest),
	}
	if !cfg.DriftAtTime.IsZero() {
		g.hasDriftT = true
		g.driftAtMs = cfg.DriftAtTime.UnixMilli()
	}
	g.eventPrefix = strconv.AppendUint([]byte("e"), cfg.Seed, 10)
	g.eventPrefix = append(g.eventPrefix, '-')
	g.requestPrefix = strconv.AppendUint([]byte("r"), cfg.Seed, 10)
	g.requestPrefix = append(g.requestPrefix, '-')

	m := newRNG(cfg.Seed, streamModel)
	sd := math.Pow(float64(cfg.Dim), -0.25) // so that u·v has unit variance
	g.userVec = make([]float32, cfg.Users*cfg.Dim)
	for i := range g.userVec {
		g.userVec[i] = float32(sd * m.normal())
	}
	g.itemVec = make([]float32, cfg.Items*cfg.Dim)
	for i := range g.itemVec {
		g.itemVec[i] = float32(sd * m.normal())
	}
	g.itemLen = make([]float64, cfg.Items)
	for i := range g.itemLen {
		l := math.Round(cfg.ItemLengthMedian * math.Exp(cfg.ItemLengthSigma*m.normal()))
		g.itemLen[i] = min(max(l, 1), 24*3600)
	}

	// Ranks are a random permutation so that ids say nothing about
	// popularity or activity.
	g.itemRank = identityRanks(cfg.Items)
	shuffle(m, g.itemRank)
	g.itemPop = make([]float64, cfg.Items)
	g.setPopularity()

	userRank := identityRanks(cfg.Users)
	shuffle(m, userRank)
	g.userSampler = newAlias(zipfWeights(nil, userRank, cfg.UserActivityS))

	devSampler := newAlias(deviceWeights[:])
	ctySampler := newAlias(countryWeight[:])
	g.userDevice = make([]uint8, cfg.Users)
	g.userCountry = make([]uint8, cfg.Users)
	for u := range cfg.Users {
		g.userDevice[u] = uint8(devSampler.sample(m))
		g.userCountry[u] = uint8(ctySampler.sample(m))
	}

	g.userIDs = makeIDs('u', min(cfg.Users, idCacheLimit))
	g.itemIDs = makeIDs('i', min(cfg.Items, idCacheLimit))

	var achieved float64
	g.bias, achieved = g.calibrate()
	if math.Abs(achieved-cfg.TargetCTR) > 1e-6*cfg.TargetCTR {
		return nil, fmt.Errorf("synth: TargetCTR %g is out of reach of the click model (closest %g): lower PositionDecay or AffinityWeight, or shorten the lists", cfg.TargetCTR, achieved)
	}
	return g, nil
}

func identityRanks(n int) []int32 {
	r := make([]int32, n)
	for i := range r {
		r[i] = int32(i + 1)
	}
	return r
}

func makeIDs(prefix byte, n int) []string {
	ids := make([]string, n)
	var b []byte
	for i := range ids {
		b = strconv.AppendInt(append(b[:0], prefix), int64(i), 10)
		ids[i] = string(b)
	}
	return ids
}

// setPopularity derives the sampler and the click-logit term from itemRank.
func (g *Generator) setPopularity() {
	g.itemWeight = zipfWeights(g.itemWeight, g.itemRank, g.cfg.ZipfS)
	g.itemSampler = newAlias(g.itemWeight)
	logN := math.Log(float64(g.cfg.Items))
	for i, r := range g.itemRank {
		if logN == 0 {
			g.itemPop[i] = 1
			continue
		}
		g.itemPop[i] = 1 - math.Log(float64(r))/logN
	}
}

// calibrate returns the click intercept b, and the CTR it achieves, for which the mean click
// probability over a sample of served lists, drawn as the stream draws them
// (users by activity, distinct items, every position), equals TargetCTR. The
// mean is increasing in b, so bisection converges.
func (g *Generator) calibrate() (bias, ctr float64) {
	c := &g.cfg
	r := newRNG(c.Seed, streamCalibration)
	k := c.ImpressionsPerRequest
	scores := make([]float64, 0, calibrationSamples+k)
	for len(scores) < calibrationSamples {
		u := g.userSampler.sample(r)
		g.chosen = g.chosen[:0]
		for pos := range k {
			i := g.sampleDistinct(r)
			g.chosen = append(g.chosen, int32(i))
			scores = append(scores, c.AffinityWeight*g.Affinity(u, i)+c.PopularityWeight*g.itemPop[i]-c.PositionDecay*float64(pos))
		}
	}
	g.chosen = g.chosen[:0]
	// Newton's method on f(b) = mean sigmoid(b+s) − TargetCTR, kept inside
	// a bisection bracket: f is increasing, so the bracket always holds the
	// root and the iteration cannot diverge. Scores lie within ±1,500 under
	// Validate's limits, so the bracket holds every reachable root.
	lo, hi := -2000.0, 2000.0
	b := math.Log(c.TargetCTR / (1 - c.TargetCTR))
	n := float64(len(scores))
	for range 200 {
		var sum, slope float64
		for _, s := range scores {
			p := sigmoid(b + s)
			sum += p
			slope += p * (1 - p)
		}
		ctr = sum / n
		f := ctr - c.TargetCTR
		if math.Abs(f) < 1e-9*c.TargetCTR || hi-lo < 1e-12 {
			break
		}
		if f < 0 {
			lo = b
		} else {
			hi = b
		}
		next := b - f/(slope/n)
		if !(next > lo && next < hi) { // also catches NaN from a zero slope
			next = (lo + hi) / 2
		}
		b = next
	}
	return b, ctr
}

// sampleItem draws one impression candidate: uniform with probability
// Explore, by popularity otherwise.
func (g *Generator) sampleItem(r *rng) int {
	if g.cfg.Explore > 0 && r.float64() < g.cfg.Explore {
		return r.intN(g.cfg.Items)
	}
	return g.itemSampler.sample(r)
}

// Next fills e with the next event of the stream, overwriting every field.
// e must not be nil.
//
// Context: when e.Context is non-nil, Next clears it and fills it in place
// (no allocation); when it is nil, Next allocates a new map. So a caller that
// reuses one Event gets no per-event map allocation, and a caller that keeps
// events gets a separate map for each as long as it passes Events whose
// Context is nil (a fresh Event, or one it cleared). The generator itself
// never keeps or shares a map between events. All strings are immutable and
// may be shared: the events of one request share their RequestID.
func (g *Generator) Next(e *event.Event) {
	g.clockMs += g.gapMs * g.traffic.exp()
	ms := g.startMs + int64(g.clockMs)
	if !g.drifted && g.cfg.DriftKind != DriftNone &&
		((g.cfg.DriftAt > 0 && g.emitted >= g.cfg.DriftAt) || (g.hasDriftT && ms >= g.driftAtMs)) {
		g.applyDrift()
	}

	s := &g.sessions[g.traffic.intN(len(g.sessions))]
	g.served = false
	if s.head == len(s.queue) {
		if s.left == 0 {
			g.startSession(s)
		}
		g.newRequest(s)
		g.served = true
		s.left--
	}
	p := &s.queue[s.head]
	s.head++

	g.buf = strconv.AppendInt(append(g.buf[:0], g.eventPrefix...), g.emitted, 10)
	e.EventID = string(g.buf)
	e.UserID = g.UserID(int(s.user))
	e.ItemID = g.ItemID(int(p.item))
	e.Type = p.typ
	e.Time = time.UnixMilli(ms).UTC()
	e.Value, e.HasValue = p.value, p.hasValue
	e.Duration, e.HasDuration = p.duration, p.hasDuration
	e.RequestID = s.reqID
	if e.Context == nil {
		e.Context = make(map[string]string, 2)
	} else {
		clear(e.Context)
	}
	e.Context[ContextDevice] = devices[s.device]
	e.Context[ContextCountry] = countries[g.userCountry[s.user]]
	g.emitted++
}

// startSession gives slot s to a new user, drawn by activity.
func (g *Generator) startSession(s *session) {
	r := g.traffic
	u := g.userSampler.sample(r)
	s.user = int32(u)
	s.device = g.userDevice[u]
	if r.float64() >= primaryDeviceShare {
		s.device = uint8(r.intN(len(devices)))
	}
	// Geometric on {1, 2, ...} with mean SessionLength.
	s.left = 1
	if mean := g.cfg.SessionLength; mean > 1 {
		q := 1 - 1/mean // continuation probability
		s.left += int(math.Floor(math.Log1p(-r.float64()) / math.Log(q)))
	}
}

// newRequest decides one served list and everything the user does with it,
// and queues the events in the order they happen: the impressions, then per
// clicked item its click, watch and feedback.
func (g *Generator) newRequest(s *session) {
	c := &g.cfg
	r := g.traffic
	g.requests++
	g.buf = strconv.AppendInt(append(g.buf[:0], g.requestPrefix...), g.requests-1, 10)
	s.reqID = string(g.buf)
	s.queue = s.queue[:0]
	s.head = 0

	g.chosen = g.chosen[:0]
	for range c.ImpressionsPerRequest {
		it := g.sampleDistinct(r)
		g.chosen = append(g.chosen, int32(it))
		s.queue = append(s.queue, pending{typ: event.Impression, item: int32(it)})
	}
	u := int(s.user)
	for pos, it32 := range g.chosen {
		it := int(it32)
		a := g.Affinity(u, it)
		p := sigmoid(g.bias + c.AffinityWeight*a + c.PopularityWeight*g.itemPop[it] - c.PositionDecay*float64(pos))
		if r.float64() >= p {
			continue
		}
		s.queue = append(s.queue, pending{typ: event.Click, item: it32})
		if r.float64() >= c.WatchProb {
			continue
		}
		ratio := g.watchRatio(r, a)
		length := g.itemLen[it]
		s.queue = append(s.queue, pending{
			typ: event.Watch, item: it32,
			value: math.Round(ratio*length*1000) / 1000, hasValue: true,
			duration: length, hasDuration: true,
		})
		g.feedback(s, r, it32, a, ratio)
	}
}

// sampleDistinct draws an item not yet in g.chosen. Popular items repeat
// often, so it retries; after a bounded number of tries it walks to the next
// free index, which always exists because Items ≥ ImpressionsPerRequest.
func (g *Generator) sampleDistinct(r *rng) int {
	it := 0
	for range 32 {
		it = g.sampleItem(r)
		if !slices.Contains(g.chosen, int32(it)) {
			return it
		}
	}
	for slices.Contains(g.chosen, int32(it)) {
		it = (it + 1) % g.cfg.Items
	}
	return it
}

// watchRatio draws the share of the item watched: near 1 when the watch
// completes (likelier for good matches), near 0 otherwise.
func (g *Generator) watchRatio(r *rng, a float64) float64 {
	var ratio float64
	if r.float64() < sigmoid(g.cfg.CompletionBias+g.cfg.CompletionWeight*a) {
		u := r.float64()
		ratio = 1 - 0.1*u*u
	} else {
		u := r.float64()
		ratio = 0.9 * u * math.Sqrt(u)
	}
	return ratio * g.watchFactor
}

// feedback queues the optional events after a watch.
func (g *Generator) feedback(s *session, r *rng, item int32, a, ratio float64) {
	c := &g.cfg
	pLike := min(1, c.LikeRate*ratio*2*sigmoid(a))
	pDislike := min(1, c.DislikeRate*(1-ratio)*2*sigmoid(-a))
	switch u := r.float64(); {
	case u < pLike:
		s.queue = append(s.queue, pending{typ: event.Like, item: item})
	case u < pLike+pDislike:
		s.queue = append(s.queue, pending{typ: event.Dislike, item: item})
	}
	if ratio < 0.1 && r.float64() < c.SkipRate {
		s.queue = append(s.queue, pending{typ: event.Skip, item: item})
	}
	if ratio >= 0.5 && r.float64() < min(1, c.PurchaseRate*2*sigmoid(a)) {
		s.queue = append(s.queue, pending{typ: event.Purchase, item: item})
	}
	if r.float64() < c.RatingRate {
		x := 3 + 1.5*a + (ratio - 0.5) + 0.5*r.normal()
		v := min(max(math.Round(x*2)/2, 0.5), 5)
		s.queue = append(s.queue, pending{typ: event.Rating, item: item, value: v, hasValue: true})
	}
}

// applyDrift changes the model once; see the package documentation.
func (g *Generator) applyDrift() {
	g.drifted = true
	c := &g.cfg
	r := g.drift
	s := c.DriftStrength
	switch c.DriftKind {
	case DriftPopularity:
		// Choose round(s·Items) items and shuffle their ranks among them.
		idx := identityRanks(c.Items) // 1-based; used as indices below
		m := int(math.Round(s * float64(c.Items)))
		for k := range m { // partial Fisher–Yates: idx[:m] is a random subset
			j := k + r.intN(c.Items-k)
			idx[k], idx[j] = idx[j], idx[k]
		}
		ranks := make([]int32, m)
		for k := range m {
			ranks[k] = g.itemRank[idx[k]-1]
		}
		shuffle(r, ranks)
		for k := range m {
			g.itemRank[idx[k]-1] = ranks[k]
		}
		g.setPopularity()
	case DriftTaste:
		keep := float32(math.Sqrt(1 - s))
		noise := math.Sqrt(s) * math.Pow(float64(c.Dim), -0.25)
		for i := range g.userVec {
			g.userVec[i] = keep*g.userVec[i] + float32(noise*r.normal())
		}
	case DriftWatchRatio:
		g.watchFactor = 1 - s/2
	}
}

// Served returns the items of the list served to the request that the
// event of the last Next began (that event is its first impression), in
// the order of its impressions; nil when the event continued a request.
// The slice is overwritten by the next call of Next. It is what a scorer
// would have logged for the request (eddy gen --recs).
func (g *Generator) Served() []int32 {
	if !g.served {
		return nil
	}
	return g.chosen
}

// Config returns the configuration the generator was built with.
func (g *Generator) Config() Config { return g.cfg }

// Emitted returns how many events Next has produced.
func (g *Generator) Emitted() int64 { return g.emitted }

// Drifted reports whether the drift has been injected; events produced after
// it became true come from the changed model.
func (g *Generator) Drifted() bool { return g.drifted }

// Affinity returns the current ground-truth affinity u·v of a user and an
// item (indices, not ids), standard normal across random pairs. It panics
// if an index is out of range, as a slice index would.
func (g *Generator) Affinity(user, item int) float64 {
	d := g.cfg.Dim
	uv := g.userVec[user*d : user*d+d]
	iv := g.itemVec[item*d : item*d+d]
	var sum float64
	for k, x := range uv {
		sum += float64(x) * float64(iv[k])
	}
	return sum
}

// ClickProbability returns the current ground-truth probability that user
// clicks item when it is shown at list position (0-based).
func (g *Generator) ClickProbability(user, item, position int) float64 {
	c := &g.cfg
	return sigmoid(g.bias + c.AffinityWeight*g.Affinity(user, item) + c.PopularityWeight*g.itemPop[item] - c.PositionDecay*float64(position))
}

// TopItems returns the k items (indices) the user is currently most likely
// to click, best first: the oracle ranking for evaluation. It costs
// O(Items·Dim).
func (g *Generator) TopItems(user, k int) []int {
	k = min(max(k, 0), g.cfg.Items)
	c := &g.cfg
	score := make([]float64, g.cfg.Items)
	order := make([]int, g.cfg.Items)
	for i := range score {
		score[i] = c.AffinityWeight*g.Affinity(user, i) + c.PopularityWeight*g.itemPop[i]
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int {
		switch {
		case score[a] > score[b]:
			return -1
		case score[a] < score[b]:
			return 1
		}
		return 0
	})
	return slices.Clone(order[:k])
}

// UserVector returns a copy of the user's current latent vector.
func (g *Generator) UserVector(user int) []float32 {
	d := g.cfg.Dim
	return slices.Clone(g.userVec[user*d : user*d+d])
}

// ItemVector returns a copy of the item's latent vector.
func (g *Generator) ItemVector(item int) []float32 {
	d := g.cfg.Dim
	return slices.Clone(g.itemVec[item*d : item*d+d])
}

// Popularity returns the item's current probability of being drawn by the
// popularity sampler (before the Explore mix), and its popularity rank
// (1 = most popular).
func (g *Generator) Popularity(item int) (weight float64, rank int) {
	return g.itemWeight[item], int(g.itemRank[item])
}

// ItemLength returns the item's length in seconds (the Duration of its
// watch events).
func (g *Generator) ItemLength(item int) float64 { return g.itemLen[item] }

// UserID returns the id of user index u ("u123").
func (g *Generator) UserID(u int) string {
	if u < len(g.userIDs) {
		return g.userIDs[u]
	}
	return "u" + strconv.Itoa(u)
}

// ItemID returns the id of item index i ("i45").
func (g *Generator) ItemID(i int) string {
	if i < len(g.itemIDs) {
		return g.itemIDs[i]
	}
	return "i" + strconv.Itoa(i)
}

// UserIndex returns the index of a user id made by UserID.
func (g *Generator) UserIndex(id string) (int, bool) {
	return parseIndex(id, 'u', g.cfg.Users)
}

// ItemIndex returns the index of an item id made by ItemID.
func (g *Generator) ItemIndex(id string) (int, bool) {
	return parseIndex(id, 'i', g.cfg.Items)
}

func parseIndex(id string, prefix byte, n int) (int, bool) {
	if len(id) < 2 || id[0] != prefix || (id[1] == '0' && len(id) > 2) {
		return 0, false
	}
	v, err := strconv.Atoi(id[1:])
	if err != nil || v < 0 || v >= n || id[1] == '+' || id[1] == '-' {
		return 0, false
	}
	return v, true
}

// String describes the generator for logs.
func (g *Generator) String() string {
	return fmt.Sprintf("synth.Generator{seed=%d users=%d items=%d emitted=%d drifted=%t}",
		g.cfg.Seed, g.cfg.Users, g.cfg.Items, g.emitted, g.drifted)
}
