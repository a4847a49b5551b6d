package ranker

import "encoding/binary"

// qentry is one entry of a deadline queue: a user whose state holds a
// pending served list (or an orphan engagement) for request req that is
// due at deadline (unix ms).
type qentry struct {
	user, req string
	deadline  int64
}

// fifo is a queue of qentries kept in partition state as chunks of
// fifoChunk entries under keys 0x00 'q' kind seq (big-endian), so that
// appending rewrites only the tail chunk. Entries are in arrival order,
// which is close to deadline order (served lists arrive roughly in time
// order); the joiner pops the head while it is due, so an early deadline
// behind a late one waits, which delays an expiry but never makes one
// early.
type fifo struct {
	kind       byte
	head, tail uint64 // chunk sequence numbers, head ≤ tail
	pos        int    // entries of the head chunk already popped
	n          int    // entries not popped

	chunks  map[uint64][]qentry // decoded chunks (the head and the tail)
	dirty   map[uint64]bool     // chunks to write (or delete when absent from chunks)
	keyBuf  []byte
	scratch enc
}

const fifoChunk = 512

func newFifo(kind byte) *fifo {
	return &fifo{kind: kind, chunks: map[uint64][]qentry{}, dirty: map[uint64]bool{}}
}

func (q *fifo) key(seq uint64) []byte {
	q.keyBuf = append(q.keyBuf[:0], 0, 'q', q.kind)
	return binary.BigEndian.AppendUint64(q.keyBuf, seq)
}

func (q *fifo) load(b batch, seq uint64) ([]qentry, error) {
	if c, ok := q.chunks[seq]; ok {
		return c, nil
	}
	v, ok, err := b.Get(q.key(seq))
	if err != nil || !ok {
		return nil, err
	}
	d := dec{b: v}
	n := d.count()
	c := make([]qentry, 0, max(n, 16))
	for range n {
		c = append(c, qentry{user: d.str(), req: d.str(), deadline: d.i64()})
	}
	if err := d.done(); err != nil {
		return nil, err
	}
	q.chunks[seq] = c
	return c, nil
}

func (q *fifo) push(b batch, e qentry) error {
	c, err := q.load(b, q.tail)
	if err != nil {
		return err
	}
	if len(c) >= fifoChunk {
		q.tail++
		c = nil
	}
	q.chunks[q.tail] = append(c, e)
	q.dirty[q.tail] = true
	q.n++
	return nil
}

// peek returns the head entry.
func (q *fifo) peek(b batch) (qentry, bool, error) {
	for q.n > 0 {
		c, err := q.load(b, q.head)
		if err != nil {
			return qentry{}, false, err
		}
		if q.pos < len(c) {
			return c[q.pos], true, nil
		}
		if q.head == q.tail {
			break // cannot happen while n > 0: the tail holds the rest
		}
		q.dropHead()
	}
	return qentry{}, false, nil
}

// pop removes the head entry (peek must have returned one).
func (q *fifo) pop() {
	q.pos++
	q.n--
	if q.pos >= fifoChunk && q.head < q.tail {
		q.dropHead()
	}
}

func (q *fifo) dropHead() {
	delete(q.chunks, q.head)
	q.dirty[q.head] = true
	q.head++
	q.pos = 0
}

// flush writes the changed chunks.
func (q *fifo) flush(b batch) error {
	for seq := range q.dirty {
		c, ok := q.chunks[seq]
		if !ok {
			if err := b.Delete(q.key(seq)); err != nil {
				return err
			}
			continue
		}
		e := &q.scratch
		e.b = e.b[:0]
		e.u64(uint64(len(c)))
		for _, x := range c {
			e.str(x.user)
			e.str(x.req)
			e.i64(x.deadline)
		}
		if err := b.Put(q.key(seq), e.b); err != nil {
			return err
		}
	}
	clear(q.dirty)
	// Keep only the head and the tail decoded.
	for seq := range q.chunks {
		if seq != q.head && seq != q.tail {
			delete(q.chunks, seq)
		}
	}
	return nil
}

func (q *fifo) encodePos(e *enc) {
	e.u64(q.head)
	e.u64(q.tail)
	e.u64(uint64(q.pos))
	e.u64(uint64(q.n))
}

func (q *fifo) decodePos(d *dec) {
	q.head, q.tail, q.pos, q.n = d.u64(), d.u64(), int(d.u64()), int(d.u64())
	if q.head > q.tail || q.pos > fifoChunk {
		d.fail("queue position")
	}
}
