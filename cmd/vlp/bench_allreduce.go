package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/urfave/cli/v2"

	"github.com/e2evlp/vlp/allreduce"
)

var benchAllreduceCommand = &cli.Command{
	Name:  "allreduce",
	Usage: "ring all-reduce bandwidth over NATS and direct TCP, beside raw NATS and Gloo",
	Description: "Starts an embedded nats-server and N ranks as processes of this binary on loopback,\n" +
		"then for each size, wire type and transport times all-reduces (after a warm-up) and prints\n" +
		"algbw = S/t and busbw = algbw·2(N−1)/N. Each NATS row is set against the raw NATS\n" +
		"publish→subscribe throughput T of the same server, measured in the same run with the\n" +
		"ring's traffic pattern (every rank publishes to its right neighbour): a ring relayed by\n" +
		"one server cannot beat busbw = T/N (float32; 2T/N for bf16). The TCP rows are set against\n" +
		"Gloo's all-reduce (scripts/gloo_allreduce.py with Debian's python3-torch) when it runs.\n" +
		"TCP rings protect frames as --ring-security does: tcp (auth, the default), tcp-encrypt and\n" +
		"tcp-plain; the tcp and tcp-encrypt rows are set against tcp-plain when it runs too. shm (every rank\n" +
		"on this host, through /dev/shm) rows are set against the flat TCP ring (tcp, else tcp-plain) and Gloo.\n" +
		"With --hosts H --per-host P (as root) the ranks run on H simulated hosts instead — network\n" +
		"namespaces on a bridge, each host's link capped by tc tbf at --link-rate — and the flat TCP\n" +
		"ring (tcp), the hierarchical all-reduce (hier: shared memory within a host, the host leaders'\n" +
		"ring over TCP) and Gloo run side by side; hier rows are set against tcp.",
	Flags: []cli.Flag{
		&cli.StringFlag{Name: "ranks", Value: "2,4", Usage: "ring sizes, comma-separated"},
		&cli.StringFlag{Name: "sizes-mib", Value: "4,64,256", Usage: "buffer sizes in MiB, comma-separated"},
		&cli.StringFlag{Name: "wire", Value: "float32,bf16", Usage: "wire types, comma-separated"},
		&cli.StringFlag{Name: "transports", Value: "nats,tcp", Usage: "transports (nats, tcp, tcp-encrypt, tcp-plain, auto, shm), comma-separated"},
		&cli.IntFlag{Name: "iters", Value: 5, Usage: "rounds per size, after a warm-up: each round times raw NATS and one all-reduce of every case; medians are reported"},
		&cli.IntFlag{Name: "chunk-kib", Value: 1024, Usage: "payload per frame (Config.ChunkBytes) in KiB"},
		&cli.IntFlag{Name: "window-mib", Value: 16, Usage: "un-acknowledged bytes per link (Config.WindowBytes) in MiB"},
		&cli.BoolFlag{Name: "nats-control-conn", Value: true, Usage: "NATS rings send control frames on a second connection (allreduce.WithControlConn)"},
		&cli.StringFlag{Name: "gloo-script", Value: "scripts/gloo_allreduce.py", Usage: "Gloo comparison script; empty to skip"},
		&cli.StringFlag{Name: "python", Value: "/usr/bin/python3", Usage: "interpreter with torch.distributed (Debian's python3-torch)", EnvVars: []string{"VLP_PYTHON"}},
		&cli.StringFlag{Name: "json", Usage: "also write the rows as JSON to this file"},
		&cli.IntFlag{Name: "hosts", Usage: "simulated hosts (network namespaces, needs root); 0: every rank on this host"},
		&cli.IntFlag{Name: "per-host", Value: 2, Usage: "ranks per simulated host (with --hosts)"},
		&cli.StringFlag{Name: "link-rate", Value: "1gbit", Usage: "each simulated host's link, both directions (tc tbf rate, with --hosts)"},
	},
	Action: runBenchAllreduce,
}

