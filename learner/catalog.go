package learner

// Catalog interns string ids into dense indices 0, 1, 2, … in order of
// first sight, so models can keep rows in slices and sets as bitsets. The
// index of an id never changes. A Catalog is not safe for concurrent
// writes; concurrent reads of a catalog no one writes are safe.
type Catalog struct {
	ids   []string
	index map[string]int32
}

// NewCatalog returns an empty catalogue.
func NewCatalog() *Catalog {
	return &Catalog{index: make(map[string]int32)}
}

// Intern returns the index of id, adding it if new.
func (c *Catalog) Intern(id string) int32 {
	if i, ok := c.index[id]; ok {
		return i
	}
	i := int32(len(c.ids))
	c.ids = append(c.ids, id)
	c.index[id] = i
	return i
}

// Lookup returns the index of id and whether it is known.
func (c *Catalog) Lookup(id string) (int32, bool) {
	i, ok := c.index[id]
	return i, ok
}

// ID returns the id at index i.
func (c *Catalog) ID(i int32) string { return c.ids[i] }

// Len returns the number of ids interned.
func (c *Catalog) Len() int { return len(c.ids) }
