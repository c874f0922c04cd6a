package coordinator

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nkeys"
)

// WorkerKeys is the registry of the workers' own nkeys (NATSConfig.WorkerNkeysFile, `vlp
// coordinator start --nats-worker-nkeys`): the public key of every worker that may join, each
// with a name for the logs. The file is what `vlp nkeys --workers` writes as workers.pub, one
// worker per line:
//
//	# comments and blank lines are ignored
//	UDXU4RCSJNZOIQHZNWXHXORDPRTGNJAHAHFRGZNEEJCPQTT2M7NLCNF4 w1
//	UCK5N7N66OBOINFXAYC2ACJQYFSOD4VYNU6APEJTAVFZB2SVHLKGEW7L w2
//
// Only public keys are in it: the coordinators hold no worker secret. Removing a line revokes
// that worker: the coordinators reread the file (Config.WorkerKeysPoll), their embedded servers
// disconnect the key, and the leader removes its members from the job.
type WorkerKeys struct {
	names map[string]string // public key → name
	keys  []string          // in file order
}

// ParseWorkerKeys reads a registry; source names it in errors.
func ParseWorkerKeys(data []byte, source string) (*WorkerKeys, error) {
	k := &WorkerKeys{names: map[string]string{}}
	byName := map[string]int{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Fields(line)
		key := f[0]
		if len(f) > 2 {
			return nil, fmt.Errorf("%s:%d: want \"<public user nkey> [name]\", got %d fields", source, n, len(f))
		}
		if !nkeys.IsValidPublicUserKey(key) {
			what := "not a public user nkey (U…)"
			if strings.HasPrefix(key, "SU") {
				what = "a seed, which is the worker's secret: give its public key (the .pub file `vlp nkeys` wrote beside it)"
			}
			return nil, fmt.Errorf("%s:%d: %.12s…: %s", source, n, key, what)
		}
		name := key[:8]
		if len(f) == 2 {
			name = f[1]
		}
		if _, dup := k.names[key]; dup {
			return nil, fmt.Errorf("%s:%d: key %.12s… listed twice", source, n, key)
		}
		if first, dup := byName[name]; dup {
			return nil, fmt.Errorf("%s:%d: name %q already names the key on line %d", source, n, name, first)
		}
		byName[name] = n
		k.names[key] = name
		k.keys = append(k.keys, key)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", source, err)
	}
	return k, nil
}

// LoadWorkerKeys reads the registry file at path.
func LoadWorkerKeys(path string) (*WorkerKeys, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return ParseWorkerKeys(b, path)
}

// Has reports whether key is registered. A nil registry has no key.
func (k *WorkerKeys) Has(key string) bool {
	if k == nil {
		return false
	}
	_, ok := k.names[key]
	return ok
}

// Name is the name the registry gives key, or its first characters.
func (k *WorkerKeys) Name(key string) string {
	if k != nil {
		if n, ok := k.names[key]; ok {
			return n
		}
	}
	return shortKey(key)
}

// Keys are the registered public keys in file order.
func (k *WorkerKeys) Keys() []string {
	if k == nil {
		return nil
	}
	return slices.Clone(k.keys)
}

// Len is the number of registered keys.
func (k *WorkerKeys) Len() int {
	if k == nil {
		return 0
	}
	return len(k.keys)
}

// shortKey prints a public key in logs and errors: enough to recognise it.
func shortKey(key string) string {
	if len(key) <= 12 {
		return key
	}
	return key[:12] + "…"
}

// WorkerNkeyPermissions are the NATS permissions of the one worker that authenticates with the
// public nkey key: publish its own worker operations (Subjects.WorkerOp(key, op)), ring frames to
// any rank (its neighbours change with every generation) and step summaries; subscribe only its
// own reply inboxes (WorkerInbox(job, key)), its own ring links (Subjects.WorkerRing(key)) and the
// job's events. It cannot read another worker's replies or ring frames, nor call an operation as
// another worker: the coordinator takes the key in the subject as the caller's identity.
func WorkerNkeyPermissions(job, key string) *server.Permissions {
	sub := Subjects{Job: job}
	pub := []string{sub.Ring(), sub.Prefix() + ".events.step"}
	for _, op := range WorkerOps {
		pub = append(pub, sub.WorkerOp(key, op))
	}
	return &server.Permissions{
		Publish:   &server.SubjectPermission{Allow: pub},
		Subscribe: &server.SubjectPermission{Allow: []string{WorkerInbox(job, key) + ".>", sub.WorkerRing(key) + ".>", sub.Events()}},
	}
}

// sharedNkeyPermissions are WorkerPermissions plus the worker operations on the subjects of the
// shared worker nkey itself, so that a worker on the shared nkey calls them the way a worker on
// its own nkey does (`vlp worker join` cannot tell the two apart). Every holder of the shared key
// is the same identity to the coordinator, as every holder of the shared password is.
func sharedNkeyPermissions(job, key string) *server.Permissions {
	p := WorkerPermissions(job)
	sub := Subjects{Job: job}
	for _, op := range WorkerOps {
		p.Publish.Allow = append(p.Publish.Allow, sub.WorkerOp(key, op))
	}
	return p
}
