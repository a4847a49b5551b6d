package archive

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// Store is where archive files live: a local directory or an S3-compatible
// bucket. Keys are slash-separated paths relative to the archive root.
//
// Its one promise the archive's exactly-once protocol rests on: an object
// becomes visible whole or not at all (a local file is written under a
// temporary name, synced and renamed; an S3 PUT is atomic).
type Store interface {
	// Put writes the object key atomically with the bytes of body.
	Put(ctx context.Context, key string, body []byte) error
	// Get reads a whole object; a missing one is an error matching
	// fs.ErrNotExist.
	Get(ctx context.Context, key string) ([]byte, error)
	// Open opens an object for random access (Parquet footers and row
	// groups).
	Open(ctx context.Context, key string) (Object, error)
	// Delete removes an object; a missing one is not an error.
	Delete(ctx context.Context, key string) error
	// List returns the keys under prefix (a folder, "" for all), sorted.
	List(ctx context.Context, prefix string) ([]string, error)
	// String names the store for logs and errors ("/data/archive",
	// "s3://bucket/prefix").
	String() string
}

// Object is an opened archive object.
type Object interface {
	io.ReaderAt
	io.Closer
	Size() int64
}

// OpenStore opens the store named by location: an s3:// URL
// (s3://bucket/prefix; endpoint and credentials from S3Options) or a local
// directory, created if missing. A local directory that cannot be created
// or written is an error now, not at the first flush.
func OpenStore(ctx context.Context, location string, s3 S3Options) (Store, error) {
	if strings.HasPrefix(location, "s3://") {
		return openS3(ctx, location, s3)
	}
	if strings.Contains(location, "://") {
		return nil, fmt.Errorf("archive: location %q: want a directory or s3://bucket/prefix", location)
	}
	return openDir(location)
}

// dirStore is a Store in a local directory.
type dirStore struct{ root string }

func openDir(root string) (*dirStore, error) {
	if root == "" {
		return nil, errors.New("archive: empty archive directory")
	}
	if err := os.MkdirAll(root, 0o755); err != nil {
		return nil, fmt.Errorf("archive: create archive directory: %w", err)
	}
	// Prove now that files can be made here: a read-only or foreign
	// directory should fail at start, with its name, not at the first
	// flush minutes later.
	f, err := os.CreateTemp(root, ".probe-*")
	if err != nil {
		return nil, fmt.Errorf("archive: archive directory %q is not writable: %w", root, err)
	}
	f.Close()
	os.Remove(f.Name())
	return &dirStore{root: root}, nil
}

func (s *dirStore) String() string { return s.root }

func (s *dirStore) path(key string) string { return filepath.Join(s.root, filepath.FromSlash(key)) }

// Put writes body to a temporary file beside key, syncs it, renames it over
// key and syncs the folder, so that after a crash key is either absent,
// its old content or body, never a prefix of it. Temporary names start
// with '.', which readers (Scan, DuckDB's and pyarrow's globs) skip.
func (s *dirStore) Put(_ context.Context, key string, body []byte) (err error) {
	dst := s.path(key)
	dir := filepath.Dir(dst)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("archive: %w", err)
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(dst)+".tmp-*")
	if err != nil {
		return fmt.Errorf("archive: %w", err)
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if _, err := f.Write(body); err != nil {
		return fmt.Errorf("archive: write %s: %w", key, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("archive: sync %s: %w", key, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("archive: close %s: %w", key, err)
	}
	if err := os.Rename(f.Name(), dst); err != nil {
		return fmt.Errorf("archive: rename %s: %w", key, err)
	}
	return syncDir(dir)
}

// cleanTemp removes what a crash inside Put(key) left: temporary files
// beside key. Recovery calls it for the keys of a pending flush and for
// the state file (tempCleaner).
func (s *dirStore) cleanTemp(key string) {
	dst := s.path(key)
	m, _ := filepath.Glob(filepath.Join(filepath.Dir(dst), "."+filepath.Base(dst)+".tmp-*"))
	for _, p := range m {
		os.Remove(p)
	}
}

// tempCleaner is a Store whose Put can leave temporary objects behind.
type tempCleaner interface{ cleanTemp(key string) }

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("archive: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("archive: sync folder %s: %w", dir, err)
	}
	return nil
}

func (s *dirStore) Get(_ context.Context, key string) ([]byte, error) {
	b, err := os.ReadFile(s.path(key))
	if err != nil {
		return nil, fmt.Errorf("archive: %w", err)
	}
	return b, nil
}

type fileObject struct {
	*os.File
	size int64
}

func (o fileObject) Size() int64 { return o.size }

func (s *dirStore) Open(_ context.Context, key string) (Object, error) {
	f, err := os.Open(s.path(key))
	if err != nil {
		return nil, fmt.Errorf("archive: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("archive: %w", err)
	}
	return fileObject{f, st.Size()}, nil
}

func (s *dirStore) Delete(_ context.Context, key string) error {
	err := os.Remove(s.path(key))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("archive: %w", err)
	}
	return nil
}

func (s *dirStore) List(_ context.Context, prefix string) ([]string, error) {
	start := s.path(prefix)
	var keys []string
	err := filepath.WalkDir(start, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) && p == start {
				return filepath.SkipAll
			}
			return err
		}
		if d.IsDir() || strings.HasPrefix(d.Name(), ".") {
			return nil
		}
		rel, err := filepath.Rel(s.root, p)
		if err != nil {
			return err
		}
		keys = append(keys, filepath.ToSlash(rel))
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("archive: list %s: %w", start, err)
	}
	slices.Sort(keys)
	return keys, nil
}

