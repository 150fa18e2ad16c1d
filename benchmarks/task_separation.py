"""Does a proxy task tell networks apart by more than its own seed-to-seed noise?

    python benchmarks/task_separation.py [--tasks digits digits-clutter] [--epochs 6] [--seeds 0 1 2 3]
        [--sample-seed 7] [--out benchmarks/results/task_separation.json] [--resume] [--recipe JSON]

Six networks of the default space (``mobilenetv3``, 10 classes): MobileNetV3-Small and
-Large and four specs from ``sample_specs(space, 4, seed=--sample-seed)`` (seed 7: 1.2-6.2 M
parameters, 68-607 M MACs, inputs 160-256). Each trains with the study's proxy trainer
(``archsearch.train.train_spec``, the default ``TrainConfig`` but for the epochs and seed)
at the resolution that follows its deployment input: ``input.size * 0.25`` rounded to a
multiple of 8 (``Dataset.at_size``), once per seed, on each task. ``--epochs`` counts
epochs of 1,437 images (the digits' training set): a task with more training images
trains proportionally fewer epochs for the same compute (digits-clutter's 2,874: 3).

Every training runs in a fresh process whose Python ``random`` is seeded from the
training seed before archsearch's Keras modules are imported. archsearch's layer
initializers are module-level Keras initializers: Keras gives an unseeded initializer an
integer seed from Python's ``random`` when it is created, at import, so in one process
every training starts from the same weights whatever ``TrainConfig.seed`` says, and
another process starts from other weights. Trained in one process, "seed 0" and "seed 1"
differed only in shuffling and dropout and the seed-to-seed noise came out at a third of
what a rerun in a new process showed; seeding ``random`` per process makes the seed
choose the initial weights, as it is meant to.

Per task it reports the spread across networks (max - min of the per-network seed-mean
validation accuracies, in points and in validation images), the seed noise (mean over
networks and pairs of seeds of |accuracy(seed a) - accuracy(seed b)|), their ratio, the
same as standard deviations (of the networks' means; of one training across seeds), and
Kendall's tau between the networks' rankings under two seeds (mean over pairs of seeds);
with more than two seeds, also the figures for the first two alone. The results file is
rewritten after every training; ``--resume`` keeps the trainings it already holds (same
settings, data and epochs) and runs only the missing ones.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import dataclasses
import hashlib
import itertools
import json
import multiprocessing
import os
import platform
import time
from pathlib import Path
from typing import Any

import numpy as np
from results_file import write_results  # benchmarks/ is the script folder: on sys.path

import archsearch
from archsearch import count_macs, count_params, load_reference, load_space, sample_specs, spec_hash
from archsearch.data import DIGITS_CLUTTER, ClutterRecipe, load_dataset, load_digits_clutter
from archsearch.spec import NetworkSpec, parse_spec, spec_to_dict
from archsearch.train import TrainConfig

DIGITS_TRAINING_IMAGES = 1437


def training_size(spec: NetworkSpec) -> int:
    """The proxy's resolution: a quarter of the deployment input, rounded to a multiple of 8."""
    return max(8, int(round(spec.input.size * 0.25 / 8)) * 8)


def networks(sample_seed: int) -> list[tuple[str, NetworkSpec]]:
    space = load_space("mobilenetv3").with_overrides(classes=10)
    chosen = [("mobilenet_v3_small", load_reference("mobilenet_v3_small", classes=10)),
              ("mobilenet_v3_large", load_reference("mobilenet_v3_large", classes=10))]
    return chosen + [(spec.name, spec) for spec in sample_specs(space, 4, seed=sample_seed)]


def load_task(task: str, recipe: ClutterRecipe):
    return load_digits_clutter(recipe=recipe) if task == "digits-clutter" else load_dataset(task)


def train_in_fresh_process(task: str, recipe: dict[str, Any], spec: dict[str, Any], size: int, epochs: int,
                           seed: int) -> dict[str, Any]:
    """One proxy training, run in a process of its own (see the module docstring)."""
    import random
    import sys

    random.seed(seed)  # before archsearch.compile is imported: its initializers take their seeds from here
    fresh = "archsearch.compile" not in sys.modules
    from archsearch.train import train_spec

    recipe = ClutterRecipe(**{key: tuple(value) if isinstance(value, list) else value for key, value in recipe.items()})
    dataset = load_task(task, recipe).at_size(size)
    started = time.perf_counter()
    result = train_spec(parse_spec(spec), dataset, TrainConfig(epochs=epochs, seed=seed))
    return {"accuracy": result.accuracy, "seconds": time.perf_counter() - started, "train_seconds": result.seconds,
            "val_accuracy_per_epoch": [h["val_accuracy"] for h in result.history],
            "train_accuracy_per_epoch": [h["accuracy"] for h in result.history], "initializers_seeded": fresh}


