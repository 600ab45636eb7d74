"""Several independent models of one method trained at once, as one batched model.

Runs that differ only by seed (or by a loss weight) share everything but their weights and
their data draw. Their parameters are stacked along a leading model axis and one vectorised
step (``torch.func.vmap``) trains all of them, so a protocol's runs share kernel launches. AdamW
acts element by element, so one optimiser over stacked weights is K independent optimisers.

The numbers are those of K independent trainings, statistically, but not bit-identical to
running each alone: the random draws (batches, masks, dropout) are taken in another order.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.func import functional_call, stack_module_state, vmap

from s4aqa.data.featureset import FeatureSet
from s4aqa.engine.metrics import spearman
from s4aqa.engine.trainer import make_optimizer, optimizer_step, update_moving_average
from s4aqa.errors import S4AQAError


class _LossOf(nn.Module):
    """A module whose forward is a method's loss, so functional_call can swap its weights."""

    def __init__(self, method) -> None:
        super().__init__()
        self.inner = method.modules
        self.method = [method]  # a list, so the method is not registered as a submodule

    def forward(self, labeled, unlabeled, progress):
        return self.method[0].loss(labeled, unlabeled, progress)


class _PredictOf(_LossOf):
    def forward(self, x):
        return self.method[0].predict_normalised(x)


def _stack(dicts: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    return {k: torch.stack([d[k] for d in dicts]) for k in dicts[0]}


def can_group(methods) -> bool:
    """Methods train together when they are the same deep class with the same shape of options."""
    from s4aqa.methods.base import DeepMethod

    first = methods[0]
    return all(isinstance(m, DeepMethod) and type(m) is type(first)
               and getattr(m, "groupable", True) for m in methods)


def train_group(methods, labeled: list[FeatureSet], unlabeled: list[FeatureSet | None],
                validation: list[FeatureSet | None]) -> None:
    """Fit ``methods`` (one per seed) together; each ends as if fitted alone."""
    if not can_group(methods):
        raise S4AQAError("only deep methods of one kind can be trained as a group")
    steps = {int(m.options.steps) for m in methods}
    if len(steps) != 1:
        raise S4AQAError("grouped runs must share the number of steps")
    for m, lab, unl, val in zip(methods, labeled, unlabeled, validation):
        unl = m.check_unlabeled(unl)
        m.setup(lab, [fs for fs in (unl, val) if fs is not None and len(fs)])
    first = methods[0]
    options, device, count = first.options, first.device, len(methods)
    steps = steps.pop()

    lab_data = [m.labeled_tensors(fs) for m, fs in zip(methods, labeled)]
    sizes = {next(iter(d.values())).shape[0] for d in lab_data}
    use_unlabeled = first.uses_unlabeled
    unl_data = ([m.unlabeled_tensors(fs) for m, fs in zip(methods, unlabeled)]
                if use_unlabeled else None)
    if len(sizes) != 1 or (unl_data and len({d["x"].shape[0] for d in unl_data}) != 1):
        raise S4AQAError("grouped runs need labeled (and unlabeled) sets of equal size")
    lab_stack = _stack(lab_data)
    unl_stack = _stack(unl_data) if unl_data else None
    has_val = all(v is not None and len(v) for v in validation)
    val_x = _stack([{"x": m.to_input(v.features)} for m, v in zip(methods, validation)])["x"] \
        if has_val and len({len(v) for v in validation}) == 1 else None

    losses = [_LossOf(m) for m in methods]
    params, buffers = stack_module_state(losses)
    # the shared module objects run each model's weights through functional_call
    template = losses[0]
    predictor = _PredictOf(first)

    def one_loss(p, b, lab, unl, progress):
        return functional_call(template, (p, b), (lab, unl, progress))

    def one_prediction(p, b, x):
        return functional_call(predictor, (p, b), (x,))

    batched_loss = vmap(one_loss, in_dims=(0, 0, 0, 0 if unl_stack else None, None),
                        randomness="different")
    batched_prediction = vmap(one_prediction, randomness="different")
    # AdamW is element-wise: one optimiser over stacked weights is K independent ones
    optimizer, scheduler = make_optimizer([p for p in params.values() if p.requires_grad], options)
    generator = torch.Generator(device=device)
    generator.manual_seed(first.init_seed() + 1)
    rows = torch.arange(count, device=device)[:, None]

    def draw(stack, size):
        n = next(iter(stack.values())).shape[1]
        index = torch.randint(n, (count, min(size, n)), generator=generator, device=device)
        return {k: v[rows, index] for k, v in stack.items()}

    named = {name[len("inner."):]: value for name, value in params.items()}
    average = first.moving_average()
    select_best = options.select == "best" and val_x is not None
    best = [-math.inf] * count
    best_params = {k: v.detach().clone() for k, v in params.items()}
    histories: list[list[dict]] = [[] for _ in methods]
    running: dict[str, torch.Tensor] = {}
    since = 0
    template.train()
    for step in range(steps):
        batch_l = draw(lab_stack, options.batch_labeled)
        batch_u = draw(unl_stack, options.batch_unlabeled) if unl_stack else None
        loss, parts = batched_loss(params, buffers, batch_l, batch_u, step / max(steps, 1))
        optimizer_step(optimizer, scheduler, loss.sum())  # per-model losses are independent
        update_moving_average(named, average)
        for name, value in parts.items():
            running[name] = running.get(name, 0.0) + value.detach()
        since += 1
        if (step + 1) % max(int(options.eval_every), 1) == 0 or step == steps - 1:
            means = {k: (v / since).cpu().numpy() for k, v in running.items()}
            running, since = {}, 0
            scores = None
            if val_x is not None:
                template.eval()
                fastpath = torch.backends.mha.get_fastpath_enabled()
                torch.backends.mha.set_fastpath_enabled(False)  # it has no vmap rule
                with torch.no_grad():
                    scores = batched_prediction(params, buffers, val_x).float().cpu().numpy()
                torch.backends.mha.set_fastpath_enabled(fastpath)
                template.train()
            for k in range(count):
                record = {"step": step + 1, **{n: float(v[k]) for n, v in means.items()}}
                if scores is not None:
                    record["val_spearman"] = spearman(scores[k], validation[k].scores)
                    if select_best and record["val_spearman"] > best[k]:
                        best[k] = record["val_spearman"]
                        with torch.no_grad():
                            for name, value in params.items():
                                best_params[name][k].copy_(value[k])
                histories[k].append(record)
    final = best_params if select_best else {k: v.detach() for k, v in params.items()}
    for k, method in enumerate(methods):
        state = {name[len("inner."):]: value[k].detach().clone() for name, value in final.items()}
        state.update({name[len("inner."):]: value[k].clone() for name, value in buffers.items()})
        method.modules.load_state_dict(state)
        method.modules.eval()
        method.history = histories[k]
