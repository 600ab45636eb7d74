"""Training throughput: the project's S4AQA path against a plain reference implementation.

Both train the same model (encoder, regressor, recovery decoder, discriminator), with the same
losses, optimiser, batch sizes and number of steps, on generated data of MTL-AQA's shape
(1059 training videos, T = 10, D = 1024, 40% labeled, batches of 32 labeled + 32 unlabeled).

The reference is written the way public AQA code usually is: a Dataset returning one video as
tensors, a DataLoader with default settings, tensors moved to the device every step, and one
encoder pass per input group as in the equations. It is an ordinary implementation, not one
slowed on purpose.

    python benchmarks/train_speed.py [--device cuda] [--steps 200] [--threads N]
                                     [--table1 --seeds 10 --workers 2 [--group-seeds]]

The comparison is like for like: the project trains one network (``core=plain``, the paper's
model), as the reference does. The shipped core (the default ``core=blend``: ``members``
networks from other seeds and the closed-form partner blended in) costs more, and is timed on
its own line beside it, not folded into the speed-up.

Prints steps per second of each, the shipped core's, peak memory, with --table1 the wall time
of the whole table1 protocol (all methods, 2 ratios, 10 seeds), and last
`speedup_vs_reference: X` (plain core against the reference).
"""

from __future__ import annotations

import argparse
import itertools
import resource
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset

from s4aqa.config import RunConfig
from s4aqa.data.featureset import FeatureSet
from s4aqa.experiments.runner import reproduce
from s4aqa.methods.registry import create
from s4aqa.models import (
    Discriminator,
    RecoveryDecoder,
    Regressor,
    TemporalEncoder,
    reverse_gradient,
)


def mtl_shaped(n_train=1059, n_test=353, segments=10, dim=1024, seed=0) -> FeatureSet:
    rng = np.random.default_rng(seed)
    n = n_train + n_test
    skill = rng.standard_normal(n)
    features = rng.standard_normal((n, segments, dim)).astype(np.float32)
    features[:, :, :16] += skill[:, None, None].astype(np.float32)
    scores = 60 + 15 * skill + rng.standard_normal(n) * 3
    return FeatureSet([f"v{i:05d}" for i in range(n)], features, scores,
                      ["train"] * n_train + ["test"] * n_test, name="mtl_shaped")


# ---------------------------------------------------------------- the plain reference
class VideoDataset(Dataset):
    def __init__(self, features, scores=None):
        self.features, self.scores = features, scores

    def __len__(self):
        return len(self.features)

    def __getitem__(self, i):
        x = torch.tensor(self.features[i])
        if self.scores is None:
            return x
        return x, torch.tensor(self.scores[i], dtype=torch.float32)


def reference_train(labeled: FeatureSet, unlabeled: FeatureSet, steps: int, device: str,
                    batch: int = 32) -> float:
    segments, dim = labeled.num_segments, labeled.dim
    mean = np.concatenate([labeled.features, unlabeled.features]).reshape(-1, dim).mean(0)
    std = np.concatenate([labeled.features, unlabeled.features]).reshape(-1, dim).std(0) + 1e-6
    y = (labeled.scores - labeled.scores.mean()) / labeled.scores.std()
    lab_loader = DataLoader(VideoDataset((labeled.features - mean) / std, y), batch_size=batch,
                            shuffle=True, drop_last=True)
    unl_loader = DataLoader(VideoDataset((unlabeled.features - mean) / std), batch_size=batch,
                            shuffle=True, drop_last=True)
    torch.manual_seed(0)
    encoder = TemporalEncoder(dim, segments).to(device)
    regressor = Regressor(128).to(device)
    decoder = RecoveryDecoder(128, dim, segments).to(device)
    discriminator = Discriminator(128).to(device)
    params = [p for m in (encoder, regressor, decoder, discriminator) for p in m.parameters()]
    optimizer = torch.optim.AdamW(params, lr=3e-4, weight_decay=1e-2)
    lab_iter, unl_iter = itertools.cycle(lab_loader), itertools.cycle(unl_loader)
    for m in (encoder, regressor, decoder, discriminator):
        m.train()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    started = time.perf_counter()
    for _ in range(steps):
        x_l, y_l = next(lab_iter)
        x_u = next(unl_iter)
        x_l, y_l, x_u = x_l.to(device), y_l.to(device), x_u.to(device)
        f_l = encoder(x_l)
        loss_reg = F.mse_loss(regressor(f_l), y_l)
        k = torch.randint(segments, (x_u.shape[0],), device=device)
        mask = F.one_hot(k, segments).bool()
        f_m = encoder(x_u, mask)
        recovered = decoder.from_pooled(f_m, k[:, None])
        target = x_u[torch.arange(x_u.shape[0], device=device), k][:, None]
        loss_rcvr = F.l1_loss(recovered, target)
        f_u = encoder(x_u)
        reps = torch.cat([f_l, f_u, f_m])
        domain = torch.cat([torch.ones(len(f_l)), torch.zeros(len(f_u) + len(f_m))]).to(device)
        loss_adv = F.binary_cross_entropy_with_logits(
            discriminator(reverse_gradient(reps, 1.0)), domain)
        loss = loss_reg + 1.0 * loss_rcvr + 0.01 * loss_adv
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return time.perf_counter() - started


