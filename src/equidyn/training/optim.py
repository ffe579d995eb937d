"""Adam and an exponential learning-rate decay, without ``torch.optim`` — so a job does not import ``torch._dynamo``.

Why not ``torch.optim.Adam``: in torch 2.13 every ``torch.optim.Optimizer`` imports ``torch._dynamo`` (≈ 800
modules, sympy among them) on its first ``add_param_group``, ``zero_grad`` and ``step`` — the methods are wrapped
in ``torch._disable_dynamo`` and ``step`` in ``_use_grad_for_differentiable``, which imports it unconditionally.
No ``foreach``/``fused`` choice avoids it. That import costs a training job about as much as importing torch
itself (docs/benchmarks.md, "Per-job fixed cost"), on each of the paper's ~420 training jobs. The jobs never
compile anything, so they need none of it.

What this is: the same arithmetic as ``torch.optim.Adam`` (L2 weight decay added to the gradient, bias-corrected
moments; ``amsgrad``, ``maximize`` and decoupled decay are not needed and not offered), so on the CPU the
parameters are bit-identical to torch's after any number of steps (tested). On the CPU it runs torch's
single-tensor algorithm, which is what ``torch.optim.Adam`` picks there; on an accelerator torch's multi-tensor
(``foreach``) algorithm, its default there, which launches a few kernels per step instead of a few per parameter.
The state dict has torch's layout (per-parameter ``step``/``exp_avg``/``exp_avg_sq``, ``param_groups`` with
``lr``), so a ``state/last.pt`` written by either optimiser resumes with the other.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torch import Tensor

StateDict = dict[str, Any]


class Adam:
    """Adam with L2 weight decay, one parameter group; the subset of ``torch.optim.Adam`` the trainer uses."""

    def __init__(
        self,
        params: Iterable[Tensor],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        foreach: bool | None = None,
    ) -> None:
        params = list(params)
        if not params:
            raise ValueError("Adam got an empty parameter list")
        if lr < 0 or eps < 0 or weight_decay < 0 or not all(0.0 <= b < 1.0 for b in betas):
            raise ValueError(f"invalid Adam settings: lr={lr}, betas={betas}, eps={eps}, weight_decay={weight_decay}")
        self.params = params
        self.param_groups = [
            {"lr": lr, "betas": tuple(betas), "eps": eps, "weight_decay": weight_decay, "params": params}
        ]
        self.foreach = foreach
        self.state: dict[int, dict[str, Tensor]] = {}  # parameter index -> step, exp_avg, exp_avg_sq

    def zero_grad(self, set_to_none: bool = True) -> None:
        for p in self.params:
            if p.grad is None:
                continue
            if set_to_none:
                p.grad = None
            else:
                p.grad.detach_().zero_()

    def _state(self, i: int, p: Tensor) -> dict[str, Tensor]:
        state = self.state.get(i)
        if state is None:
            # like torch: the step count is a CPU float tensor, the moments live with the parameter
            state = self.state[i] = {
                "step": torch.tensor(0.0),
                "exp_avg": torch.zeros_like(p, memory_format=torch.preserve_format),
                "exp_avg_sq": torch.zeros_like(p, memory_format=torch.preserve_format),
            }
        return state

    @torch.no_grad()
    def step(self) -> None:
        group = self.param_groups[0]
        active = [(i, p) for i, p in enumerate(self.params) if p.grad is not None]
        if not active:
            return
        for _, p in active:
            if p.grad.is_sparse or torch.is_complex(p):
                raise RuntimeError("this Adam supports dense real parameters only")
        foreach = self.foreach if self.foreach is not None else active[0][1].device.type != "cpu"
        args = (group["lr"], *group["betas"], group["eps"], group["weight_decay"])
        states = [self._state(i, p) for i, p in active]
        (self._foreach_step if foreach else self._single_step)([p for _, p in active], states, *args)

    @staticmethod
    def _single_step(params, states, lr, beta1, beta2, eps, weight_decay) -> None:
        # torch.optim.adam._single_tensor_adam (capturable=False, differentiable=False, amsgrad=False), op for op
        for p, state in zip(params, states, strict=True):
            grad = p.grad
            exp_avg, exp_avg_sq, step_t = state["exp_avg"], state["exp_avg_sq"], state["step"]
            step_t += 1
            if weight_decay != 0:
                grad = grad.add(p, alpha=weight_decay)
            exp_avg.lerp_(grad, 1 - beta1)
            exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
            step = step_t.item()
            bias_correction1 = 1 - beta1**step
            bias_correction2 = 1 - beta2**step
            step_size = lr / bias_correction1
            denom = (exp_avg_sq.sqrt() / bias_correction2**0.5).add_(eps)
            p.addcdiv_(exp_avg, denom, value=-step_size)

    @staticmethod
    def _foreach_step(params, states, lr, beta1, beta2, eps, weight_decay) -> None:
        # torch.optim.adam._multi_tensor_adam (capturable=False, amsgrad=False), for parameters on one device
        by_device: dict[tuple[torch.device, torch.dtype], list[int]] = {}
        for k, p in enumerate(params):
            by_device.setdefault((p.device, p.dtype), []).append(k)
        for index in by_device.values():
            ps = [params[k] for k in index]
            grads = [params[k].grad for k in index]
            exp_avgs = [states[k]["exp_avg"] for k in index]
            exp_avg_sqs = [states[k]["exp_avg_sq"] for k in index]
            steps = [states[k]["step"] for k in index]
            torch._foreach_add_(steps, torch.tensor(1.0), alpha=1.0)
            if weight_decay != 0:
                grads = torch._foreach_add(grads, ps, alpha=weight_decay)
            torch._foreach_lerp_(exp_avgs, grads, 1 - beta1)
            torch._foreach_mul_(exp_avg_sqs, beta2)
            torch._foreach_addcmul_(exp_avg_sqs, grads, grads, 1 - beta2)
            bias_correction1 = [1 - beta1 ** s.item() for s in steps]
            bias_correction2 = [1 - beta2 ** s.item() for s in steps]
            step_size = [(lr / bc) * -1 for bc in bias_correction1]
            denom = torch._foreach_sqrt(exp_avg_sqs)
            torch._foreach_div_(denom, [bc**0.5 for bc in bias_correction2])
            torch._foreach_add_(denom, eps)
            torch._foreach_addcdiv_(ps, exp_avgs, denom, step_size)

    def state_dict(self) -> StateDict:
        """torch.optim.Adam's layout: ``state`` by parameter index and one ``param_groups`` entry."""
        group = {k: v for k, v in self.param_groups[0].items() if k != "params"}
        group.update(amsgrad=False, maximize=False, params=list(range(len(self.params))))
        return {"state": {i: dict(s) for i, s in self.state.items()}, "param_groups": [group]}

    def load_state_dict(self, state_dict: StateDict) -> None:
        """Load a state written by this class or by ``torch.optim.Adam`` for the same parameters."""
        groups = state_dict["param_groups"]
        if len(groups) != 1 or len(groups[0]["params"]) != len(self.params):
            raise ValueError("optimiser state is for a different set of parameters")
        saved = groups[0]
        if saved.get("amsgrad") or saved.get("maximize") or saved.get("decoupled_weight_decay"):
            raise ValueError("optimiser state uses an Adam variant (amsgrad/maximize/AdamW) this class does not run")
        position = {pid: k for k, pid in enumerate(saved["params"])}
        self.param_groups[0].update(
            lr=saved["lr"], betas=tuple(saved["betas"]), eps=saved["eps"], weight_decay=saved["weight_decay"]
        )
        self.state = {}
        for pid, s in state_dict["state"].items():
            p = self.params[position[pid]]
            self.state[position[pid]] = {
                "step": s["step"].detach().to("cpu", torch.float32).clone(),
                "exp_avg": s["exp_avg"].detach().to(p.device, p.dtype).clone(),
                "exp_avg_sq": s["exp_avg_sq"].detach().to(p.device, p.dtype).clone(),
            }


class ExponentialLR:
    """``lr ← lr · gamma`` once per epoch, as ``torch.optim.lr_scheduler.ExponentialLR`` (same rounding)."""

    def __init__(self, optimiser: Adam, gamma: float) -> None:
        self.optimiser = optimiser
        self.gamma = gamma
        self.base_lrs = [g["lr"] for g in optimiser.param_groups]
        self.last_epoch = 0

    def step(self) -> None:
        self.last_epoch += 1
        for group in self.optimiser.param_groups:
            group["lr"] = group["lr"] * self.gamma

    def get_last_lr(self) -> list[float]:
        return [g["lr"] for g in self.optimiser.param_groups]

    def state_dict(self) -> StateDict:
        return {"gamma": self.gamma, "base_lrs": self.base_lrs, "last_epoch": self.last_epoch}

    def load_state_dict(self, state_dict: StateDict) -> None:
        """Load a state written by this class or by torch's ``ExponentialLR`` (the lr itself is the optimiser's)."""
        self.gamma = state_dict["gamma"]
        self.base_lrs = list(state_dict["base_lrs"])
        self.last_epoch = int(state_dict["last_epoch"])
