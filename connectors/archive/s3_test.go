package archive

import (
	"context"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/eddyrec/eddy/internal/testkafka"
	"github.com/eddyrec/eddy/internal/testmoto"
)

func TestS3ArchiveExactlyOnce(t *testing.T) {
	endpoint := testmoto.Start(t, "")
	ctx := context.Background()
	opts := S3Options{Endpoint: endpoint, Insecure: true, Region: testmoto.Region, AccessKey: "test", SecretKey: "test"}
	mc := testmoto.Client(t, endpoint)
	if _, err := OpenStore(ctx, "s3://eddy-test/archive", opts); err == nil {
		t.Fatal("a missing bucket must be an error at start")
	}
	if err := mc.MakeBucket(ctx, "eddy-test", minio.MakeBucketOptions{Region: testmoto.Region}); err != nil {
		t.Fatal(err)
	}
	st, err := OpenStore(ctx, "s3://eddy-test/archive", opts)
	if err != nil {
		t.Fatal(err)
	}
	k := testkafka.Start(t, 3)
	want := produceSynthetic(t, k, 3, 4000)
	_, stop := runRole(t, k, st, testConfig())
	rows := waitRows(t, st, len(want), 60*time.Second)
	stop()
	checkExactlyOnce(t, rows, want)
	// The objects are where the layout says, under the URL's prefix.
	n := 0
	for o := range mc.ListObjects(ctx, "eddy-test", minio.ListObjectsOptions{Prefix: "archive/events/dt=", Recursive: true}) {
		if o.Err != nil {
			t.Fatal(o.Err)
		}
		if _, ok := parseFileKey(Events, o.Key[len("archive/"):]); !ok {
			t.Fatalf("unexpected object %s", o.Key)
		}
		n++
	}
	if n == 0 {
		t.Fatal("no event files in the bucket")
	}
	// A half-written flush left behind is undone on restart: simulate the
	// state a crash after the first file leaves.
	keys, _ := Files(ctx, st, Events, time.Time{}, time.Time{})
	s, _, err := loadState(ctx, st, Events, 0)
	if err != nil {
		t.Fatal(err)
	}
	orphan := fileKey(Events, hourOf(time.Now().UnixMilli()), 0, s.Next, s.Next+10)
	if err := st.Put(ctx, orphan, []byte("not parquet")); err != nil {
		t.Fatal(err)
	}
	s.Pending = &flush{First: s.Next, Last: s.Next + 10, Files: []string{orphan}}
	if err := saveState(ctx, st, Events, 0, s); err != nil {
		t.Fatal(err)
	}
	if got, _ := Files(ctx, st, Events, time.Time{}, time.Time{}); len(got) != len(keys) {
		t.Fatalf("a pending flush's file is listed as committed: %d files, want %d", len(got), len(keys))
	}
	if _, undone, err := recoverState(ctx, st, Events, 0); err != nil || undone != 1 {
		t.Fatalf("recover: %d undone, %v", undone, err)
	}
	if _, err := st.Get(ctx, orphan); err == nil {
		t.Fatal("the pending flush's file is still there")
	}
}
