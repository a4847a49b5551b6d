package stream

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"syscall"

	"github.com/twmb/franz-go/pkg/kfake"
)

// EmbeddedConfig configures the in-process broker.
type EmbeddedConfig struct {
	// Addr is the TCP address to listen on, e.g. "127.0.0.1:9092". Port 0
	// picks a free port (see EmbeddedBroker.Addr).
	Addr string
	// DataDir persists topics, records and committed offsets. Empty keeps
	// everything in memory (tests).
	DataDir string
	// SyncWrites fsyncs every produced batch: slower, but an acknowledged
	// record survives a power cut, not only a process crash.
	SyncWrites bool
	// DefaultPartitions is used for topics created without a count.
	DefaultPartitions int
	Logger            *slog.Logger
}

// EmbeddedBroker is franz-go's kfake served on a real TCP port: any Kafka
// client (franz-go, kcat, the Java client) can connect to it.
type EmbeddedBroker struct {
	cluster *kfake.Cluster
	addr    string
	lock    *os.File
	newLog  bool
}

// StartEmbedded starts the broker. With a DataDir it takes an exclusive lock
// on the directory (kfake itself does not lock, and two brokers writing one
// log corrupt it), reloads what an earlier run persisted, and gives a new log
// a random cluster id so that consumers can tell a wiped log from the old one.
func StartEmbedded(cfg EmbeddedConfig) (*EmbeddedBroker, error) {
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	host, portStr, err := net.SplitHostPort(cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("stream: embedded broker address %q: %w", cfg.Addr, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil || port < 0 || port > 65535 {
		return nil, fmt.Errorf("stream: embedded broker address %q: bad port", cfg.Addr)
	}
	if host == "" {
		host = "127.0.0.1"
	}
	// Listen ourselves so that port 0 works and the host is honoured; kfake
	// asks for 127.0.0.1:<port>, and we hand it our listener instead.
	ln, err := net.Listen("tcp", net.JoinHostPort(host, portStr))
	if err != nil {
		return nil, fmt.Errorf("stream: embedded broker listen on %s: %w", cfg.Addr, err)
	}
	b := &EmbeddedBroker{addr: ln.Addr().String()}
	opts := []kfake.Opt{
		kfake.NumBrokers(1),
		kfake.ListenFn(func(string, string) (net.Listener, error) { return ln, nil }),
	}
	if cfg.DefaultPartitions > 0 {
		opts = append(opts, kfake.DefaultNumPartitions(cfg.DefaultPartitions))
	}
	if cfg.DataDir != "" {
		if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
			ln.Close()
			return nil, fmt.Errorf("stream: embedded broker data dir: %w", err)
		}
		lock, err := lockDir(cfg.DataDir)
		if err != nil {
			ln.Close()
			return nil, err
		}
		b.lock = lock
		opts = append(opts, kfake.DataDir(cfg.DataDir))
		if _, err := os.Stat(filepath.Join(cfg.DataDir, "meta.json")); errors.Is(err, os.ErrNotExist) {
			b.newLog = true
			opts = append(opts, kfake.ClusterID(newClusterID()))
		}
		if cfg.SyncWrites {
			opts = append(opts, kfake.SyncWrites())
		}
	} else {
		b.newLog = true
		opts = append(opts, kfake.ClusterID(newClusterID()))
	}
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		ln.Close()
		b.unlock()
		return nil, fmt.Errorf("stream: start embedded broker: %w", err)
	}
	b.cluster = c
	log.Info("embedded broker started", "addr", b.addr, "data_dir", cfg.DataDir, "new_log", b.newLog)
	return b, nil
}

// Addr is the address clients connect to.
func (b *EmbeddedBroker) Addr() string { return b.addr }

// NewLog reports whether this start created a new, empty log (no earlier
// persisted state was found).
func (b *EmbeddedBroker) NewLog() bool { return b.newLog }

// Close stops the broker, writes its final state and releases the lock.
func (b *EmbeddedBroker) Close() {
	if b.cluster != nil {
		b.cluster.Close()
	}
	b.unlock()
}

func (b *EmbeddedBroker) unlock() {
	if b.lock != nil {
		_ = syscall.Flock(int(b.lock.Fd()), syscall.LOCK_UN)
		b.lock.Close()
		b.lock = nil
	}
}

// ErrDataDirLocked means another process holds the data directory.
var ErrDataDirLocked = errors.New("data directory is in use by another process")

// lockDir takes a non-blocking exclusive flock on dir/LOCK. The lock dies
// with the process, so a kill -9 never leaves a stale lock behind.
func lockDir(dir string) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(dir, "LOCK"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("stream: lock %s: %w", dir, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("stream: %s: %w", dir, ErrDataDirLocked)
		}
		return nil, fmt.Errorf("stream: lock %s: %w", dir, err)
	}
	return f, nil
}

func newClusterID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return "eddy-" + hex.EncodeToString(b[:])
}
