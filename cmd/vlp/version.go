package main

import (
	"fmt"
	"runtime"

	"github.com/urfave/cli/v2"
)

// version is overridden at link time: -ldflags "-X main.version=…".
var version = "0.1.0-dev"

var versionCommand = &cli.Command{
	Name:  "version",
	Usage: "print the vlp version (needs no LibTorch)",
	Action: func(c *cli.Context) error {
		fmt.Fprintf(c.App.Writer, "vlp %s (%s, %s/%s)\n", version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
		return nil
	},
}
