"""The training loop every deep method shares.

Features and scores live on the device for the whole run and batches are drawn by index with a
seeded generator: no DataLoader, no per-step host-to-device copies, and no synchronisation
inside the loop except at validation points. Model selection uses the validation slice of the
labeled data (best Spearman), or the last step when there is none or ``select=last``.
"""

from __future__ import annotations

import copy
import math

import torch

from s4aqa.data.featureset import FeatureSet
from s4aqa.engine.metrics import spearman


def _draw(tensors: dict[str, torch.Tensor], size: int, generator: torch.Generator) -> dict:
    n = next(iter(tensors.values())).shape[0]
    index = torch.randint(n, (min(size, n),), generator=generator, device=generator.device)
    return {k: v[index] for k, v in tensors.items()}


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

    parameters = [p for p in method.modules.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(parameters, lr=options.lr, weight_decay=options.weight_decay)
    steps = int(options.steps)
    scheduler = None
    if options.schedule == "cosine":
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, max(steps, 1))

    select_best = options.select == "best" and val_x is not None
    best_score, best_state = -math.inf, None
    running: dict[str, torch.Tensor] = {}
    since = 0
    method.history = []
    for step in range(steps):
        method.modules.train()
        batch_l = _draw(labeled_data, options.batch_labeled, generator)
        batch_u = (_draw(unlabeled_data, options.batch_unlabeled, generator)
                   if unlabeled_data is not None else None)
        loss, parts = method.loss(batch_l, batch_u, step / max(steps, 1))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
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
    if select_best and best_state is not None:
        method.modules.load_state_dict(best_state)
    method.modules.eval()