// benchRow is one measured case.
type benchRow struct {
	Ranks     int     `json:"ranks"`
	Bytes     int64   `json:"bytes"`
	Transport string  `json:"transport"` // nats, tcp, auto, gloo
	Wire      string  `json:"wire"`
	Seconds   float64 `json:"seconds"` // one all-reduce: median over rounds of the slowest rank
	AlgBW     float64 `json:"algbw_gbs"`
	BusBW     float64 `json:"busbw_gbs"`
	// NATS rows: raw NATS throughput through the server, all ranks together
	// (GB/s, the median round), and the row's busbw as a share of what the
	// relay allows (T/N, 2T/N for bf16), the median of the rounds' shares.
	RawNATS  float64 `json:"raw_nats_gbs,omitempty"`
	CapShare float64 `json:"nats_cap_share,omitempty"`
	// bf16 rows: float32 time / bf16 time on the same transport, the median
	// of the rounds' ratios.
	VsFloat32 float64 `json:"vs_float32,omitempty"`
	// float32 TCP (auto) rows: this row's busbw / Gloo's, the median of the
	// rounds' ratios.
	VsGloo float64 `json:"vs_gloo,omitempty"`
	// tcp and tcp-encrypt rows: this row's throughput / tcp-plain's with the
	// same wire type, the median of the rounds' ratios.
	VsPlain float64 `json:"vs_plain_tcp,omitempty"`
	// shm rows: this row's busbw / the flat TCP ring's (tcp, else
	// tcp-plain) with the same wire type, the median of the rounds' ratios.
	VsTCP   float64 `json:"vs_tcp,omitempty"`
	VsTCPOf string  `json:"vs_tcp_of,omitempty"` // which TCP ring
}

// benchTCPSecurity maps a bench transport to the ring kind and the frame
// protection of its TCP links.
func benchTCPSecurity(transport string) (kind string, sec allreduce.RingSecurity) {
	switch transport {
	case "tcp-encrypt":
		return allreduce.KindTCP, allreduce.RingEncrypt
	case "tcp-plain":
		return allreduce.KindTCP, allreduce.RingPlain
	}
	return transport, allreduce.RingAuth
}

func busFactor(n int) float64 { return 2 * float64(n-1) / float64(n) }