// S3Options says how to reach an S3-compatible bucket. Empty credentials
// fall back to the usual AWS environment variables (AWS_ACCESS_KEY_ID,
// AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN) and then an instance role.
type S3Options struct {
	// Endpoint is host[:port] of the service; "" means AWS S3
	// (s3.amazonaws.com).
	Endpoint string
	// Region of the bucket ("" lets the client discover it).
	Region string
	// Insecure talks plain HTTP (local test servers).
	Insecure  bool
	AccessKey string
	SecretKey string
}

// s3Store is a Store in an S3-compatible bucket, through minio-go: a small,
// well-kept client (Apache-2.0) that speaks to AWS S3 and to any
// S3-compatible service with one dependency tree, where the AWS SDK v2
// would bring a dozen modules for the five calls used here.
type s3Store struct {
	cl     *minio.Client
	bucket string
	prefix string // "" or "a/b/" (with the slash)
	name   string
}

func openS3(ctx context.Context, location string, o S3Options) (*s3Store, error) {
	u, err := url.Parse(location)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("archive: location %q: want s3://bucket[/prefix]", location)
	}
	endpoint := o.Endpoint
	if endpoint == "" {
		endpoint = "s3.amazonaws.com"
	}
	var creds *credentials.Credentials
	if o.AccessKey != "" {
		creds = credentials.NewStaticV4(o.AccessKey, o.SecretKey, "")
	} else {
		creds = credentials.NewChainCredentials([]credentials.Provider{&credentials.EnvAWS{}, &credentials.IAM{}})
	}
	cl, err := minio.New(endpoint, &minio.Options{Creds: creds, Secure: !o.Insecure, Region: o.Region})
	if err != nil {
		return nil, fmt.Errorf("archive: s3 client for %s: %w", endpoint, err)
	}
	s := &s3Store{cl: cl, bucket: u.Host, name: location}
	if p := strings.Trim(u.Path, "/"); p != "" {
		s.prefix = p + "/"
	}
	ok, err := cl.BucketExists(ctx, s.bucket)
	if err != nil {
		return nil, fmt.Errorf("archive: %s: %w", location, err)
	}
	if !ok {
		return nil, fmt.Errorf("archive: %s: bucket %q does not exist", location, s.bucket)
	}
	return s, nil
}

func (s *s3Store) String() string { return s.name }

func (s *s3Store) Put(ctx context.Context, key string, body []byte) error {
	_, err := s.cl.PutObject(ctx, s.bucket, s.prefix+key, bytes.NewReader(body), int64(len(body)),
		minio.PutObjectOptions{ContentType: "application/octet-stream", DisableMultipart: len(body) < 64<<20})
	if err != nil {
		return fmt.Errorf("archive: put %s: %w", key, err)
	}
	return nil
}

func (s *s3Store) notFound(err error) bool {
	return minio.ToErrorResponse(err).Code == minio.NoSuchKey
}

func (s *s3Store) Get(ctx context.Context, key string) ([]byte, error) {
	o, err := s.cl.GetObject(ctx, s.bucket, s.prefix+key, minio.GetObjectOptions{})
	if err != nil {
		return nil, fmt.Errorf("archive: get %s: %w", key, err)
	}
	defer o.Close()
	b, err := io.ReadAll(o)
	if err != nil {
		if s.notFound(err) {
			return nil, fmt.Errorf("archive: get %s: %w", key, fs.ErrNotExist)
		}
		return nil, fmt.Errorf("archive: get %s: %w", key, err)
	}
	return b, nil
}

type s3Object struct {
	*minio.Object
	size int64
}

func (o s3Object) Size() int64 { return o.size }

func (s *s3Store) Open(ctx context.Context, key string) (Object, error) {
	o, err := s.cl.GetObject(ctx, s.bucket, s.prefix+key, minio.GetObjectOptions{})
	if err != nil {
		return nil, fmt.Errorf("archive: open %s: %w", key, err)
	}
	st, err := o.Stat()
	if err != nil {
		o.Close()
		if s.notFound(err) {
			return nil, fmt.Errorf("archive: open %s: %w", key, fs.ErrNotExist)
		}
		return nil, fmt.Errorf("archive: open %s: %w", key, err)
	}
	return s3Object{o, st.Size}, nil
}

func (s *s3Store) Delete(ctx context.Context, key string) error {
	if err := s.cl.RemoveObject(ctx, s.bucket, s.prefix+key, minio.RemoveObjectOptions{}); err != nil && !s.notFound(err) {
		return fmt.Errorf("archive: delete %s: %w", key, err)
	}
	return nil
}

func (s *s3Store) List(ctx context.Context, prefix string) ([]string, error) {
	var keys []string
	for o := range s.cl.ListObjects(ctx, s.bucket, minio.ListObjectsOptions{Prefix: s.prefix + prefix, Recursive: true}) {
		if o.Err != nil {
			return nil, fmt.Errorf("archive: list %s: %w", prefix, o.Err)
		}
		keys = append(keys, strings.TrimPrefix(o.Key, s.prefix))
	}
	slices.Sort(keys)
	return keys, nil
}
