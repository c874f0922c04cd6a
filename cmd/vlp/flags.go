package main

import "github.com/urfave/cli/v2"

// Flag categories group the help output.
const (
	catTorch   = "LIBTORCH"
	catLogging = "LOGGING"
)

// torchLibFlag names the shim library; see torch.Load for the search order.
var torchLibFlag = &cli.StringFlag{
	Name:     "torch-lib",
	Usage:    "path to libvlptorch.so (default: $VLP_TORCH_LIB, next to the binary, then ./build/lib)",
	EnvVars:  []string{"VLP_TORCH_LIB"},
	Category: catTorch,
}

var logLevelFlag = &cli.StringFlag{
	Name:     "log-level",
	Usage:    "debug, info, warn or error",
	Value:    "info",
	EnvVars:  []string{"VLP_LOG_LEVEL"},
	Category: catLogging,
}

// globalFlags apply to every command.
var globalFlags = []cli.Flag{torchLibFlag, logLevelFlag}
