package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/e2evlp/vlp/torch"
	"github.com/urfave/cli/v2"
)

var torchDeviceFlag = &cli.StringFlag{
	Name:     "device",
	Usage:    "where the check runs: cpu or cuda:N",
	Value:    "cpu",
	Category: catTorch,
}

var torchCommand = &cli.Command{
	Name:  "torch",
	Usage: "LibTorch checks",
	Subcommands: []*cli.Command{{
		Name:  "check",
		Usage: "print the LibTorch version, BLAS, devices and run a tiny forward/backward",
		Description: "Loads libvlptorch.so (--torch-lib, $VLP_TORCH_LIB, next to the binary, ./build/lib),\n" +
			"prints what it runs on, then trains a linear classifier for one AdamW step on --device\n" +
			"and checks that the loss went down. Exits non-zero on any failure.",
		Flags:  []cli.Flag{torchDeviceFlag},
		Action: torchCheck,
	}},
}

// loadTorch loads the shim (--torch-lib, which $VLP_TORCH_LIB also sets, else the places
// torch.Load searches) and checks that it can drive device ("cpu", "cuda:N"). Every command that
// uses LibTorch starts here, so a wrong library or a device it cannot drive is one line of error
// before anything else runs.
func loadTorch(c *cli.Context, device string) (torch.Device, error) {
	dev, err := torch.ParseDevice(device)
	if err != nil {
		return dev, fmt.Errorf("--device: %w", err)
	}
	if err := torch.Load(c.String(torchLibFlag.Name)); err != nil {
		if c.String(torchLibFlag.Name) != "" {
			return dev, fmt.Errorf("--%s (or $%s): %w", torchLibFlag.Name, torch.EnvLibrary, err)
		}
		return dev, err
	}
	if err := torch.CheckDevice(dev); err != nil {
		return dev, fmt.Errorf("--device: %w", err)
	}
	return dev, nil
}

func torchCheck(c *cli.Context) error {
	w := c.App.Writer
	dev, err := torch.ParseDevice(c.String(torchDeviceFlag.Name))
	if err != nil {
		return fmt.Errorf("torch check: --device: %w", err)
	}
	// The device is checked after the report, which says what LibTorch does see.
	if _, err := loadTorch(c, "cpu"); err != nil {
		return fmt.Errorf("torch check: %w", err)
	}
	version, err := torch.Version()
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "libvlptorch  %s\n", torch.Loaded())
	fmt.Fprintf(w, "ABI          %s\n", torch.LoadedABI())
	fmt.Fprintf(w, "LibTorch     %s\n", version)
	fmt.Fprintf(w, "BLAS         %s\n", blasInUse())
	fmt.Fprintf(w, "CPU threads  %d\n", torch.NumThreads(0))
	if n := torch.BLASThreads(); n > 0 {
		fmt.Fprintf(w, "BLAS threads %d (OpenBLAS; a command's --threads sets both)\n", n)
	}
	n := torch.CUDADeviceCount()
	switch {
	case !torch.CUDABuilt():
		fmt.Fprintln(w, "CUDA         not built in (a CPU-only LibTorch)")
	case n == 0:
		fmt.Fprintln(w, "CUDA         built in, no device visible")
	default:
		fmt.Fprintf(w, "CUDA         %d device(s)\n", n)
		for i := range n {
			name, mem, err := torch.CUDADeviceInfo(i)
			if err != nil {
				fmt.Fprintf(w, "  cuda:%d\n", i) // a shim built without CUDA headers knows no names
				continue
			}
			fmt.Fprintf(w, "  cuda:%d  %s, %.1f GiB\n", i, name, float64(mem)/(1<<30))
		}
	}
	if err := torch.CheckDevice(dev); err != nil {
		return fmt.Errorf("torch check: --device: %w", err)
	}
	return tinyStep(w, dev)
}

// tinyStep trains a linear classifier (8 features, 4 classes, 32 samples) for one AdamW step
// and checks that the loss decreases.
func tinyStep(w io.Writer, dev torch.Device) error {
	g, err := torch.NewGenerator(1, torch.CPU)
	if err != nil {
		return err
	}
	defer g.Close()
	data := torch.NewScope()
	defer data.Close()
	x := torch.Randn(data, g, []int64{32, 8}, torch.Float32, dev)    // [N, F]
	y := torch.Randint(data, g, 0, 4, []int64{32}, dev)              // [N]
	weight := torch.Randn(nil, g, []int64{4, 8}, torch.Float32, dev) // [C, F]
	bias := torch.Zeros(nil, []int64{4}, torch.Float32, dev)         // [C]
	defer weight.Close()
	defer bias.Close()
	params := []*torch.Tensor{weight.RequiresGrad(true), bias.RequiresGrad(true)}
	if err := errors.Join(data.Err(), weight.Err(), bias.Err()); err != nil {
		return fmt.Errorf("torch check: %w", err)
	}
	opt, err := torch.NewAdamW([]torch.ParamGroup{torch.NewParamGroup(params, 0.1)})
	if err != nil {
		return err
	}
	defer opt.Close()
	loss := func(backward bool) (float64, error) {
		s := torch.NewScope()
		defer s.Close()
		l := torch.CrossEntropy(torch.Linear(x, s.Use(weight), s.Use(bias)), y, nil, torch.IgnoreNone, torch.ReduceMean)
		if backward {
			if err := l.Backward(); err != nil {
				return 0, err
			}
		}
		return l.Item()
	}
	before, err := loss(true)
	if err != nil {
		return fmt.Errorf("torch check: forward/backward on %s: %w", dev, err)
	}
	norm, err := torch.ClipGradNorm(params, 10)
	if err != nil {
		return err
	}
	if err := opt.Step(); err != nil {
		return fmt.Errorf("torch check: AdamW step on %s: %w", dev, err)
	}
	after, err := loss(false)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "check on %s: linear 8->4 + cross-entropy, backward (grad norm %.3f), one AdamW step\n", dev, norm)
	fmt.Fprintf(w, "  loss before %.4f, after %.4f\n", before, after)
	if !(after < before) {
		return fmt.Errorf("torch check: the loss did not decrease (%.4f -> %.4f)", before, after)
	}
	if live := torch.LiveTensors(); live != 4 { // x, y, weight, bias: every temporary was freed
		return fmt.Errorf("torch check: %d live tensor handles, want 4 (a leak)", live)
	}
	fmt.Fprintln(w, "ok")
	return nil
}

// blasInUse names the BLAS and LAPACK libraries mapped into the process (Debian's LibTorch
// calls the generic libblas.so.3, which the alternatives system points at OpenBLAS or the slow
// reference BLAS), or "unknown".
func blasInUse() string {
	maps, err := os.ReadFile("/proc/self/maps")
	if err != nil {
		return "unknown"
	}
	seen := map[string]bool{}
	for _, line := range strings.Split(string(maps), "\n") {
		f := strings.Fields(line)
		if len(f) < 6 {
			continue
		}
		p := f[len(f)-1]
		base := strings.ToLower(filepath.Base(p))
		if strings.Contains(base, "blas") || strings.Contains(base, "mkl_") || strings.Contains(base, "lapack") {
			if real, err := filepath.EvalSymlinks(p); err == nil {
				p = real
			}
			seen[p] = true
		}
	}
	if len(seen) == 0 {
		return "none mapped (static or MKL inside libtorch)"
	}
	libs := make([]string, 0, len(seen))
	for p := range seen {
		libs = append(libs, p)
	}
	sort.Strings(libs)
	return strings.Join(libs, ", ")
}
