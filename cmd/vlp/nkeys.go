package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/e2evlp/vlp/coordinator"
	"github.com/nats-io/nkeys"
	"github.com/urfave/cli/v2"
)

var nkeysCommand = &cli.Command{
	Name:  "nkeys",
	Usage: "make the operator's and the workers' NATS nkeys (seed files and public keys)",
	Description: "Writes user nkey seeds, mode 0600, into --out, their public keys beside them (.pub), and\n" +
		"prints the flags that use them.\n\n" +
		"Without --workers: operator.nk and worker.nk, the workers' shared key. The coordinators get\n" +
		"--nats-nkey-seed operator.nk (the operator may do anything) and --nats-worker-nkey <the worker's\n" +
		"public key> (the workers' restricted permissions); workers use --nats-nkey-seed worker.nk.\n\n" +
		"With --workers w1,w2,…: one key per worker, workers/<name>.nk, and the registry workers.pub\n" +
		"(public keys and names) that coordinators read with --nats-worker-nkeys; operator.nk is made if\n" +
		"missing and kept otherwise, and new workers are appended to an existing registry, so the\n" +
		"command adds workers to a running job. Each worker gets only its own seed: its NATS permissions\n" +
		"cover its own subjects, inbox and ring links, and the coordinator takes the key as the worker's\n" +
		"identity. To revoke a worker, delete its line from workers.pub: the coordinators reread it.\n\n" +
		"A seed is a secret: keep operator.nk off the workers, and each worker's seed on its own host.",
	Flags: []cli.Flag{
		&cli.StringFlag{Name: "out", Value: ".", Usage: "directory for the seeds and public keys"},
		&cli.StringFlag{Name: "workers", Usage: "comma-separated worker names: one nkey per worker and the registry workers.pub, instead of the shared worker.nk"},
		&cli.BoolFlag{Name: "force", Usage: "overwrite existing seed files (the clients holding the old seed are locked out)"},
	},
	Action: makeNkeys,
}

