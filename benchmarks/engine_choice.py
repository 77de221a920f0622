"""Fabric vs Accelerate for the PRISM GAN trainer: tiny 2-process CPU/gloo GAN run per engine/launcher.

Run: /work/main/.venv/bin/python benchmarks/engine_choice.py   (no args = orchestrator; prints a table)
Each trial is a fresh `python this_file.py --trial NAME` (or `accelerate launch ... --trial NAME`) so that the
engines' own launchers do the process creation. Rank 0 of each trial writes a JSON result that the orchestrator reads.
"""
import json, os, subprocess, sys, tempfile, time

import torch
import torch.nn as nn
import torch.nn.functional as F

if os.environ.get("EC_LOG"):  # count how often this module is executed (launchers that re-run / re-import the script)
    with open(os.environ["EC_LOG"], "a") as f:
        f.write(f"{os.getpid()} {__name__}\n")

STEPS, BATCH, N_IMG = 20, 4, 160


class G(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Conv2d(8, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(),
                                 nn.Conv2d(32, 3, 3, padding=1), nn.Tanh())

    def forward(self, z):  # z: (B, 8, 32, 32)
        return self.net(z)


class D(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(3, 16, 4, 2, 1), nn.LeakyReLU(0.2), nn.Conv2d(16, 32, 4, 2, 1),
                                  nn.BatchNorm2d(32), nn.LeakyReLU(0.2))
        self.head = nn.Conv2d(32, 1, 8)

    def features(self, x):  # a non-forward method, e.g. for a feature-matching loss
        return self.body(x)

    def forward(self, x):
        return self.head(self.body(x)).flatten(1)


def run_gan(E, trial, out_path):
    """Engine-agnostic loop. E: small adapter with setup/backward/gather/barrier/save/load/rank/world."""
    info = {"trial": trial, "world": E.world, "default_threads": torch.get_num_threads()}
    torch.set_num_threads(1)  # same for every trial: 1 intra-op thread per rank (fair, less noise on a shared box)
    torch.manual_seed(0)
    g, d = G(), D()
    og = torch.optim.Adam(g.parameters(), 2e-4, betas=(0.5, 0.999))
    od = torch.optim.Adam(d.parameters(), 2e-4, betas=(0.5, 0.999))
    data = torch.rand(N_IMG, 3, 32, 32, generator=torch.Generator().manual_seed(123)) * 2 - 1
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(data), batch_size=BATCH)
    g, d, og, od, loader = E.setup(g, d, og, od, loader)
    info["wrapped_type"] = type(d).__name__
    info["sd_key0"] = next(iter(d.state_dict()))
    info["find_unused"] = getattr(getattr(d, "_forward_module", d), "find_unused_parameters", "n/a (no DDP)")
    zgen = torch.Generator().manual_seed(1000 + E.rank)
    act = {}
    E.raw(d).body[0].register_forward_hook(lambda m, i, o: act.__setitem__("dtype", str(o.dtype)))
    bce = F.binary_cross_entropy_with_logits
    E.barrier(); t0 = tl = time.perf_counter(); dts = []
    for step, (real,) in enumerate(loader):
        if step == STEPS: break
        if step: dts.append(time.perf_counter() - tl); tl = time.perf_counter()
        if step == 0: first = real.sum().reshape(1).double()
        z = torch.randn(real.shape[0], 8, 32, 32, generator=zgen)
        # D step: G output detached
        fake = g(z)
        ld_real, ld_fake = d(real), d(fake.detach())
        loss_d = bce(ld_real, torch.ones_like(ld_real)) + bce(ld_fake, torch.zeros_like(ld_fake))
        od.zero_grad(set_to_none=True); E.backward(loss_d); od.step()
        # G step: D frozen (requires_grad False), gradients flow through D into G
        for p in d.parameters(): p.requires_grad_(False)
        lg = d(fake)
        loss_g = bce(lg, torch.ones_like(lg))
        og.zero_grad(set_to_none=True); E.backward(loss_g); og.step()
        for p in d.parameters(): p.requires_grad_(True)
    E.barrier(); info["loop_s"] = round(time.perf_counter() - t0, 3)
    info["step_ms_med"] = round(1000 * sorted(dts)[len(dts) // 2], 1)
    info["steps"] = step if step == STEPS else step + 1
    info["fwd_dtype_inside_D"], info["D_out_dtype"] = act.get("dtype"), str(ld_real.dtype)
    info["loss_dtype"], info["param_dtype"] = str(loss_d.dtype), str(next(d.parameters()).dtype)
    flat = lambda m, what: torch.cat([t.detach().double().flatten() for t in getattr(E.raw(m), what)()])
    params, bufs = torch.cat([flat(g, "parameters"), flat(d, "parameters")]), torch.cat([flat(g, "buffers"), flat(d, "buffers")])
    gp, gb, gf = E.gather(params), E.gather(bufs), E.gather(first)
    info["params_identical"] = all(torch.equal(gp[0], r) for r in gp)
    info["buffers_identical"] = all(torch.equal(gb[0], r) for r in gb)
    info["data_sharded"] = E.world == 1 or len(set(gf.flatten().tolist())) == E.world
    with torch.no_grad():  # non-forward method of a wrapped module (e.g. feature-matching loss)
        try:
            d.features(real); info["D.features()"] = "ok"
        except Exception as e:
            info["D.features()"] = f"{type(e).__name__}: {str(e)[:70]}"
            if hasattr(d, "mark_forward_method"):
                d.mark_forward_method("features"); d.features(real); info["D.features()"] += " | ok after mark_forward_method"
    # checkpoint: save on all ranks' call, restore into perturbed models, compare
    ck = os.path.join(os.path.dirname(out_path), f"ckpt_{trial}")
    before = params.clone()
    E.save(ck, g, d, og, od)
    with torch.no_grad():
        for p in list(g.parameters()) + list(d.parameters()): p.add_(1.0)
    E.load(ck, g, d, og, od)
    info["ckpt_files"] = sorted(os.listdir(ck)) if os.path.isdir(ck) else [os.path.basename(ck)]
    info["ckpt_roundtrip"] = torch.equal(before, torch.cat([flat(g, "parameters"), flat(d, "parameters")]))
    info["optim_state_restored"] = len(E.raw_opt(od).state_dict()["state"]) > 0
    if E.rank == 0:
        with open(out_path, "w") as f:
            json.dump(info, f)


def fabric_main(fabric, trial, out):
    class E:
        rank, world, barrier, backward = fabric.global_rank, fabric.world_size, fabric.barrier, fabric.backward
        raw = staticmethod(lambda m: m.module)  # _FabricModule.module -> original nn.Module
        raw_opt = staticmethod(lambda o: o.optimizer)
        def setup(g, d, og, od, dl):  # noqa: N805 - one setup() call per (model, optimizer) pair
            g, og = fabric.setup(g, og); d, od = fabric.setup(d, od)
            return g, d, og, od, fabric.setup_dataloaders(dl)
        gather = staticmethod(lambda t: fabric.all_gather(t).reshape(fabric.world_size, -1))
        def save(p, g, d, og, od):  # noqa: N805
            fabric.save(p, {"G": g, "D": d, "optG": og, "optD": od, "step": STEPS, "torch_rng": torch.get_rng_state()})
        def load(p, g, d, og, od):  # noqa: N805
            rest = fabric.load(p, {"G": g, "D": d, "optG": og, "optD": od})
            torch.set_rng_state(rest["torch_rng"])
    run_gan(E, trial, out)


def accel_main(trial, out, mp="no"):
    from accelerate import Accelerator
    acc = Accelerator(cpu=True, mixed_precision=mp)

    class E:
        rank, world, barrier, backward = acc.process_index, acc.num_processes, acc.wait_for_everyone, acc.backward
        raw = staticmethod(lambda m: acc.unwrap_model(m))
        raw_opt = staticmethod(lambda o: o.optimizer)
        setup = staticmethod(lambda *objs: acc.prepare(*objs))  # one call for everything
        gather = staticmethod(lambda t: acc.gather(t[None]))
        def save(p, *objs):  # models/optimizers/RNG registered by prepare(); NO barrier inside save_state
            acc.save_state(p); acc.wait_for_everyone()
        load = staticmethod(lambda p, *objs: acc.load_state(p))
    run_gan(E, trial, out)


def worker(trial, out):
    if trial.startswith("fabric"):
        from lightning_fabric import Fabric
        kw = {"fabric-ddp": dict(devices=2, strategy="ddp"), "fabric-ddp_spawn": dict(devices=2, strategy="ddp_spawn"),
              "fabric-1proc": dict(devices=1), "fabric-ddp-bf16": dict(devices=2, strategy="ddp", precision="bf16-mixed")}[trial]
        fabric = Fabric(accelerator="cpu", **kw)
        fabric.launch(fabric_main, trial, out)
    elif trial.startswith("accel-nb"):  # notebook_launcher from a plain script (fork + torch elastic)
        from accelerate import notebook_launcher
        mp = "bf16" if trial.endswith("bf16") else "no"
        notebook_launcher(accel_main, (trial, out, mp), num_processes=2, use_port=os.environ["EC_PORT"])
    else:  # accel-1proc (plain python) and accel-cli-* (already launched by `accelerate launch`)
        accel_main(trial, out)


TRIALS = {  # name -> command prefix (None = plain python)
    "fabric-ddp": None, "fabric-ddp_spawn": None, "fabric-1proc": None, "fabric-ddp-bf16": None,
    "accel-nb": None, "accel-1proc": None, "accel-nb-bf16": None,
    "accel-cli-cpu": ["-m", "accelerate.commands.launch", "--cpu", "--num_processes", "2"],
    "accel-cli-multi_gpu": ["-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2"],
}


def orchestrate():
    tmp, rows = tempfile.mkdtemp(prefix="engine_choice_"), []
    for i, (name, pre) in enumerate(TRIALS.items()):
        out, log = os.path.join(tmp, f"{name}.json"), os.path.join(tmp, f"{name}.log")
        port = str(29600 + i)
        pre = (pre + ["--main_process_port", port, "--mixed_precision", "no"]) if pre else []
        env = dict(os.environ, EC_LOG=log, EC_PORT=port, PYTHONWARNINGS="ignore")
        cmd = [sys.executable, *pre, os.path.abspath(__file__), "--trial", name, "--out", out]
        t0 = time.perf_counter()
        p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=150)
        r = {"trial": name, "rc": p.returncode, "wall_s": round(time.perf_counter() - t0, 1)}
        if os.path.exists(out):
            r.update(json.load(open(out)))
        else:
            r["error"] = (p.stderr.strip().splitlines() or ["?"])[-1][:160]
        r["script_runs"] = len(open(log).read().splitlines()) if os.path.exists(log) else 0
        rows.append(r)
    cols = ["trial", "rc", "world", "script_runs", "wall_s", "loop_s", "step_ms_med", "params_identical", "buffers_identical",
            "data_sharded", "ckpt_roundtrip", "optim_state_restored", "fwd_dtype_inside_D", "D_out_dtype", "sd_key0"]
    print("| " + " | ".join(cols) + " |\n|" + "---|" * len(cols))
    for r in rows:
        print("| " + " | ".join(str(r.get(c, "-")) for c in cols) + " |")
    print()
    for r in rows:
        extra = {k: r.get(k) for k in ("wrapped_type", "find_unused", "default_threads", "D.features()", "ckpt_files", "error") if k in r}
        print(f"{r['trial']}: {extra}")
    print(f"\n(results and logs in {tmp})")


if __name__ == "__main__":
    if "--trial" in sys.argv:
        worker(sys.argv[sys.argv.index("--trial") + 1], sys.argv[sys.argv.index("--out") + 1])
    else:
        orchestrate()