func runBenchAllreduce(c *cli.Context) error {
	if c.Int("hosts") > 0 {
		return runBenchHosts(c)
	}
	ranks, err := intList(c.String("ranks"))
	if err != nil {
		return fmt.Errorf("--ranks: %w", err)
	}
	sizes, err := intList(c.String("sizes-mib"))
	if err != nil {
		return fmt.Errorf("--sizes-mib: %w", err)
	}
	wires := strings.Split(c.String("wire"), ",")
	for _, w := range wires {
		if _, err := allreduce.ParseDType(w); err != nil {
			return fmt.Errorf("--wire: %w", err)
		}
	}
	transports := strings.Split(c.String("transports"), ",")
	iters := c.Int("iters")
	cfg := benchConfig{ChunkBytes: c.Int("chunk-kib") << 10, WindowBytes: c.Int("window-mib") << 20, SharedControl: !c.Bool("nats-control-conn")}
	out := c.App.Writer

	srv, ctl, stop, err := startBenchNATS("127.0.0.1")
	if err != nil {
		return err
	}
	defer stop()

	fmt.Fprintf(out, "vlp bench allreduce: %s\n", machineLine())
	fmt.Fprintf(out, "nats-server %s embedded (max_payload 8 MiB, max_pending default), chunk %d KiB, window %d MiB, NATS control frames on a second connection: %v; medians of %d rounds (raw NATS and one all-reduce per case, back to back) after a warm-up\n\n",
		server.VERSION, cfg.ChunkBytes>>10, cfg.WindowBytes>>20, !cfg.SharedControl, iters)

	var rows []benchRow
	for _, n := range ranks {
		var gloo *glooRing
		if script := c.String("gloo-script"); script != "" {
			fmt.Fprintf(os.Stderr, "starting Gloo (%d ranks): %s\n", n, script)
			if gloo, err = startGloo(c.String("python"), script, n); err != nil {
				fmt.Fprintf(out, "Gloo, %d ranks: not measured (%v)\n\n", n, err)
			}
		}
		rs, err := benchRanks(c.Context, ctl, srv.ClientURL(), n, sizes, wires, transports, iters, cfg, glooOrNil(gloo), nil)
		gloo.close()
		rows = append(rows, rs...)
		if err != nil {
			printBenchTable(out, rows)
			return err
		}
	}
	printBenchTable(out, rows)
	if path := c.String("json"); path != "" {
		b, _ := json.MarshalIndent(rows, "", "  ")
		if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// benchGloo times one Gloo all-reduce of a size (the slowest rank's).
type benchGloo interface {
	allReduce(size int64) (float64, error)
}

// glooOrNil keeps a nil *glooRing a nil benchGloo.
func glooOrNil(g *glooRing) benchGloo {
	if g == nil {
		return nil
	}
	return g
}

// benchRanks starts n rank processes, runs every case on them and stops them.
// place, when not nil, edits rank i's command line (a simulated host's
// namespace and address); the raw NATS measurement runs only without it.
func benchRanks(ctx context.Context, ctl *nats.Conn, url string, n int, sizes []int, wires, transports []string, iters int, cfg benchConfig, gloo benchGloo, place func(rank int, args []string) []string) ([]benchRow, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	var tok [16]byte
	rand.Read(tok[:])
	token := hex.EncodeToString(tok[:])
	prefix := fmt.Sprintf("vlp.bench.%d.%d", os.Getpid(), n)
	// The job names the ranks' shared-memory files: two runs on one host
	// must not meet.
	job := fmt.Sprintf("bench%d-%d", os.Getpid(), n)
	hellos, err := ctl.SubscribeSync(prefix + ".hello")
	if err != nil {
		return nil, err
	}
	defer hellos.Unsubscribe()
	ctl.Flush()
	var procs []*exec.Cmd
	var pipes []io.Closer
	defer func() {
		for _, p := range pipes {
			p.Close() // a rank exits when its stdin closes
		}
		for _, p := range procs {
			done := make(chan struct{})
			go func() { p.Wait(); close(done) }()
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				p.Process.Kill()
				<-done
			}
		}
	}()
	for i := range n {
		args := []string{self, "bench", "allreduce-rank", "--nats", url, "--prefix", prefix, "--job", job, "--rank", strconv.Itoa(i)}
		if place != nil {
			args = place(i, args)
		}
		cmd := exec.CommandContext(ctx, args[0], args[1:]...)
		cmd.Env = append(os.Environ(), benchEnvToken+"="+token)
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		stdin, err := cmd.StdinPipe()
		if err != nil {
			return nil, err
		}
		if err := cmd.Start(); err != nil {
			return nil, fmt.Errorf("start rank %d: %w", i, err)
		}
		procs, pipes = append(procs, cmd), append(pipes, stdin)
	}
	gen := allreduce.Generation{Job: job, Members: make([]allreduce.Member, n)}
	addrs := make(map[string][]string) // ring security → every rank's TCP address
	for range n {
		m, err := hellos.NextMsg(60 * time.Second)
		if err != nil {
			return nil, fmt.Errorf("waiting for the ranks' hello: %w", err)
		}
		var h benchHello
		if err := json.Unmarshal(m.Data, &h); err != nil || h.Rank < 0 || h.Rank >= n {
			return nil, fmt.Errorf("bad hello %q", m.Data)
		}
		gen.Members[h.Rank] = allreduce.Member{ID: fmt.Sprintf("rank%d", h.Rank), Addr: h.Addrs[allreduce.RingAuth.String()], Server: h.Server}
		for sec, addr := range h.Addrs {
			if addrs[sec] == nil {
				addrs[sec] = make([]string, n)
			}
			addrs[sec][h.Rank] = addr
		}
	}
	all := func(cmd benchCmd, timeout time.Duration) ([]benchReply, error) {
		reps := make([]benchReply, n)
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				m, err := ctl.Request(fmt.Sprintf("%s.cmd.%d", prefix, i), mustJSON(cmd), timeout)
				if err == nil {
					err = json.Unmarshal(m.Data, &reps[i])
				}
				if err == nil && reps[i].Err != "" {
					err = errors.New(reps[i].Err)
				}
				if err != nil {
					errs[i] = fmt.Errorf("rank %d: %w", i, err)
				}
			}()
		}
		wg.Wait()
		return reps, errors.Join(errs...)
	}
	defer all(benchCmd{Op: "exit"}, 5*time.Second)

	var rows []benchRow
	for _, mib := range sizes {
		rs, err := benchSize(all, gen, addrs, n, int64(mib)<<20, transports, wires, iters, cfg, gloo, place == nil)
		rows = append(rows, rs...)
		gen.Number += 1000
		if err != nil {
			return rows, fmt.Errorf("N=%d %d MiB: %w", n, mib, err)
		}
	}
	return rows, nil
}

