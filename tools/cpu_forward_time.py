"""Time a Vim forward pass on CPU (reference scan backend).

    python tools/cpu_forward_time.py [--model vim_tiny_patch16_224] [--threads 2] [--batch-sizes 1 8]
"""
import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import torch  # noqa: E402

import vim_backbone as vim  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="vim_tiny_patch16_224", choices=vim.list_models())
    parser.add_argument("--img-size", type=int, default=224)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    model = vim.create_model(args.model, scan_backend="reference").eval()
    results = {}
    for bs in args.batch_sizes:
        x = torch.randn(bs, 3, args.img_size, args.img_size)
        with torch.no_grad():
            model(x)  # warm-up
            times = []
            for _ in range(args.repeats):
                start = time.perf_counter()
                model(x)
                times.append(time.perf_counter() - start)
        results[bs] = sorted(times)[len(times) // 2]
        print(f"{args.model} {args.img_size}x{args.img_size} batch {bs}: median {results[bs]:.3f} s, "
              f"min {min(times):.3f} s over {args.repeats} runs ({args.threads} threads)")
    return results


if __name__ == "__main__":
    main()
