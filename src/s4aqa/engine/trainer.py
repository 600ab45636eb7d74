"""The training loop every deep method shares.

Features and scores live on the device for the whole run and batches are drawn by index with a
seeded generator: no DataLoader, no per-step host-to-device copies, and no synchronisation
inside the loop except at validation points. Model selection uses the validation slice of the
labeled data (best Spearman), or the last step when there is none or ``select=last``.

When ``method.state_dir`` is set, the full training state (weights, optimiser, scheduler, both
random generators, the best weights so far and the log) is saved there every
``method.checkpoint_every`` steps, under ``method.resume_key`` (a fingerprint of the run's
settings and one of its data). A later call with the same key resumes from it and ends with
exactly the numbers of an uninterrupted run; a state saved under another key is not used, and
``method.notify`` (when set) is told why in one line.
"""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save

from s4aqa import io

from s4aqa.data.featureset import FeatureSet
from s4aqa.engine.metrics import spearman


def _draw(tensors: dict[str, torch.Tensor], size: int, generator: torch.Generator) -> dict:
    n = next(iter(tensors.values())).shape[0]
    index = torch.randint(n, (min(size, n),), generator=generator, device=generator.device)
    return {k: v[index] for k, v in tensors.items()}


def make_optimizer(parameters, options):
    """AdamW with the options' learning rate and weight decay, and the optional cosine schedule."""
    optimizer = torch.optim.AdamW(parameters, lr=options.lr, weight_decay=options.weight_decay)
    scheduler = None
    if options.schedule == "cosine":
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, max(int(options.steps), 1))
    return optimizer, scheduler


def optimizer_step(optimizer, scheduler, loss) -> None:
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    if scheduler is not None:
        scheduler.step()


@torch.no_grad()
def update_moving_average(parameters: dict[str, torch.Tensor], average) -> None:
    """copy <- decay * copy + (1 - decay) * tracked, for ``method.moving_average()``'s pairs
    (element-wise, so it serves stacked weights of grouped models as well)."""
    if average is None:
        return
    pairs, decay = average
    torch._foreach_lerp_([parameters[c] for c in pairs], [parameters[t] for t in pairs.values()],
                         1.0 - decay)


def train_deep(method, labeled: FeatureSet, unlabeled: FeatureSet | None,
               validation: FeatureSet | None) -> None:
    """Train ``method.modules`` with ``method.loss`` for ``options.steps`` steps."""
    options = method.options
    device = method.device
    generator = torch.Generator(device=device)
    generator.manual_seed(method.init_seed() + 1)
    labeled_data = method.labeled_tensors(labeled)
    unlabeled_data = method.unlabeled_tensors(unlabeled) if unlabeled is not None else None
    val_x = method.to_input(validation.features) if validation is not None and len(validation) else None

    steps = int(options.steps)
    optimizer, scheduler = make_optimizer(
        [p for p in method.modules.parameters() if p.requires_grad], options)

    select_best = options.select == "best" and val_x is not None
    best_score, best_state = -math.inf, None
    running: dict[str, torch.Tensor] = {}
    since = 0
    method.history = []
    start = 0
    state_path = Path(method.state_dir) / STATE_FILE if getattr(method, "state_dir", None) else None
    key = dict(getattr(method, "resume_key", None) or {})
    if state_path is not None:
        resumed = _load_state(state_path, key, method, optimizer, scheduler, generator)
        if resumed is not None:
            start, best_score, best_state, running, since = resumed
    every = max(int(getattr(method, "checkpoint_every", 50)), 1)
    for step in range(start, steps):
        method.modules.train()
        batch_l = _draw(labeled_data, options.batch_labeled, generator)
        batch_u = (_draw(unlabeled_data, options.batch_unlabeled, generator)
                   if unlabeled_data is not None else None)
        loss, parts = method.loss(batch_l, batch_u, step / max(steps, 1))
        optimizer_step(optimizer, scheduler, loss)
        update_moving_average(dict(method.modules.named_parameters()), method.moving_average())
        for name, value in parts.items():
            running[name] = running.get(name, 0.0) + value.detach()
        since += 1
        last = step == steps - 1
        if (step + 1) % max(int(options.eval_every), 1) == 0 or last:
            record = {"step": step + 1, **{k: float(v) / since for k, v in running.items()}}
            running, since = {}, 0
            if val_x is not None:
                method.modules.eval()
                with torch.no_grad():
                    predicted = method.predict_normalised(val_x).float().cpu().numpy()
                record["val_spearman"] = spearman(predicted, validation.scores)
                if select_best and record["val_spearman"] > best_score:
                    best_score = record["val_spearman"]
                    best_state = copy.deepcopy(method.modules.state_dict())
            method.history.append(record)
        if state_path is not None and (step + 1) % every == 0 and not last:
            _save_state(state_path, key, step + 1, method, optimizer, scheduler,
                        generator, best_score, best_state, running, since)
    if select_best and best_state is not None:
        method.modules.load_state_dict(best_state)
    method.modules.eval()