def separation(accuracy: np.ndarray, validation_images: int) -> dict[str, Any]:
    """The figures for a (networks x seeds) accuracy table; over every pair of seeds when there are more than two."""
    from scipy.stats import kendalltau

    means = accuracy.mean(axis=1)
    spread = float(means.max() - means.min())
    pairs = list(itertools.combinations(range(accuracy.shape[1]), 2))
    differences = np.abs(np.stack([accuracy[:, i] - accuracy[:, j] for i, j in pairs], axis=1))
    noise = float(differences.mean())
    taus = [kendalltau(accuracy[:, i], accuracy[:, j]).statistic for i, j in pairs]
    between = float(means.std(ddof=1))  # the networks' means, as a standard deviation
    within = float(np.sqrt(np.mean(accuracy.var(axis=1, ddof=1))))  # one training's seed-to-seed sd
    return {
        "seeds": accuracy.shape[1],
        "accuracy_range": [float(accuracy.min()), float(accuracy.max())],
        "spread_points": 100 * spread,
        "spread_images": spread * validation_images,
        "seed_noise_points": 100 * noise,
        "seed_noise_images": noise * validation_images,
        "max_seed_difference_points": 100 * float(differences.max()),
        "ratio": spread / noise if noise > 0 else float("inf"),
        "network_sd_points": 100 * between,
        "seed_sd_points": 100 * within,
        "sd_ratio": between / within if within > 0 else float("inf"),
        "kendall_tau": float(np.mean(taus)),
        "kendall_tau_per_seed_pair": [float(t) for t in taus],
    }


