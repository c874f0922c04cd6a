package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/nats-io/nkeys"
	"github.com/urfave/cli/v2"
)

var nkeysCommand = &cli.Command{
	Name:  "nkeys",
	Usage: "make the operator's and the workers' NATS nkeys (seed files and public keys)",
	Description: "Writes two user nkey seeds, mode 0600, into --out: operator.nk and worker.nk, their\n" +
		"public keys beside them (operator.pub, worker.pub), and prints the flags that use them. The coordinators get --nats-nkey-seed operator.nk (the\n" +
		"operator may do anything) and --nats-worker-nkey <the worker's public key> (the workers'\n" +
		"restricted permissions); operator commands use --nats-nkey-seed operator.nk; workers use\n" +
		"--nats-nkey-seed worker.nk. A seed is a secret: keep operator.nk off the workers.",
	Flags: []cli.Flag{
		&cli.StringFlag{Name: "out", Value: ".", Usage: "directory for operator.nk and worker.nk"},
		&cli.BoolFlag{Name: "force", Usage: "overwrite existing seed files"},
	},
	Action: makeNkeys,
}

func makeNkeys(c *cli.Context) error {
	dir := c.String("out")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("--out: %w", err)
	}
	pubs := map[string]string{}
	for _, name := range []string{"operator", "worker"} {
		path := filepath.Join(dir, name+".nk")
		if _, err := os.Stat(path); err == nil && !c.Bool("force") {
			return fmt.Errorf("%s exists (--force to overwrite: the clients holding the old seed are locked out)", path)
		} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		kp, err := nkeys.CreateUser()
		if err != nil {
			return err
		}
		seed, err := kp.Seed()
		if err != nil {
			return err
		}
		pub, err := kp.PublicKey()
		if err != nil {
			return err
		}
		if err := os.WriteFile(path, append(seed, '\n'), 0o600); err != nil {
			return err
		}
		if err := os.Chmod(path, 0o600); err != nil { // --force on a file with wider permissions
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, name+".pub"), []byte(pub+"\n"), 0o644); err != nil {
			return err
		}
		pubs[name] = pub
		fmt.Fprintf(c.App.Writer, "%s: %s (public key %s)\n", name, path, pub)
	}
	op, wk := filepath.Join(dir, "operator.nk"), filepath.Join(dir, "worker.nk")
	fmt.Fprintf(c.App.Writer, "\ncoordinators:      vlp coordinator start --nats-nkey-seed %s --nats-worker-nkey %s …\n", op, pubs["worker"])
	fmt.Fprintf(c.App.Writer, "operator commands: --nats-nkey-seed %s\n", op)
	fmt.Fprintf(c.App.Writer, "workers:           vlp worker join --nats-nkey-seed %s …\n", wk)
	return nil
}