STATE_FILE = "train_state.safetensors"


def _save_state(path: Path, key: dict[str, str], step: int, method, optimizer, scheduler,
                generator: torch.Generator, best_score: float, best_state, running, since) -> None:
    tensors = {f"model/{k}": v for k, v in method.modules.state_dict().items()}
    if best_state is not None:
        tensors.update({f"best/{k}": v for k, v in best_state.items()})
    for index, values in optimizer.state_dict()["state"].items():
        for name, value in values.items():
            tensors[f"optim/{index}/{name}"] = torch.as_tensor(value)
    tensors["rng/global"] = torch.get_rng_state()
    tensors["rng/generator"] = generator.get_state()
    if method.device.type == "cuda":
        tensors["rng/cuda"] = torch.cuda.get_rng_state(method.device)
    tensors.update({f"running/{k}": torch.as_tensor(v) for k, v in running.items()})
    tensors = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
    metadata = {
        **{f"key/{name}": value for name, value in key.items()},
        "step": str(step),
        "best_score": repr(best_score),
        "since": str(since),
        "history": json.dumps(method.history),
        "scheduler": json.dumps(scheduler.state_dict() if scheduler is not None else None),
        # a scheduler changes the groups' learning rates in place: keep them too
        "lrs": json.dumps([group["lr"] for group in optimizer.param_groups]),
    }
    io.write_bytes(path, save(tensors, metadata))


# what each part of a resume key covers, for the line that says why a state was not used
_KEY_PARTS = {"data": "the data changed since it was saved (ids, scores, splits, groups or "
                      "features differ)",
              "settings": "it was saved by a run with other settings"}


def _stale(saved: dict[str, str], key: dict[str, str]) -> str | None:
    """Why a state saved under ``saved`` does not belong to a run of ``key`` (None: it does;
    '' when it belongs to another phase of the same run, which is not worth a word)."""
    for part in _KEY_PARTS:
        if saved.get(part) != key.get(part):
            return _KEY_PARTS[part]
    return None if saved == key else ""


def _load_state(path: Path, key: dict[str, str], method, optimizer, scheduler,
                generator: torch.Generator):
    """Restore a saved training state into the live objects; None when there is none to use."""
    if not path.is_file():
        return None
    notify = getattr(method, "notify", None) or (lambda text: None)
    try:
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError):
        notify(f"not resuming from {path}: the file is damaged; training from the start")
        return None
    saved = {k[4:]: v for k, v in metadata.items() if k.startswith("key/")}
    reason = _stale(saved, key)
    if reason is not None:
        if reason:
            notify(f"not resuming from {path}: {reason}; training from the start")
        return None
    device = method.device
    method.modules.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model/")})
    best = {k[5:]: v.to(device) for k, v in tensors.items() if k.startswith("best/")} or None
    state: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in tensors.items():
        if key.startswith("optim/"):
            _, index, name = key.split("/", 2)
            state.setdefault(int(index), {})[name] = value if name == "step" else value.to(device)
    optim_state = optimizer.state_dict()
    optim_state["state"] = state
    for group, lr in zip(optim_state["param_groups"], json.loads(metadata["lrs"])):
        group["lr"] = lr
    optimizer.load_state_dict(optim_state)
    if scheduler is not None:
        scheduler.load_state_dict(json.loads(metadata["scheduler"]))
    torch.set_rng_state(tensors["rng/global"])
    generator.set_state(tensors["rng/generator"])
    if "rng/cuda" in tensors and device.type == "cuda":
        torch.cuda.set_rng_state(tensors["rng/cuda"], device)
    running = {k[8:]: v.to(device) for k, v in tensors.items() if k.startswith("running/")}
    method.history = json.loads(metadata["history"])
    return (int(metadata["step"]), float(metadata["best_score"]), best, running,
            int(metadata["since"]))
