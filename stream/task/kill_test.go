package task

import (
	"context"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"time"
)

// Environment of the child process of TestKill9.
const (
	envChild   = "EDDY_TASK_KILL9_CHILD"
	envBrokers = "EDDY_TASK_KILL9_BROKERS"
	envSource  = "EDDY_TASK_KILL9_SOURCE"
	envOut     = "EDDY_TASK_KILL9_OUT"
	envGroup   = "EDDY_TASK_KILL9_GROUP"
	envDir     = "EDDY_TASK_KILL9_DIR"
)

func kill9Config(brokers []string, source, out, group, dir string) Config {
	cfg := DefaultConfig()
	cfg.Client.Brokers = brokers
	cfg.Group, cfg.Store, cfg.Topic, cfg.DataDir = group, "counts", source, dir
	cfg.InstanceID = "kill9-member"
	cfg.MaxBatchRecords = 100
	cfg.SessionTimeout = 10 * time.Second
	cfg.TransactionTimeout = 10 * time.Second
	cfg.LagCommitInterval = 100 * time.Millisecond
	return cfg
}

// TestKill9Child is the process TestKill9 kills; it is skipped unless run
// by TestKill9.
func TestKill9Child(t *testing.T) {
	if os.Getenv(envChild) == "" {
		t.Skip("helper process of TestKill9")
	}
	cfg := kill9Config(strings.Split(os.Getenv(envBrokers), ","), os.Getenv(envSource), os.Getenv(envOut),
		os.Getenv(envGroup), os.Getenv(envDir))
	// Widen the windows inside a commit (records sent, transaction open;
	// transaction committed, local store not yet written) so that kills
	// land in them, not only between batches.
	cfg.hooks = &hooks{crash: func(_ int32, at crashPoint) bool {
		if at == crashAfterProduce || at == crashAfterKafkaCommit {
			time.Sleep(2 * time.Millisecond)
		}
		return false
	}}
	rt, err := New(cfg, counterFactory(os.Getenv(envOut)), nil, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	// Runs until killed; a clean return is a failure of the harness.
	t.Fatalf("Run returned: %v", rt.Run(context.Background()))
}

// TestKill9 runs the runtime in child processes and kills them with
// SIGKILL at random moments while records keep arriving, then lets a last
// runtime finish: every record must have exactly one output and the counts
// must be exact.
func TestKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("kills child processes; skipped in -short")
	}
	e := newEnv(t, 3)
	dir := t.TempDir()
	rng := rand.New(rand.NewPCG(9, 9))
	kills := 8
	inTxn := 0 // kills that left a transaction open
	for i := 0; i < kills; i++ {
		e.produce(t, 300+rng.IntN(500), 40)
		cmd := exec.Command(os.Args[0], "-test.run=^TestKill9Child$", "-test.count=1")
		cmd.Env = append(os.Environ(),
			envChild+"=1",
			envBrokers+"="+strings.Join(e.k.Brokers, ","),
			envSource+"="+e.source,
			envOut+"="+e.out,
			envGroup+"="+e.group,
			envDir+"="+dir,
		)
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// Keep records coming while the child lives, so that the kill
		// lands inside batches, transactions and restores.
		life := time.Duration(300+rng.IntN(900)) * time.Millisecond
		for deadline := time.Now().Add(life); time.Now().Before(deadline); {
			e.produce(t, 20+rng.IntN(60), 40)
			time.Sleep(time.Duration(rng.IntN(10)) * time.Millisecond)
		}
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		err := cmd.Wait()
		if openTxn(t, e) {
			inTxn++
		}
		if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() {
			t.Fatalf("child %d ended before it was killed: %v", i, err)
		}
	}
	// The children must have done part of the work, or the kills proved
	// nothing.
	before := len(readCommitted(t, e.k, e.out))
	t.Logf("%d kills, %d inside an open transaction; the children committed %d of %d outputs", kills, inTxn, before, e.nsent)
	if before == 0 {
		t.Fatal("no child committed anything before being killed")
	}
	// The last runtime, in this process, finishes the work.
	cfg := kill9Config(e.k.Brokers, e.source, e.out, e.group, dir)
	cfg.Client = e.k.Client()
	r := start(t, cfg, counterFactory(e.out))
	// Work left for it on every partition, even when the last child
	// committed everything to Kafka (it may have been killed after its
	// transaction committed and before its local store was written): an
	// output of this runtime means it restored first, and it stops only
	// after writing its store, so the counts below are its own.
	e.produce(t, 120, 40)
	outs := e.waitOutputs(t, e.nsent, 60*time.Second)
	if err := r.stop(t); err != nil {
		t.Fatal(err)
	}
	e.checkOutputs(t, outs)
	e.checkCounts(t, storeCounts(t, filepath.Join(dir, cfg.Group+"-"+cfg.Store)))
}

// openTxn reports whether the output topic has an unfinished transaction:
// its last stable offset is behind its high watermark.
func openTxn(t *testing.T, e *env) bool {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	adm := kadmClient(t, e)
	lso, err := adm.ListCommittedOffsets(ctx, e.out)
	if err != nil {
		t.Fatal(err)
	}
	hwm, err := adm.ListEndOffsets(ctx, e.out)
	if err != nil {
		t.Fatal(err)
	}
	open := false
	lso.Each(func(o kadm.ListedOffset) {
		if h, ok := hwm.Lookup(o.Topic, o.Partition); ok && h.Offset > o.Offset {
			open = true
		}
	})
	return open
}