// workerName is what a worker may be called in the registry and as a file name.
var workerName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$`)

func makeNkeys(c *cli.Context) error {
	dir := c.String("out")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("--out: %w", err)
	}
	if c.IsSet("workers") {
		return makeWorkerNkeys(c, dir)
	}
	pubs := map[string]string{}
	for _, name := range []string{"operator", "worker"} {
		pub, err := writeNkey(dir, name, c.Bool("force"))
		if err != nil {
			return err
		}
		pubs[name] = pub
		fmt.Fprintf(c.App.Writer, "%s: %s (public key %s)\n", name, filepath.Join(dir, name+".nk"), pub)
	}
	op, wk := filepath.Join(dir, "operator.nk"), filepath.Join(dir, "worker.nk")
	fmt.Fprintf(c.App.Writer, "\ncoordinators:      vlp coordinator start --nats-nkey-seed %s --nats-worker-nkey %s …\n", op, pubs["worker"])
	fmt.Fprintf(c.App.Writer, "operator commands: --nats-nkey-seed %s\n", op)
	fmt.Fprintf(c.App.Writer, "workers:           vlp worker join --nats-nkey-seed %s …\n", wk)
	return nil
}

// makeWorkerNkeys makes one key per --workers name and appends them to workers.pub; the
// operator's key is made only if it is missing.
func makeWorkerNkeys(c *cli.Context, dir string) error {
	var names []string
	for _, n := range strings.Split(c.String("workers"), ",") {
		if n = strings.TrimSpace(n); n == "" {
			continue
		}
		if !workerName.MatchString(n) {
			return fmt.Errorf("--workers: %q: a name is 1-64 letters, digits, '-' or '_'", n)
		}
		names = append(names, n)
	}
	if len(names) == 0 {
		return fmt.Errorf("--workers: no name given")
	}
	op := filepath.Join(dir, "operator.nk")
	if _, err := os.Stat(op); errors.Is(err, fs.ErrNotExist) {
		pub, err := writeNkey(dir, "operator", false)
		if err != nil {
			return err
		}
		fmt.Fprintf(c.App.Writer, "operator: %s (public key %s)\n", op, pub)
	} else if err != nil {
		return err
	} else {
		fmt.Fprintf(c.App.Writer, "operator: %s (kept)\n", op)
	}
	registry := filepath.Join(dir, "workers.pub")
	old, err := os.ReadFile(registry)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	existing, err := coordinator.ParseWorkerKeys(old, registry)
	if err != nil {
		return err
	}
	kept := map[string]bool{} // names whose old line stays
	var lines []string
	for _, k := range existing.Keys() {
		kept[existing.Name(k)] = true
		lines = append(lines, k+" "+existing.Name(k))
	}
	wdir := filepath.Join(dir, "workers")
	if err := os.MkdirAll(wdir, 0o700); err != nil {
		return err
	}
	for _, n := range names {
		if kept[n] && !c.Bool("force") {
			return fmt.Errorf("worker %q is already in %s (--force to give it a new key: its old seed is locked out)", n, registry)
		}
		pub, err := writeNkey(wdir, n, c.Bool("force"))
		if err != nil {
			return err
		}
		line := pub + " " + n
		if i := indexOfName(lines, n); i >= 0 {
			lines[i] = line
		} else {
			lines = append(lines, line)
		}
		kept[n] = true
		fmt.Fprintf(c.App.Writer, "worker %s: %s (public key %s)\n", n, filepath.Join(wdir, n+".nk"), pub)
	}
	body := "# vlp worker nkeys: <public key> <name>; delete a line to revoke that worker\n" + strings.Join(lines, "\n") + "\n"
	tmp := registry + ".tmp"
	if err := os.WriteFile(tmp, []byte(body), 0o644); err != nil {
		return err
	}
	if err := os.Rename(tmp, registry); err != nil { // a coordinator rereading it never sees half a file
		return err
	}
	fmt.Fprintf(c.App.Writer, "registry: %s (%d workers)\n", registry, len(lines))
	fmt.Fprintf(c.App.Writer, "\ncoordinators:      vlp coordinator start --nats-nkey-seed %s --nats-worker-nkeys %s …\n", op, registry)
	fmt.Fprintf(c.App.Writer, "operator commands: --nats-nkey-seed %s\n", op)
	fmt.Fprintf(c.App.Writer, "worker NAME:       vlp worker join --nats-nkey-seed %s …\n", filepath.Join(wdir, "NAME.nk"))
	return nil
}

func indexOfName(lines []string, name string) int {
	for i, l := range lines {
		if f := strings.Fields(l); len(f) == 2 && f[1] == name {
			return i
		}
	}
	return -1
}

// writeNkey makes a user nkey, writes its seed to dir/name.nk (0600) and its public key to
// dir/name.pub, and returns the public key. An existing seed is kept unless force.
func writeNkey(dir, name string, force bool) (string, error) {
	path := filepath.Join(dir, name+".nk")
	if _, err := os.Stat(path); err == nil && !force {
		return "", fmt.Errorf("%s exists (--force to overwrite: the clients holding the old seed are locked out)", path)
	} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return "", err
	}
	kp, err := nkeys.CreateUser()
	if err != nil {
		return "", err
	}
	seed, err := kp.Seed()
	if err != nil {
		return "", err
	}
	pub, err := kp.PublicKey()
	if err != nil {
		return "", err
	}
	if err := os.WriteFile(path, append(seed, '\n'), 0o600); err != nil {
		return "", err
	}
	if err := os.Chmod(path, 0o600); err != nil { // --force on a file with wider permissions
		return "", err
	}
	if err := os.WriteFile(filepath.Join(dir, name+".pub"), []byte(pub+"\n"), 0o644); err != nil {
		return "", err
	}
	return pub, nil
}
