package archive

import (
	"fmt"
	"path"
	"strconv"
	"strings"
	"time"
)

// The folder layout, under the archive root:
//
//	<kind>/dt=YYYY-MM-DD/hour=HH/part-<partition>-<first>-<last>.parquet
//	_state/<kind>/partition-<partition>.json
//
// Event time (recs: serving time) decides dt and hour, in UTC. A file's
// name carries its flush's offset range.

// hourOf is the start of the UTC hour of ms (unix milliseconds).
func hourOf(ms int64) int64 {
	const hour = int64(time.Hour / time.Millisecond)
	h := ms / hour * hour
	if ms < 0 && h != ms {
		h -= hour
	}
	return h
}

func timeMillis(ms int64) time.Time { return time.UnixMilli(ms).UTC() }

// hourDir is "<kind>/dt=YYYY-MM-DD/hour=HH" for the hour starting at h.
func hourDir(k Kind, h int64) string {
	t := timeMillis(h)
	return fmt.Sprintf("%s/dt=%s/hour=%02d", k, t.Format(time.DateOnly), t.Hour())
}

// fileName is the name of a flush's file in one hour folder.
func fileName(partition int32, first, last int64) string {
	return fmt.Sprintf("part-%d-%d-%d.parquet", partition, first, last)
}

// fileKey is the key of a flush's file for the hour starting at h.
func fileKey(k Kind, h int64, partition int32, first, last int64) string {
	return hourDir(k, h) + "/" + fileName(partition, first, last)
}

// stateKey is where a partition's archive state (its checkpoint) lives.
func stateKey(k Kind, partition int32) string {
	return fmt.Sprintf("_state/%s/partition-%d.json", k, partition)
}

// fileInfo is what a file's key says about it.
type fileInfo struct {
	key       string
	hour      int64 // start of the folder's hour, unix ms
	partition int32
	first     int64
	last      int64
}

// parseFileKey reads a data file's key; ok is false for anything else
// (temporary files, state, foreign files a user put there).
func parseFileKey(k Kind, key string) (fileInfo, bool) {
	rest, ok := strings.CutPrefix(key, string(k)+"/dt=")
	if !ok || len(rest) < len("YYYY-MM-DD/hour=HH/") {
		return fileInfo{}, false
	}
	day, err := time.Parse(time.DateOnly, rest[:10])
	if err != nil || !strings.HasPrefix(rest[10:], "/hour=") {
		return fileInfo{}, false
	}
	rest = rest[len("YYYY-MM-DD/hour="):]
	hh, err := strconv.Atoi(rest[:2])
	if err != nil || hh < 0 || hh > 23 || rest[2] != '/' {
		return fileInfo{}, false
	}
	name := path.Base(rest[3:])
	if name != rest[3:] {
		return fileInfo{}, false
	}
	name, ok = strings.CutSuffix(name, ".parquet")
	if !ok {
		return fileInfo{}, false
	}
	parts := strings.Split(name, "-")
	if len(parts) != 4 || parts[0] != "part" {
		return fileInfo{}, false
	}
	p, err1 := strconv.ParseInt(parts[1], 10, 32)
	first, err2 := strconv.ParseInt(parts[2], 10, 64)
	last, err3 := strconv.ParseInt(parts[3], 10, 64)
	if err1 != nil || err2 != nil || err3 != nil || first > last {
		return fileInfo{}, false
	}
	return fileInfo{
		key:       key,
		hour:      day.Add(time.Duration(hh) * time.Hour).UnixMilli(),
		partition: int32(p),
		first:     first,
		last:      last,
	}, true
}
