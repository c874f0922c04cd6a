#!/usr/bin/env python3
"""Gloo's ring all-reduce on this machine, for `vlp bench allreduce` to set
beside its own numbers.

Runs N processes on loopback with torch.distributed (backend "gloo") and sums
float32 buffers. Two modes:

  gloo_allreduce.py --ranks 2,4 --sizes-mib 4,64,256 [--iters 5]
      For each ring size and buffer size: one warm-up, then `iters` timed
      all-reduces; prints one JSON object per case:
      {"ranks": 4, "bytes": 67108864, "dtype": "float32", "seconds": 0.15,
       "algbw_gbs": 0.45, "busbw_gbs": 0.67}
      seconds is the median over the rounds of the slowest rank's time.

  gloo_allreduce.py --serve --ranks 4
      Starts the ring once, prints {"ready": true}, then reads one JSON
      command per line from stdin — {"bytes": 67108864} — runs one timed
      all-reduce of that size (after a warm-up the first time a size is
      seen) and prints {"bytes": …, "seconds": …}. `vlp bench allreduce` uses
      this to time Gloo in the same rounds as its own rings.

  gloo_allreduce.py --rank R --world N --master HOST:PORT
      One rank of a ring whose ranks run anywhere (simulated hosts: `vlp
      bench allreduce --hosts`); rank 0 listens on HOST:PORT for the others.
      Prints {"ready": true} once the ring is up, then serves commands as
      --serve does, each answer this rank's own time.

algbw = bytes/seconds and busbw = algbw·2(N−1)/N, as in vlp. Needs Debian's
python3-torch; no network beyond loopback.
"""
import argparse
import json
import socket
import statistics
import sys
import time


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def worker(rank, world, port, cmds, results):
    import torch
    import torch.distributed as dist

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    buf, warm = None, set()
    try:
        while True:
            size = cmds.get()
            if size is None:
                break
            n = size // 4
            if buf is None or buf.numel() != n:
                buf = None
                buf = torch.empty(n, dtype=torch.float32)
            buf.fill_(float(rank + 1))
            if size not in warm:
                dist.all_reduce(buf)
                warm.add(size)
                buf.fill_(float(rank + 1))
            dist.barrier()
            t0 = time.perf_counter()
            dist.all_reduce(buf)
            results.put(time.perf_counter() - t0)
    finally:
        dist.destroy_process_group()


def serve_rank(rank, world, master):
    import torch
    import torch.distributed as dist

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://{master}", rank=rank, world_size=world)
    print(json.dumps({"ready": True}), flush=True)
    buf, warm = None, set()
    for line in sys.stdin:
        if not line.strip():
            continue
        size = int(json.loads(line)["bytes"])
        n = size // 4
        if buf is None or buf.numel() != n:
            buf = None
            buf = torch.empty(n, dtype=torch.float32)
        buf.fill_(float(rank + 1))
        if size not in warm:
            dist.all_reduce(buf)
            warm.add(size)
            buf.fill_(float(rank + 1))
        dist.barrier()
        t0 = time.perf_counter()
        dist.all_reduce(buf)
        secs = time.perf_counter() - t0
        print(json.dumps({"bytes": size, "seconds": secs}), flush=True)
    dist.destroy_process_group()


class Ring:
    """N Gloo ranks as processes, driven one all-reduce at a time."""

    def __init__(self, world):
        import torch.multiprocessing as mp

        ctx = mp.get_context("spawn")
        self.world = world
        self.cmds = [ctx.Queue() for _ in range(world)]
        self.results = ctx.Queue()
        port = free_port()
        self.procs = [ctx.Process(target=worker, args=(r, world, port, self.cmds[r], self.results)) for r in range(world)]
        for p in self.procs:
            p.start()

    def allreduce(self, size):
        for q in self.cmds:
            q.put(size)
        return max(self.results.get(timeout=1800) for _ in range(self.world))

    def close(self):
        for q in self.cmds:
            q.put(None)
        for p in self.procs:
            p.join()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ranks", default="2,4")
    ap.add_argument("--sizes-mib", default="4,64,256")
    ap.add_argument("--iters", type=int, default=5)
    ap.add_argument("--serve", action="store_true")
    ap.add_argument("--rank", type=int, default=-1)
    ap.add_argument("--world", type=int, default=0)
    ap.add_argument("--master", default="")
    args = ap.parse_args()
    if args.rank >= 0:
        serve_rank(args.rank, args.world, args.master)
        return 0
    worlds = [int(r) for r in args.ranks.split(",")]

    if args.serve:
        ring = Ring(worlds[0])
        print(json.dumps({"ready": True}), flush=True)
        for line in sys.stdin:
            if not line.strip():
                continue
            size = int(json.loads(line)["bytes"])
            print(json.dumps({"bytes": size, "seconds": ring.allreduce(size)}), flush=True)
        ring.close()
        return 0

    sizes = [int(float(s) * (1 << 20)) for s in args.sizes_mib.split(",")]
    for world in worlds:
        ring = Ring(world)
        for size in sizes:
            secs = statistics.median(ring.allreduce(size) for _ in range(args.iters))
            algbw = size / secs / 1e9
            print(json.dumps({"ranks": world, "bytes": size, "dtype": "float32", "seconds": secs,
                              "algbw_gbs": algbw, "busbw_gbs": algbw * 2 * (world - 1) / world}), flush=True)
        ring.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