# ---------------------------------------------------------------- the project's path
def project_train(labeled: FeatureSet, unlabeled: FeatureSet, steps: int, device: str,
                  extra: dict | None = None) -> float:
    options = {"steps": steps, "batch_labeled": 32, "batch_unlabeled": 32,
               "eval_every": steps, "select": "last", **(extra or {})}
    # the paper's S4AQA (no consistency term), which is what the reference implements
    method = create("aa+msfr+rda", options, seed=0, device=device)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    started = time.perf_counter()
    method.fit(labeled, unlabeled, None)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return time.perf_counter() - started


def peak_memory(device: str) -> str:
    if device.startswith("cuda"):
        return f"{torch.cuda.max_memory_allocated() / 2**20:.0f} MiB GPU"
    return f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB RSS"


def time_table1(seeds: int, workers: int, device: str, group_seeds: bool) -> None:
    """The whole `table1` protocol (all methods, 10% and 40%, ``seeds`` seeds) on MTL-shaped data."""
    data = mtl_shaped()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "mtl_shaped"
        root.mkdir()
        rows = ["id,score,split"]
        for vid, x, score, split in zip(data.ids, data.features, data.scores, data.split):
            np.save(root / f"{vid}.npy", x.astype(np.float16))
            rows.append(f"{vid},{score:.4f},{split}")
        (root / "scores.csv").write_text("\n".join(rows) + "\n")
        started = time.perf_counter()
        base = RunConfig(dataset="folder", root=str(root), device=device)
        summary = reproduce("table1", base, out=Path(tmp) / "repro", seeds=seeds,
                            workers=workers, progress=False, report=False,
                            group_seeds=group_seeds)
        seconds = time.perf_counter() - started
    print(f"table1_runs: {summary.total} ({summary.failed} failed, {summary.skipped} skipped)")
    print(f"table1_seconds: {seconds:.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--table1", action="store_true",
                        help="also time the whole table1 protocol with --seeds seeds")
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--group-seeds", action="store_true")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    data = mtl_shaped().train()
    rng = np.random.default_rng(0)
    order = rng.permutation(len(data))
    n_lab = int(round(0.4 * len(data)))
    labeled, unlabeled = data.subset(order[:n_lab]), data.subset(order[n_lab:])
    print(f"device {args.device}, torch {torch.__version__}, threads {torch.get_num_threads()}, "
          f"{len(labeled)} labeled + {len(unlabeled)} unlabeled videos of {data.features.shape[1:]}")
    plain = {"core": "plain"}  # one network, as the reference trains
    # warm up both paths once (allocator, kernels), then take the best of the repeats
    reference_train(labeled, unlabeled, 10, args.device)
    project_train(labeled, unlabeled, 10, args.device, plain)
    ref = min(reference_train(labeled, unlabeled, args.steps, args.device)
              for _ in range(args.repeats))
    ours = min(project_train(labeled, unlabeled, args.steps, args.device, plain)
               for _ in range(args.repeats))
    shipped = min(project_train(labeled, unlabeled, args.steps, args.device)
                  for _ in range(args.repeats))
    ref_rate, our_rate = args.steps / ref, args.steps / ours
    print(f"reference_steps_per_second: {ref_rate:.1f}")
    print(f"project_steps_per_second: {our_rate:.1f} (core=plain: one network, as the reference)")
    print(f"shipped_core_seconds: {shipped:.1f} for {args.steps} steps against {ours:.1f} plain "
          f"({shipped / ours:.2f}x: the default core=blend, its members and closed-form partner)")
    print(f"peak_memory: {peak_memory(args.device)}")
    if args.table1:
        time_table1(args.seeds, args.workers, args.device, args.group_seeds)
    print(f"speedup_vs_reference: {our_rate / ref_rate:.2f}")


if __name__ == "__main__":
    main()