// benchSize measures one size. Every ring is built (and warmed up) first;
// then each round runs the raw NATS measurement, one all-reduce on every
// ring and one of Gloo's, back to back, so that all of them see the same
// machine — other processes come and go — and the ratios are taken within
// a round.
func benchSize(all func(benchCmd, time.Duration) ([]benchReply, error), gen allreduce.Generation, addrs map[string][]string, n int, size int64,
	transports, wires []string, iters int, cfg benchConfig, gloo benchGloo, withRaw bool) ([]benchRow, error) {
	timeout := time.Duration(float64(size)/5e6*float64(time.Second)) + time.Minute
	setup := benchCmd{Op: "setup", Bytes: size, Config: cfg}
	for _, tr := range transports {
		_, sec := benchTCPSecurity(tr)
		for _, w := range wires {
			gen.Number++
			g := gen
			g.Members = append([]allreduce.Member(nil), gen.Members...)
			for i := range g.Members {
				g.Members[i].Addr = addrs[sec.String()][i]
			}
			setup.Rings = append(setup.Rings, benchRing{Gen: g, Transport: tr, Wire: w})
		}
	}
	reps, err := all(setup, timeout*time.Duration(len(setup.Rings)))
	defer all(benchCmd{Op: "teardown"}, time.Minute)
	if err != nil {
		return nil, fmt.Errorf("setup: %w", err)
	}
	// Raw NATS moves the ring's bytes per rank (float32), in frames of the
	// ring's float32 frame size.
	rawFrame := int64(cfg.ChunkBytes + 64)
	for i, br := range setup.Rings {
		if br.Transport == allreduce.KindNATS && br.Wire == "float32" {
			rawFrame = reps[0].Frames[i]
		}
	}
	rawBytes := int64(float64(size) * busFactor(n))
	secs := make([][]float64, len(setup.Rings)) // [ring][round]
	var rawT []float64                          // GB/s through the server, by round
	var glooSecs []float64                      // Gloo's all-reduce, by round
	for k := range iters {
		gen.Number++
		if !withRaw {
			rawT = append(rawT, 0)
		}
		raw := benchCmd{Op: "raw-prepare", Gen: gen, Bytes: rawBytes, Iters: 1,
			Config: benchConfig{ChunkBytes: int(rawFrame), WindowBytes: cfg.WindowBytes}}
		if withRaw {
			if _, err := all(raw, time.Minute); err != nil {
				return nil, fmt.Errorf("raw NATS: %w", err)
			}
			raw.Op = "raw-go"
			reps, err := all(raw, timeout)
			if err != nil {
				return nil, fmt.Errorf("raw NATS: %w", err)
			}
			rawT = append(rawT, float64(n)*float64(rawBytes)/slowest(reps)/1e9)
		}
		for i, br := range setup.Rings {
			reps, err := all(benchCmd{Op: "op", Ring: br.Gen.Number}, timeout)
			if err != nil {
				return nil, fmt.Errorf("%s %s: %w", br.Transport, br.Wire, err)
			}
			for j := range reps {
				if reps[j].Checksum != reps[0].Checksum {
					return nil, fmt.Errorf("%s %s: rank %d ends with other bits than rank 0", br.Transport, br.Wire, j)
				}
			}
			secs[i] = append(secs[i], slowest(reps))
		}
		if gloo != nil {
			g, err := gloo.allReduce(size)
			if err != nil {
				return nil, fmt.Errorf("gloo: %w", err)
			}
			glooSecs = append(glooSecs, g)
		}
		fmt.Fprintf(os.Stderr, "N=%d %d MiB round %d", n, size>>20, k+1)
		if withRaw {
			fmt.Fprintf(os.Stderr, ": raw NATS %.3f GB/s", rawT[k])
		}
		for i, br := range setup.Rings {
			fmt.Fprintf(os.Stderr, ", %s %s %.0f ms", br.Transport, br.Wire, 1000*secs[i][k])
		}
		if gloo != nil {
			fmt.Fprintf(os.Stderr, ", gloo %.0f ms", 1000*glooSecs[k])
		}
		fmt.Fprintln(os.Stderr)
	}
	var rows []benchRow
	for i, br := range setup.Rings {
		row := benchRow{Ranks: n, Bytes: size, Transport: br.Transport, Wire: br.Wire, Seconds: median(secs[i])}
		row.AlgBW = float64(size) / row.Seconds / 1e9
		row.BusBW = row.AlgBW * busFactor(n)
		if br.Transport == allreduce.KindNATS && withRaw {
			// The share of the relay's capacity, round by round.
			half := 1.0
			if br.Wire == "bf16" {
				half = 2 // half the bytes cross the server
			}
			share := make([]float64, iters)
			for k := range share {
				share[k] = float64(size) / secs[i][k] * busFactor(n) / 1e9 / (half * rawT[k] / float64(n))
			}
			row.RawNATS = median(rawT)
			row.CapShare = median(share)
		}
		if br.Wire == "bf16" {
			for j, f := range setup.Rings {
				if f.Transport == br.Transport && f.Wire == "float32" {
					speedup := make([]float64, iters)
					for k := range speedup {
						speedup[k] = secs[j][k] / secs[i][k]
					}
					row.VsFloat32 = median(speedup)
				}
			}
		}
		for j, p := range setup.Rings {
			if p.Transport == "tcp-plain" && p.Wire == br.Wire && (br.Transport == allreduce.KindTCP || br.Transport == "tcp-encrypt") {
				vs := make([]float64, iters)
				for k := range vs {
					vs[k] = secs[j][k] / secs[i][k]
				}
				row.VsPlain = median(vs)
			}
		}
		if br.Transport == allreduce.KindShm || br.Transport == allreduce.KindHier {
			for _, flat := range []string{allreduce.KindTCP, "tcp-plain"} {
				j := ringIndex(setup.Rings, flat, br.Wire)
				if j < 0 {
					continue
				}
				vs := make([]float64, iters)
				for k := range vs {
					vs[k] = secs[j][k] / secs[i][k]
				}
				row.VsTCP, row.VsTCPOf = median(vs), flat
				break
			}
		}
		if gloo != nil && br.Wire == "float32" && br.Transport != allreduce.KindNATS {
			vs := make([]float64, iters)
			for k := range vs {
				vs[k] = glooSecs[k] / secs[i][k] // busbw ratio
			}
			row.VsGloo = median(vs)
		}
		rows = append(rows, row)
	}
	if gloo != nil {
		row := benchRow{Ranks: n, Bytes: size, Transport: "gloo", Wire: "float32", Seconds: median(glooSecs)}
		row.AlgBW = float64(size) / row.Seconds / 1e9
		row.BusBW = row.AlgBW * busFactor(n)
		rows = append(rows, row)
	}
	return rows, nil
}

