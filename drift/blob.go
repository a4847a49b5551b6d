package drift

import (
	"encoding/binary"
	"fmt"
	"strconv"

	"github.com/eddyrec/eddy/stream/task"
)

// blobChunk is the largest piece of a state value written under one key:
// the runtime refuses values over task.MaxValueLen, and drift states (a
// reference, a partition with its join) can be several megabytes.
const blobChunk = 512 << 10

// putBlob stores v under name as chunks name/0 … name/n-1 and the chunk
// count under name/n, deleting chunks a longer previous value left.
func putBlob(b *task.Batch, name string, v []byte) error {
	old, err := blobChunks(b, name)
	if err != nil {
		return err
	}
	n := (len(v) + blobChunk - 1) / blobChunk
	for i := range n {
		if err := b.Put(chunkKey(name, i), v[i*blobChunk:min((i+1)*blobChunk, len(v))]); err != nil {
			return fmt.Errorf("drift: store %s: %w", name, err)
		}
	}
	for i := n; i < old; i++ {
		if err := b.Delete(chunkKey(name, i)); err != nil {
			return fmt.Errorf("drift: store %s: %w", name, err)
		}
	}
	var cnt [4]byte
	binary.LittleEndian.PutUint32(cnt[:], uint32(n))
	if err := b.Put([]byte(name+"/n"), cnt[:]); err != nil {
		return fmt.Errorf("drift: store %s: %w", name, err)
	}
	return nil
}

// getBlob reads a value written by putBlob into a fresh slice.
func getBlob(b *task.Batch, name string) ([]byte, bool, error) {
	n, err := blobChunks(b, name)
	if err != nil || n < 0 {
		return nil, false, err
	}
	var out []byte
	for i := range n {
		c, ok, err := b.Get(chunkKey(name, i))
		if err != nil {
			return nil, false, fmt.Errorf("drift: load %s: %w", name, err)
		}
		if !ok {
			return nil, false, fmt.Errorf("drift: load %s: chunk %d of %d missing", name, i, n)
		}
		out = append(out, c...)
	}
	if out == nil {
		out = []byte{}
	}
	return out, true, nil
}

// blobChunks returns the stored chunk count of name, or -1 when absent.
func blobChunks(b *task.Batch, name string) (int, error) {
	v, ok, err := b.Get([]byte(name + "/n"))
	if err != nil {
		return 0, fmt.Errorf("drift: load %s: %w", name, err)
	}
	if !ok {
		return -1, nil
	}
	if len(v) != 4 {
		return 0, fmt.Errorf("drift: load %s: chunk count of %d bytes", name, len(v))
	}
	n := binary.LittleEndian.Uint32(v)
	if n > task.MaxValueLen { // far beyond any real state: corrupt
		return 0, fmt.Errorf("drift: load %s: %d chunks", name, n)
	}
	return int(n), nil
}

func chunkKey(name string, i int) []byte {
	return strconv.AppendInt([]byte(name+"/"), int64(i), 10)
}
