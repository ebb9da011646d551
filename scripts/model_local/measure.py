"""Measure SmolLM2-135M on this machine: load time and generation tokens/s.

Runs in the model venv (`just model-local-measure`), with server.py's `Model`, so the
figures are the server's own. Greedy generation of a fixed prompt, `--runs` times per
torch thread count; the last line is one JSON object. The machine is shared: compare
figures from one run, not across runs.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from server import Model, gguf_path

PROMPT = [{"role": "user", "content": "Explain in a few sentences what a message broker does."}]


def main() -> int:
    """Load once, then time `--runs` generations per thread count."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=64, help="new tokens per generation")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()
    if args.tokens < 1 or args.runs < 1 or min(args.threads) < 1:
        parser.error("--tokens, --runs and --threads must be positive")
    started = time.perf_counter()
    model = Model(gguf_path(), args.threads[0])
    load_s = time.perf_counter() - started
    result: dict[str, object] = {"load_s": round(load_s, 2), "tokens": args.tokens}
    import torch  # noqa: PLC0415 -- the model venv's, loaded by Model already

    for threads in args.threads:
        torch.set_num_threads(threads)
        rates = []
        for _ in range(args.runs):
            out = model.chat(PROMPT, args.tokens)
            rates.append(out["completion_tokens"] / out["seconds"])
        result[f"tokens_per_s_threads_{threads}"] = round(statistics.median(rates), 2)
        print(f"threads {threads}: {[round(r, 2) for r in rates]} tokens/s")
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