// ringIndex is the index of the ring of transport tr and wire w, or -1.
func ringIndex(rings []benchRing, tr, w string) int {
	for i, r := range rings {
		if r.Transport == tr && r.Wire == w {
			return i
		}
	}
	return -1
}

// slowest is a round's time: a collective is done when its last rank is.
func slowest(reps []benchReply) float64 {
	m := 0.0
	for _, r := range reps {
		if len(r.Seconds) > 0 {
			m = max(m, r.Seconds[0])
		}
	}
	return m
}

func median(x []float64) float64 {
	if len(x) == 0 {
		return 0
	}
	s := append([]float64(nil), x...)
	sort.Float64s(s)
	if m := len(s); m%2 == 0 {
		return (s[m/2-1] + s[m/2]) / 2
	}
	return s[len(s)/2]
}

// glooRing drives scripts/gloo_allreduce.py --serve: N Gloo ranks that run
// one all-reduce per request, so that Gloo is timed in the same rounds.
type glooRing struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	out   *bufio.Scanner
	errb  *bytes.Buffer
}

func startGloo(python, script string, n int) (*glooRing, error) {
	if _, err := os.Stat(script); err != nil {
		return nil, err
	}
	g := &glooRing{cmd: exec.Command(python, script, "--serve", "--ranks", strconv.Itoa(n)), errb: new(bytes.Buffer)}
	g.cmd.Stderr = g.errb
	var err error
	if g.stdin, err = g.cmd.StdinPipe(); err != nil {
		return nil, err
	}
	stdout, err := g.cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := g.cmd.Start(); err != nil {
		return nil, err
	}
	g.out = bufio.NewScanner(stdout)
	var ready struct{ Ready bool }
	if !g.out.Scan() || json.Unmarshal(g.out.Bytes(), &ready) != nil || !ready.Ready {
		g.close()
		return nil, fmt.Errorf("%s did not start: %s", script, lastLine(g.errb.String()))
	}
	return g, nil
}

// allReduce times one Gloo all-reduce of size bytes (the slowest rank's).
func (g *glooRing) allReduce(size int64) (float64, error) {
	if _, err := fmt.Fprintf(g.stdin, "{\"bytes\": %d}\n", size); err != nil {
		return 0, err
	}
	var rep struct{ Seconds float64 }
	if !g.out.Scan() || json.Unmarshal(g.out.Bytes(), &rep) != nil || rep.Seconds <= 0 {
		return 0, fmt.Errorf("no answer: %s", lastLine(g.errb.String()))
	}
	return rep.Seconds, nil
}

