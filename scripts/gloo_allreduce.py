#!/usr/bin/env python3
"""Gloo's ring all-reduce on this machine, for `vlp bench allreduce` to print
beside its own numbers.

Runs N processes on loopback with torch.distributed (backend "gloo"), sums a
float32 buffer of each size `iters` times after one warm-up, and prints one
JSON object per (ranks, size):

  {"ranks": 4, "bytes": 67108864, "dtype": "float32", "seconds": 0.15,
   "algbw_gbs": 0.45, "busbw_gbs": 0.67}

seconds is the mean time of one all-reduce, the slowest rank's; algbw =
bytes/seconds, busbw = algbw * 2(N-1)/N — the same definitions as vlp's.

Usage: gloo_allreduce.py --ranks 2,4 --sizes-mib 4,64,256 [--iters 3] [--dtype float32]
Needs Debian's python3-torch (torch.distributed with Gloo); no network.
"""
import argparse
import json
import os
import socket
import sys
import time


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def worker(rank, world, port, sizes, iters, dtype_name, out_q):
    import torch
    import torch.distributed as dist

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    dtype = getattr(torch, dtype_name)
    elem = torch.tensor([], dtype=dtype).element_size()
    try:
        for size in sizes:
            buf = torch.full((size // elem,), float(rank + 1), dtype=dtype)
            dist.all_reduce(buf)  # warm-up
            dist.barrier()
            t0 = time.perf_counter()
            for _ in range(iters):
                dist.all_reduce(buf)
            dt = (time.perf_counter() - t0) / iters
            times = [None] * world
            dist.all_gather_object(times, dt)
            if rank == 0:
                out_q.put((size, max(times)))
    finally:
        dist.destroy_process_group()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ranks", default="2,4")
    ap.add_argument("--sizes-mib", default="4,64,256")
    ap.add_argument("--iters", type=int, default=3)
    ap.add_argument("--dtype", default="float32")
    args = ap.parse_args()

    import torch.multiprocessing as mp

    ctx = mp.get_context("spawn")
    sizes = [int(float(s) * (1 << 20)) for s in args.sizes_mib.split(",")]
    for world in [int(r) for r in args.ranks.split(",")]:
        q = ctx.Queue()
        port = free_port()
        procs = [ctx.Process(target=worker, args=(r, world, port, sizes, args.iters, args.dtype, q)) for r in range(world)]
        for p in procs:
            p.start()
        for _ in sizes:
            size, secs = q.get(timeout=1800)
            algbw = size / secs / 1e9
            print(json.dumps({"ranks": world, "bytes": size, "dtype": args.dtype, "seconds": secs,
                              "algbw_gbs": algbw, "busbw_gbs": algbw * 2 * (world - 1) / world}), flush=True)
        for p in procs:
            p.join()
            if p.exitcode != 0:
                print(f"gloo_allreduce: rank exited with {p.exitcode}", file=sys.stderr)
                return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
