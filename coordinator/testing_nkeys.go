package coordinator

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"
)

// TestWorkerKeys are per-worker nkeys for tests, as `vlp nkeys --workers` makes them: a seed file
// per worker and the registry (File) that NATSConfig.WorkerNkeysFile reads.
type TestWorkerKeys struct {
	t     testing.TB
	File  string
	dir   string
	names []string
	pubs  map[string]string
	live  map[string]bool
}

// NewTestWorkerKeys makes one nkey per name and writes the registry with all of them.
func NewTestWorkerKeys(t testing.TB, names ...string) *TestWorkerKeys {
	t.Helper()
	k := &TestWorkerKeys{t: t, dir: t.TempDir(), pubs: map[string]string{}, live: map[string]bool{}}
	k.File = filepath.Join(k.dir, "workers.pub")
	for _, name := range names {
		k.Add(name)
	}
	return k
}

// Add makes a key for name, writes its seed and registers it.
func (k *TestWorkerKeys) Add(name string) {
	k.t.Helper()
	kp, err := nkeys.CreateUser()
	if err != nil {
		k.t.Fatal(err)
	}
	seed, _ := kp.Seed()
	pub, _ := kp.PublicKey()
	if err := os.WriteFile(k.Seed(name), seed, 0o600); err != nil {
		k.t.Fatal(err)
	}
	k.names = append(k.names, name)
	k.pubs[name], k.live[name] = pub, true
	k.write()
}

// Revoke removes name's key from the registry (its seed stays, as a revoked worker's would).
func (k *TestWorkerKeys) Revoke(name string) {
	k.t.Helper()
	k.live[name] = false
	k.write()
}

func (k *TestWorkerKeys) write() {
	var b strings.Builder
	b.WriteString("# test workers\n")
	for _, n := range k.names {
		if k.live[n] {
			b.WriteString(k.pubs[n] + " " + n + "\n")
		}
	}
	// Written aside and renamed, as an operator's tooling should: a reader never sees half a file.
	tmp := k.File + ".tmp"
	if err := os.WriteFile(tmp, []byte(b.String()), 0o644); err != nil {
		k.t.Fatal(err)
	}
	if err := os.Rename(tmp, k.File); err != nil {
		k.t.Fatal(err)
	}
}

// Seed is the path of name's seed file.
func (k *TestWorkerKeys) Seed(name string) string { return filepath.Join(k.dir, name+".nk") }

// Pub is name's public key.
func (k *TestWorkerKeys) Pub(name string) string { return k.pubs[name] }

// Options are the NATS options of worker name: its nkey and its own inbox prefix, as `vlp worker
// join --nats-nkey-seed` sets them.
func (k *TestWorkerKeys) Options(job, name string) []nats.Option {
	k.t.Helper()
	opt, err := nats.NkeyOptionFromSeed(k.Seed(name))
	if err != nil {
		k.t.Fatal(err)
	}
	return []nats.Option{opt, nats.CustomInboxPrefix(WorkerInbox(job, k.Pub(name)))}
}