def summarise(rows: list[dict[str, Any]], task: str, validation_images: int, seeds: list[int]) -> dict[str, Any] | None:
    """Spread across networks, seed noise, their ratio and Kendall's tau, once every training of ``task`` is in."""
    done = {(row["network"], row["seed"]): row for row in rows if row["task"] == task}
    names = list(dict.fromkeys(row["network"] for row in rows if row["task"] == task))
    if not names or any((name, seed) not in done for name in names for seed in seeds):
        return None
    accuracy = np.array([[done[name, seed]["accuracy"] for seed in seeds] for name in names])
    summary = {"task": task, "validation_images": validation_images,
               "mean_accuracy_per_network": dict(zip(names, accuracy.mean(axis=1).round(4).tolist())),
               **separation(accuracy, validation_images)}
    if len(seeds) > 2:
        summary["first_two_seeds"] = separation(accuracy[:, :2], validation_images)
    chosen = [done[name, seed] for name in names for seed in seeds]
    summary["mean_seconds"] = float(np.mean([row["seconds"] for row in chosen]))
    summary["mean_train_seconds"] = float(np.mean([row["train_seconds"] for row in chosen]))
    summary["mean_seconds_per_network"] = {
        name: float(np.mean([done[name, seed]["seconds"] for seed in seeds])) for name in names}
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", nargs="+", default=["digits", "digits-clutter"])
    parser.add_argument("--epochs", type=int, default=6,
                        help="epochs of 1,437 images (the digits' training set); a task with more training images "
                             "trains proportionally fewer epochs, the same compute (digits-clutter, 2,874: 3)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--sample-seed", type=int, default=7)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "task_separation.json"))
    parser.add_argument("--resume", action="store_true", help="keep the trainings already in --out")
    parser.add_argument("--recipe", default="{}", help="JSON overrides of the digits-clutter recipe (for tuning it)")
    args = parser.parse_args()
    if len(args.seeds) < 2:
        parser.error("seed noise needs at least two seeds")
    overrides = {key: tuple(value) if isinstance(value, list) else value for key, value in json.loads(args.recipe).items()}
    recipe = dataclasses.replace(DIGITS_CLUTTER, **overrides)

    settings = {"epochs_of_1437_images": args.epochs, "sample_seed": args.sample_seed,
                "isolation": "a fresh process per training, Python's random seeded with the training seed",
                "train_config": {key: value for key, value in vars(TrainConfig()).items() if key not in ("seed", "epochs")},
                "training_size": "input.size * 0.25 rounded to a multiple of 8"}
    rows: list[dict[str, Any]] = []
    out = Path(args.out)
    if args.resume and out.exists():
        previous = json.loads(out.read_text())
        if previous.get("settings") == settings:
            rows = [row for row in previous["rows"] if row["task"] in args.tasks and row["seed"] in args.seeds]
            print(f"resuming: {len(rows)} trainings kept from {out}", flush=True)
        else:
            print(f"{out} has other settings: starting afresh", flush=True)

    nets = networks(args.sample_seed)
    described = [{"network": name, "spec_hash": spec_hash(spec), "input_size": spec.input.size,
                  "training_size": training_size(spec), "width_multiplier": spec.width_multiplier,
                  "params": count_params(spec), "macs": count_macs(spec)} for name, spec in nets]
    machine = {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
               "cpus": os.cpu_count(), "archsearch": getattr(archsearch, "__version__", None)}
    datasets_info: dict[str, dict[str, Any]] = {}
    summaries: dict[str, Any] = {}

    def save() -> None:
        write_results(out, {"settings": settings, "seeds": args.seeds, "machine": machine, "networks": described,
                            "datasets": datasets_info, "summary": summaries, "rows": rows})

    total = len(args.tasks) * len(nets) * len(args.seeds)
    for task in args.tasks:
        started = time.perf_counter()
        dataset = load_task(task, recipe)
        fingerprint = hashlib.sha1(dataset.x_train.tobytes() + dataset.x_val.tobytes()).hexdigest()[:16]
        datasets_info[task] = {"description": dataset.describe(), "load_seconds": time.perf_counter() - started,
                               "fingerprint": fingerprint}
        if task == "digits-clutter":
            datasets_info[task]["recipe"] = dataclasses.asdict(recipe)
        epochs = max(1, round(args.epochs * DIGITS_TRAINING_IMAGES / len(dataset.y_train)))
        datasets_info[task]["epochs"] = epochs
        stale = [r for r in rows if r["task"] == task and (r.get("fingerprint"), r.get("epochs")) != (fingerprint, epochs)]
        if stale:
            print(f"dropping {len(stale)} {task} trainings made on other data or for other epochs", flush=True)
            rows = [r for r in rows if r not in stale]
        print(f"{dataset.describe()} (loaded in {datasets_info[task]['load_seconds']:.1f} s); {epochs} epochs",
              flush=True)
        for (name, spec), info in zip(nets, described):
            for seed in args.seeds:
                if any(r["task"] == task and r["network"] == name and r["seed"] == seed for r in rows):
                    continue
                size = info["training_size"]
                with concurrent.futures.ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
                    result = pool.submit(train_in_fresh_process, task, dataclasses.asdict(recipe), spec_to_dict(spec),
                                         size, epochs, seed).result()
                rows.append({"task": task, "fingerprint": fingerprint, "network": name, "seed": seed,
                             "training_size": size, "epochs": epochs, "training_images": len(dataset.y_train), **result, "load_average": os.getloadavg()[0]})
                print(f"[{len(rows)}/{total}] {task:15s} {name:24s} {size}x{size} seed {seed}: "
                      f"accuracy {result['accuracy']:.4f}  {result['seconds']:6.1f} s  "
                      f"(load {os.getloadavg()[0]:.1f})", flush=True)
                save()
        summary = summarise(rows, task, len(dataset.y_val), args.seeds)
        if summary is not None:
            summaries[task] = summary
            save()

    print()
    print(f"{'task':16s} {'val images':>10s} {'accuracy':>13s} {'spread':>16s} {'seed noise':>16s} {'ratio':>6s} "
          f"{'sd ratio':>8s} {'tau':>6s} {'s/training':>10s}")
    for task, s in summaries.items():
        low, high = s["accuracy_range"]
        print(f"{task:16s} {s['validation_images']:10d} {low:6.3f}-{high:.3f} "
              f"{s['spread_points']:5.2f} pt ({s['spread_images']:4.1f} im) "
              f"{s['seed_noise_points']:5.2f} pt ({s['seed_noise_images']:4.1f} im) {s['ratio']:6.2f} {s['sd_ratio']:8.2f} "
              f"{s['kendall_tau']:6.2f} {s['mean_seconds']:10.1f}")
    save()
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