func (g *glooRing) close() {
	if g == nil {
		return
	}
	g.stdin.Close()
	done := make(chan struct{})
	go func() { g.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		g.cmd.Process.Kill()
		<-done
	}
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

// printBenchTable prints the rows as a Markdown table with, per row, the
// comparison the goals name: NATS rows against the relay's cap, bf16
// against float32 on the same transport, TCP against Gloo.
func printBenchTable(w io.Writer, rows []benchRow) {
	type key struct {
		n     int
		b     int64
		tr, w string
	}
	by := make(map[key]benchRow)
	for _, r := range rows {
		by[key{r.Ranks, r.Bytes, r.Transport, r.Wire}] = r
	}
	sorted := append([]benchRow(nil), rows...)
	order := map[string]int{"nats": 0, "auto": 1, "tcp-plain": 2, "tcp": 3, "tcp-encrypt": 4, "shm": 5, "hier": 6, "gloo": 7}
	sort.SliceStable(sorted, func(i, j int) bool {
		a, b := sorted[i], sorted[j]
		if a.Ranks != b.Ranks {
			return a.Ranks < b.Ranks
		}
		if a.Bytes != b.Bytes {
			return a.Bytes < b.Bytes
		}
		return order[a.Transport] < order[b.Transport]
	})
	fmt.Fprintln(w, "| N | size | transport | wire | time/op | algbw GB/s | busbw GB/s | raw NATS GB/s | against |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|")
	for _, r := range sorted {
		var vs []string
		if r.CapShare > 0 {
			vs = append(vs, fmt.Sprintf("%.0f%% of the NATS relay cap", 100*r.CapShare))
		}
		if r.VsFloat32 > 0 {
			vs = append(vs, fmt.Sprintf("%.2f× float32 algbw", r.VsFloat32))
		}
		if r.VsPlain > 0 {
			vs = append(vs, fmt.Sprintf("%.0f%% of tcp-plain throughput", 100*r.VsPlain))
		}
		if r.VsTCP > 0 {
			vs = append(vs, fmt.Sprintf("%.2f× %s busbw", r.VsTCP, r.VsTCPOf))
		}
		if r.VsGloo > 0 {
			vs = append(vs, fmt.Sprintf("%.2f× Gloo busbw", r.VsGloo))
		}
		raw := ""
		if r.RawNATS > 0 {
			raw = fmt.Sprintf("%.3f", r.RawNATS)
		}
		fmt.Fprintf(w, "| %d | %d MiB | %s | %s | %s | %.3f | %.3f | %s | %s |\n",
			r.Ranks, r.Bytes>>20, r.Transport, r.Wire, time.Duration(r.Seconds*float64(time.Second)).Round(time.Millisecond),
			r.AlgBW, r.BusBW, raw, strings.Join(vs, "; "))
	}
	fmt.Fprintln(w)
}

func intList(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		v, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || v <= 0 {
			return nil, fmt.Errorf("%q is not a positive integer", f)
		}
		out = append(out, v)
	}
	return out, nil
}

// machineLine describes where a benchmark ran.
func machineLine() string {
	cpu := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(l, "model name") {
				cpu = strings.TrimSpace(l[strings.Index(l, ":")+1:])
				break
			}
		}
	}
	host, _ := os.Hostname()
	return fmt.Sprintf("%s, %d CPUs (%s), %s/%s, %s, %s", host, runtime.NumCPU(), cpu, runtime.GOOS, runtime.GOARCH,
		runtime.Version(), time.Now().UTC().Format("2006-01-02 15:04 UTC"))
}

// startBenchNATS starts the benches' embedded nats-server on host (any port; a frame of 1 MiB plus
// header and metadata fits its 8 MiB payload) and the parent's connection to it; stop closes both.
func startBenchNATS(host string) (*server.Server, *nats.Conn, func(), error) {
	srv, err := server.NewServer(&server.Options{Host: host, Port: -1, NoLog: true, NoSigs: true, MaxPayload: 8 << 20})
	if err != nil {
		return nil, nil, nil, err
	}
	go srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		srv.Shutdown()
		return nil, nil, nil, errors.New("embedded nats-server did not start")
	}
	ctl, err := nats.Connect(srv.ClientURL(), nats.Name("bench-parent"))
	if err != nil {
		srv.Shutdown()
		return nil, nil, nil, err
	}
	return srv, ctl, func() { ctl.Close(); srv.Shutdown() }, nil
}
