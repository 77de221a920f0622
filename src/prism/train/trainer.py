"""The one training loop every PRISM task runs on.

Explicit and flat on purpose (after stylegan2-ada's training_loop): per step, fetch a batch, run
the task's named phases (each: zero grads, loss, backward, optimizer step), update the EMA and
learning rates, then log / sample / validate / checkpoint on their intervals. Devices, processes
and precision come from Lightning Fabric, so one CPU process is just the one-device case.
"""
from __future__ import annotations

import contextlib
import copy
import math
import os
import sys
import signal
import time
from pathlib import Path

import torch
from lightning_fabric import Fabric
from torch.utils.data import DataLoader

from prism import config as C
from prism.data.folder import collate
from prism.data.sampling import ResumableSampler
from prism.modelio import init_weights
from prism.runtime import check_devices, limit_threads
from prism.tasks import task_class
from prism.train import checkpoint as ckpt
from prism.train import faults
from prism.train.loggers import RunLogger, plot_losses
from prism.train.progress import TrainProgress
from prism.train.rundir import lock_run_dir, new_run_dir


class TrainingStopped(RuntimeError):
    """The run ended early for a reason the user must act on (non-finite loss)."""


class Trainer:
    def __init__(self, cfg: dict, runs_dir: str | Path = "runs", resume: str | Path | None = None,
                 progress: bool = True):
        self.cfg, self.runs_dir, self.progress_enabled = cfg, Path(runs_dir), progress
        self.resume_dir = Path(resume) if resume else None
        t = cfg["train"]
        if t["torch_threads"]:
            limit_threads(t["torch_threads"])
        check_devices(t)
        strategy = "auto"
        if t["devices"] != 1 or t["num_nodes"] > 1:
            from datetime import timedelta

            from lightning_fabric.strategies import DDPStrategy
            # find_unused_parameters: a GAN phase may leave some of a net's parameters out of its
            # loss (style mixing, lazy regularisation); DDP would otherwise fail at the next step.
            strategy = DDPStrategy(timeout=timedelta(seconds=float(t["collective_timeout_s"])),
                                   find_unused_parameters=True)
        self.fabric = Fabric(accelerator=t["accelerator"], devices=t["devices"], num_nodes=t["num_nodes"],
                             precision=t["precision"], strategy=strategy)
        self.stop_requested = False
        self._explained = False  # a lost rank has been reported (once)

    # ------------------------------------------------------------------------------------------
    def fit(self) -> Path:
        self._lock = None
        if self.resume_dir and self.fabric.is_global_zero:  # before any process starts: a clear error, no hang
            self._lock = lock_run_dir(self.resume_dir)
        try:
            return self._fit()
        except Exception as e:
            if self.fabric.world_size > 1 and not isinstance(e, TrainingStopped) and faults.lost_peer(e):
                self._explained = True
                raise TrainingStopped(self._peer_lost(f"{type(e).__name__}: {faults.first_line(e)}")) from e
            raise
        finally:  # the run directory is free for the next run, in this process too
            if self._lock is not None:
                self._lock.close()

    def _fit(self) -> Path:
        fabric, cfg, t = self.fabric, self.cfg, self.cfg["train"]
        fabric.launch()
        self._explained = False
        if fabric.world_size > 1 and fabric.is_global_zero:
            self._explain_fabric_kill()
        fabric.seed_everything(cfg["seed"], verbose=False)
        task = self.task = task_class(cfg["task"])(cfg)
        self._build_loaders()  # bad data paths fail here, before a run directory is made
        self.run_dir = self._prepare_run_dir()

        nets = task.build_networks()
        if t["init_from"] and not self.resume_dir:  # a resumed run has its own weights
            started = init_weights(nets, t["init_from"])
            fabric.print("init_from " + str(t["init_from"]) + ": " + ", ".join(f"{n} {how}" for n, how in started.items()))
        if fabric.world_size > 1 and t["sync_batchnorm"] and fabric.device.type != "cpu":
            nets = {n: torch.nn.SyncBatchNorm.convert_sync_batchnorm(m) for n, m in nets.items()}
        opts = task.build_optimizers(nets)
        self.ema = {n: copy.deepcopy(nets[n]).eval().requires_grad_(False).to(fabric.device)
                    for n in (task.ema_nets or task.inference_nets) if t["ema"] > 0 and n in nets}
        task.nets = {n: self._setup_network(m) for n, m in nets.items()}
        task.ema = self.ema
        self.opts = {n: fabric.setup_optimizers(o) for n, o in opts.items()}
        self.base_lrs = {n: [g["lr"] for g in o.param_groups] for n, o in self.opts.items()}
        self.step, self.epoch, self.batch_in_epoch, self.elapsed = 0, 0, 0, 0.0
        self.best = {"value": None, "step": None}
        self.skipped: list[str] = []
        self.last_metrics: dict = {}

        if self.resume_dir:
            self._load(ckpt.find_checkpoint(self.resume_dir) or self._missing_checkpoint())
        self.log = RunLogger(self.run_dir, enabled=fabric.is_global_zero)
        self._train_loop()
        return self.run_dir

    # ------------------------------------------------------------------------------------------
    def _train_loop(self) -> None:
        fabric, t, task = self.fabric, self.cfg["train"], self.task
        phases = task.phases()
        sample_batch = self._sample_batch()
        batches = self._batches()
        sums: dict[str, float] = {}
        counts: dict[str, int] = {}  # per key: a phase active every 16 steps is averaged over its own steps
        old_handler = signal.signal(signal.SIGINT, self._on_sigint) if _main_thread() else None
        bar = TrainProgress(t["steps"], self.step, enabled=self.progress_enabled and fabric.is_global_zero)
        started = time.time() - self.elapsed
        try:
            while self.step < t["steps"] and not self.stop_requested:
                batch = task.to_device(next(batches))
                self.skipped.extend(batch.pop("skipped", []))
                state: dict = {}
                for phase in phases:
                    if not phase.active(self.step):
                        continue
                    logs = self._run_phase(phase, batch, state)
                    for k, v in logs.items():
                        sums[k] = sums.get(k, 0.0) + float(v)
                        counts[k] = counts.get(k, 0) + 1
                self._update_ema()
                self.step += 1
                self._set_lr()
                self.elapsed = time.time() - started
                if self._due(t["log_every"]):
                    means = {k: v / counts[k] for k, v in sums.items()}
                    means["lr"] = next(iter(self.opts.values())).param_groups[0]["lr"] if self.opts else 0.0
                    self.log.losses(self.step, means)
                    bar.update(self.step, means)
                    sums, counts = {}, {}
                else:
                    bar.update(self.step)
                self._periodic_work(sample_batch)
        except TrainingStopped as e:
            bar.close()
            last = ckpt.find_checkpoint(self.run_dir)
            raise TrainingStopped(f"{e}\nThe last good checkpoint is kept: "
                                  f"{last or '(none was written yet)'}. Lower the learning rate, or "
                                  f"resume with: prism train --resume {self.run_dir}") from None
        finally:
            bar.close()
            if old_handler is not None:
                signal.signal(signal.SIGINT, old_handler)
        if self.stop_requested:
            self._save("latest")
            fabric.print(f"Interrupted at step {self.step}; saved. Resume with: prism train --resume {self.run_dir}")
        else:
            self._finish()
        self.log.close()

    def _setup_network(self, net: torch.nn.Module) -> torch.nn.Module:
        """Fabric's wrapper (device, precision, DDP) for a net that trains. A net with nothing to
        train (e.g. the frozen generator an inversion encoder learns through) gets the device and
        precision only: DDP refuses a module without trainable parameters, and there is nothing
        to synchronise."""
        if any(p.requires_grad for p in net.parameters()):
            return self.fabric.setup_module(net)
        return self.fabric.to_device(self.fabric.strategy.precision.convert_module(net))

    def _run_phase(self, phase, batch: dict, state: dict) -> dict:
        opt = self.opts[phase.optimizer]
        opt.zero_grad(set_to_none=True)
        flags = {name: [p.requires_grad for p in self.task.nets[name].parameters()] for name in phase.frozen}
        for name in phase.frozen:
            self.task.nets[name].requires_grad_(False)
        try:
            loss, logs = phase.fn(batch, state)
            if not torch.isfinite(loss.detach()).all():
                bad = {k: float(v) for k, v in logs.items()}
                raise TrainingStopped(f"Training stopped: the '{phase.name}' loss became {float(loss.detach())} at step "
                                      f"{self.step} (losses: {bad}).")
            self.fabric.backward(loss)
        finally:  # as they were: a net frozen for the whole run stays frozen
            for name, was in flags.items():
                for p, flag in zip(self.task.nets[name].parameters(), was):
                    p.requires_grad_(flag)
        opt.step()
        return logs

    def _update_ema(self) -> None:
        t = self.cfg["train"]
        # Warm-up (as TF's num_updates): a short run's average must not keep ~30% of the random init.
        k = self.step - t["ema_start"]
        decay = min(t["ema"], (1 + k) / (10 + k)) if k >= 0 else 0.0
        with torch.no_grad():
            for name, ema in self.ema.items():
                src = self.task.plain(name)
                for pe, p in zip(ema.parameters(), src.parameters()):
                    pe.lerp_(p.detach(), 1.0 - decay)
                for be, b in zip(ema.buffers(), src.buffers()):
                    be.copy_(b)

    def _due(self, every: int) -> bool:
        """An every-N-steps action is due: each N steps (0: never) and always at the last step."""
        return self.step == self.cfg["train"]["steps"] or (every > 0 and self.step % every == 0)

    def _set_lr(self) -> None:
        """The learning rate is a pure function of the step: nothing to save, exact on resume."""
        factor = self._lr_factor(self.step)
        for name, opt in self.opts.items():
            for group, base in zip(opt.param_groups, self.base_lrs[name]):
                group["lr"] = base * factor

    def _lr_factor(self, step: int) -> float:
        t = self.cfg["train"]
        if t["lr_schedule"] == "constant":
            return 1.0
        if t["lr_schedule"] == "linear_decay":
            start = int(t["decay_start"] * t["steps"])
            return 1.0 - max(0, step - start) / max(1, t["steps"] - start)
        raise C.ConfigError(f"unknown train.lr_schedule '{t['lr_schedule']}'; use constant or linear_decay")

    # --- data -----------------------------------------------------------------------------------
    def _build_loaders(self) -> None:
        t, fabric = self.cfg["train"], self.fabric
        train_ds = self.task.train_dataset()
        self.sampler = ResumableSampler(len(train_ds), seed=self.cfg["seed"], rank=fabric.global_rank,
                                        world_size=fabric.world_size, length=getattr(train_ds, "epoch_length", None))
        if len(self.sampler) < t["batch_size"]:
            raise C.ConfigError(f"train.batch_size={t['batch_size']} exceeds the {len(self.sampler)} training "
                                f"images per process")
        self.train_loader = DataLoader(train_ds, batch_size=t["batch_size"], sampler=self.sampler, drop_last=True,
                                       collate_fn=collate, num_workers=t["num_workers"],
                                       generator=_own_generator(self.cfg["seed"]))
        val_ds = self.task.val_dataset()
        if val_ds is not None and t["val_batches"]:  # an evenly spread subset, not the first files
            val_ds = _spread_subset(val_ds, t["val_batches"] * t["batch_size"])
        self.val_loader = None if val_ds is None else DataLoader(
            val_ds, batch_size=t["batch_size"], shuffle=False, collate_fn=collate, num_workers=t["num_workers"],
            generator=_own_generator(self.cfg["seed"]))

    def _batches(self):
        per_epoch = len(self.sampler) // self.cfg["train"]["batch_size"]
        while True:
            self.sampler.set_epoch(self.epoch, start=self.batch_in_epoch * self.cfg["train"]["batch_size"])
            for batch in self.train_loader:
                self.batch_in_epoch += 1
                yield batch
            if self.batch_in_epoch >= per_epoch:
                self.epoch, self.batch_in_epoch = self.epoch + 1, 0

    def _sample_batch(self):
        """8 fixed images spread over the validation (else training) set, shown at every sample step."""
        ds = self.val_loader.dataset if self.val_loader is not None else self.task.train_dataset()
        picked = _spread_subset(ds, 8)
        return self.task.to_device(collate([picked[i] for i in range(len(picked))]))

    # --- sampling, validation, checkpoints on their intervals ---------------------------------------
    def _periodic_work(self, sample_batch) -> None:
        """Every rank runs this at every step and so takes part in the same collectives in the
        same order: sampling and validation run on rank 0 alone and involve none (the task sees
        unwrapped networks there); validation's result is broadcast, so every rank makes the same
        best-checkpoint decision; each checkpoint write ends in one barrier on every rank."""
        t = self.cfg["train"]
        if sample_batch is not None and self._due(t["sample_every"]) and self.fabric.is_global_zero:
            with self._inference_view():
                self.log.image(self.step, self.task.sample_grid(sample_batch))
        if self.val_loader is not None and self._due(t["val_every"]):
            metrics = self._validate() if self.fabric.is_global_zero else None
            if self.fabric.world_size > 1:
                metrics = self.fabric.broadcast(metrics, src=0)
            self.last_metrics = metrics
            if self._improves(metrics):
                self.best = {"value": metrics[self._best_key()[0]], "step": self.step, "metric": self._best_key()[0]}
                self._save("best")
        if self._due(t["ckpt_every"]):
            self._save("latest")
        if t["keep_every"] and self.step % t["keep_every"] == 0:
            self._save(f"step-{self.step:07d}")

    @contextlib.contextmanager
    def _inference_view(self):
        """The task's networks unwrapped (no DDP: its forward would join a collective) and in eval
        mode, for sampling and validation; as they were afterwards."""
        wrapped = self.task.nets
        self.task.nets = {n: self.task.plain(n) for n in wrapped}
        for net in self.task.nets.values():
            net.train(False)
        try:
            yield
        finally:
            for net in self.task.nets.values():
                net.train(True)
            self.task.nets = wrapped

    def _validate(self) -> dict:
        """Rank 0: the task's validation metrics on the val subset (logged)."""
        limit = self.cfg["train"]["val_batches"]
        batches = (self.task.to_device(b) for i, b in enumerate(self.val_loader) if not limit or i < limit)
        with self._inference_view():
            metrics = self.task.validate(batches)
        self.log.metrics(self.step, metrics)
        return metrics

    def _improves(self, metrics: dict) -> bool:
        name, mode = self._best_key()
        value = metrics.get(name)
        if value is None or not math.isfinite(value):
            return False
        best = self.best["value"]
        return best is None or (value > best if mode == "max" else value < best)

    def _best_key(self) -> tuple[str, str]:
        t = self.cfg["train"]
        default = self.task.best_metric or (None, "max")
        return t["best_metric"] or default[0], t["best_mode"] or default[1]

    # --- checkpoints ------------------------------------------------------------------------------
    def _state(self) -> dict:
        return {
            "format": "prism-checkpoint-1", "step": self.step, "epoch": self.epoch,
            "batch_in_epoch": self.batch_in_epoch, "elapsed": self.elapsed,
            "nets": {n: self.task.plain(n).state_dict() for n in self.task.nets},
            "ema": {n: m.state_dict() for n, m in self.ema.items()},
            "opts": {n: o.state_dict() for n, o in self.opts.items()},
            "task": self.task.state_dict(),
            "rng": ckpt.capture_rng(), "best": dict(self.best), "metrics": dict(self.last_metrics),
            "skipped": list(self.skipped), "world_size": self.fabric.world_size,
            "samples_in_epoch": self.batch_in_epoch * self.cfg["train"]["batch_size"] * self.fabric.world_size,
        }

    def _save(self, name: str) -> None:
        state = self._state()  # every rank captures (collectives are not involved), rank 0 writes
        if self.fabric.is_global_zero:
            ckpt.atomic_torch_save(state, self.run_dir / ckpt.CHECKPOINT_DIR / f"{name}.pt")
        self.fabric.barrier()

    def _load(self, path: Path) -> None:
        state = ckpt.load_checkpoint(path)
        for n, sd in state["nets"].items():
            self.task.plain(n).load_state_dict(sd)
        for n, sd in state["ema"].items():
            if n in self.ema:
                self.ema[n].load_state_dict(sd)
        for n, sd in state["opts"].items():
            self.opts[n].load_state_dict(sd)
        self.step, self.epoch, self.batch_in_epoch = state["step"], state["epoch"], state["batch_in_epoch"]
        if state.get("world_size", 1) != self.fabric.world_size:  # resumed on another device count:
            # continue from the same share of the epoch (exact resume needs the same count)
            per_batch = self.cfg["train"]["batch_size"] * self.fabric.world_size
            self.batch_in_epoch = state.get("samples_in_epoch", 0) // per_batch
            self.fabric.print(f"Resuming a {state.get('world_size', 1)}-process run on {self.fabric.world_size}")
        self.elapsed, self.best, self.skipped = state["elapsed"], state["best"], state["skipped"]
        self.last_metrics = state.get("metrics", {})
        self.task.load_state_dict(state.get("task", {}))
        ckpt.restore_rng(state["rng"])
        self._set_lr()
        self.fabric.print(f"Resumed {self.run_dir} from {path.name} at step {self.step}")

    def _peer_lost(self, cause: str) -> str:
        run_dir = getattr(self, "run_dir", None)
        return faults.peer_lost_message(self.fabric.global_rank, self.fabric.world_size,
                                        self.cfg["train"]["collective_timeout_s"], run_dir, cause)

    def _explain_fabric_kill(self) -> None:
        def explain(codes):
            if not self._explained:
                self._explained = True
                print(f"error: {self._peer_lost(f'child rank exit codes: {codes}')}", file=sys.stderr, flush=True)
        faults.before_fabric_kills(explain)

    def _missing_checkpoint(self):
        raise FileNotFoundError(f"{self.resume_dir}: no checkpoints/latest.pt to resume from")

    # --- run directory, end of run ----------------------------------------------------------------
    def _prepare_run_dir(self) -> Path:
        if self.resume_dir:
            run_dir = self.resume_dir
        else:
            path = str(new_run_dir(self.runs_dir, self.cfg["name"])) if self.fabric.is_global_zero else None
            run_dir = Path(self.fabric.broadcast(path, src=0))
        if self.fabric.is_global_zero:
            if not self.resume_dir:
                self._lock = lock_run_dir(run_dir)
            ckpt.remove_stale_temporaries(run_dir)  # left by a kill mid-write; the lock is ours
            # atomic: a resume rewrites it, and a kill mid-write must not leave a run that cannot resume
            tmp = run_dir / f".config.yaml.{os.getpid()}.tmp"
            try:
                C.dump(self.cfg, tmp)
                os.replace(tmp, run_dir / "config.yaml")
            finally:
                tmp.unlink(missing_ok=True)
        return run_dir

    def _on_sigint(self, signum, frame) -> None:
        if self.stop_requested:  # second Ctrl-C: stop now
            raise KeyboardInterrupt
        self.stop_requested = True

    def _finish(self) -> None:
        if not self.fabric.is_global_zero:
            return
        from prism.modelio import export_run
        model_dir = export_run(self.run_dir)
        plot = plot_losses(self.run_dir / "log.jsonl", self.run_dir / "loss_curves.png")
        if self.skipped:
            (self.run_dir / "skipped_files.txt").write_text("\n".join(sorted(set(self.skipped))) + "\n")
            self.fabric.print(f"Skipped {len(set(self.skipped))} unreadable file(s); see {self.run_dir / 'skipped_files.txt'}")
        self.fabric.print(f"Done: {self.step} steps in {self.elapsed / 60:.1f} min. Run: {self.run_dir}  Model: {model_dir}"
                          + (f"  Loss curves: {plot}" if plot else ""))


def _main_thread() -> bool:
    import threading
    return threading.current_thread() is threading.main_thread()


def _spread_subset(ds, n: int):
    if len(ds) <= n:
        return ds
    return torch.utils.data.Subset(ds, [round(i * (len(ds) - 1) / max(n - 1, 1)) for i in range(n)])


def _own_generator(seed: int) -> torch.Generator:
    """DataLoader iterators draw a worker seed from the *global* RNG unless given their own;
    that would shift dropout noise whenever a loader is (re)created and break exact resume."""
    return torch.Generator().manual_seed(seed)
