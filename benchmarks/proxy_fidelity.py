"""Does the proxy rank networks as deployment-resolution training would? (proxy fidelity)

    python benchmarks/proxy_fidelity.py [--dataset digits] [--networks 12] [--seeds 0 1] [--deploy-epochs 10]
                                        [--deploy-recipe 'batch_size=32;learning_rate=0.001'] [--only HASH ...]
                                        [--proxies 0.25 32px '0.25;batch_size=32'] [--no-deploy]
                                        [--deploy-from RESULT.json] [--out RESULT.json] [--summary-only]

For networks of the default space spanning its range under the default budget (the two
MobileNetV3 references plus specs sampled from ``mobilenetv3`` at evenly spaced MAC
quantiles), trains each twice per seed:

* the **proxy**, exactly as ``archsearch run`` trains a candidate (``train_spec`` at
  ``train_scale`` x its input size, the study's recipe), once per proxy compared
  (``--proxies``: a scale such as ``0.25``, or a fixed size such as ``32px``, the rule
  of earlier versions, optionally with recipe overrides after ``;``), so the choice of
  rule is measured against the same targets (``--no-deploy --deploy-from FILE`` measures
  a new proxy against deployment runs another result file already holds);
* the **deployment** run: the same spec trained at its own input size with a longer
  recipe (``--deploy-epochs``), i.e. the network a user would ship.

Reports Kendall's tau and Spearman's rho between the two rankings (seed means) with a
bootstrap 90% interval over networks, the noise ceiling (the same statistics between seed
0 and seed 1 of each kind; and the tau that seed noise leaves attainable: each side's
reliability, the share of its across-network variance that is not seed noise, bounds
the correlation a proxy can show by sqrt(reliability), the classical attenuation bound,
turned into tau for normal scores), the top-k overlap, and the spread of accuracies
across networks next to the seed-to-seed spread.
Every run is written to the result file as soon as it ends and skipped when the script
is started again, so a long benchmark can be resumed.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
from results_file import write_results  # benchmarks/ is the script folder: on sys.path

from archsearch import count_macs, load_reference, load_space, sample_specs, spec_hash
from archsearch.data import Dataset, load_dataset
from archsearch.spec import NetworkSpec, spec_to_dict
from archsearch.study import StudyConfig
from archsearch.train import TrainConfig, scaled_train_size, train_spec


def choose_networks(count: int, classes: int, max_macs: float, seed: int) -> list[NetworkSpec]:
    """The references and ``count - 2`` sampled specs at evenly spaced MAC quantiles up to ``max_macs``."""
    space = load_space("mobilenetv3").with_overrides(classes=classes)
    pool = [s for s in sample_specs(space, 600, seed=seed) if count_macs(s) <= max_macs]
    pool.sort(key=count_macs)
    picks = [pool[int(round(q * (len(pool) - 1)))] for q in np.linspace(0.02, 0.98, count - 2)]
    references = [load_reference(name, classes=classes) for name in ("mobilenet_v3_small", "mobilenet_v3_large")]
    return references + picks


def training_size(input_size: int, proxy: str) -> int:
    """A proxy rule (``0.25``: that fraction of the input; ``32px``: a fixed size) applied to ``input_size``."""
    rule = proxy.split(";")[0]
    return int(rule[:-2]) if rule.endswith("px") else scaled_train_size(input_size, float(rule))


def recipe(overrides: list[str], epochs: int, seed: int) -> TrainConfig:
    """The study's recipe at ``epochs`` and ``seed``, with ``field=value`` overrides (``batch_size=32``)."""
    fields: dict[str, Any] = {"epochs": epochs, "seed": seed}
    for item in overrides:
        key, value = item.split("=", 1)
        fields[key] = type(getattr(TrainConfig, key))(value)
    return TrainConfig(**fields)


def proxy_recipe(proxy: str, epochs: int, seed: int) -> TrainConfig:
    """The recipe of a proxy label: the study's, with any ``;field=value`` overrides (``0.25;batch_size=32``)."""
    return recipe(proxy.split(";")[1:], epochs, seed)


def statistics(rows: list[dict[str, Any]], seeds: list[int]) -> dict[str, Any]:
    """Every proxy in ``rows`` against the deployment runs in ``rows``, and the training time of each kind."""
    proxies = sorted({row["kind"].split(maxsplit=1)[1] for row in rows if row["kind"].startswith("proxy ")})
    minutes: dict[str, float] = {}
    for row in rows:
        minutes[row["kind"]] = minutes.get(row["kind"], 0.0) + row["seconds"] / 60
    return {**{proxy: proxy_statistics(rows, seeds, proxy) for proxy in proxies},
            "deploy_seed_noise": seed_noise(rows, seeds),
            "training_minutes": {kind: round(value, 1) for kind, value in minutes.items()}}


def seed_noise(rows: list[dict[str, Any]], seeds: list[int]) -> dict[str, Any]:
    """Each network's deployment accuracy per seed and the rms seed-to-seed difference (any number of networks)."""
    accuracies: dict[str, dict[int, float]] = {}
    for row in rows:
        if row["kind"] == "deploy":
            accuracies.setdefault(row["name"], {})[row["seed"]] = row["accuracy"]
    pairs = [values for values in accuracies.values() if all(s in values for s in seeds[:2])]
    differences = [values[seeds[0]] - values[seeds[1]] for values in pairs] if len(seeds) > 1 else []
    return {"networks": {name: [values.get(s) for s in seeds] for name, values in accuracies.items()},
            "rms_seed_difference": float(np.sqrt(np.mean(np.square(differences)))) if differences else None}


def proxy_statistics(rows: list[dict[str, Any]], seeds: list[int], label: str) -> dict[str, Any]:
    from scipy.stats import kendalltau, spearmanr

    def table(kind: str) -> dict[str, dict[int, float]]:
        found: dict[str, dict[int, float]] = {}
        for row in rows:
            if row["kind"] == kind:
                found.setdefault(row["hash"], {})[row["seed"]] = row["accuracy"]
        return found

    proxy, deploy = table(f"proxy {label}"), table("deploy")
    # A proxy run with fewer seeds (``--seeds 0``, a first look) is still set against the
    # deployment means over every seed the stored deployment runs share.
    candidates = [h for h in proxy if h in deploy and all(s in proxy[h] for s in seeds)]
    deploy_seeds = sorted(set.intersection(*(set(deploy[h]) for h in candidates))) if candidates else []
    complete = candidates if deploy_seeds else []
    if len(complete) < 3:
        return {"networks_complete": len(complete)}
    p = np.array([np.mean([proxy[h][s] for s in seeds]) for h in complete])
    d = np.array([np.mean([deploy[h][s] for s in deploy_seeds]) for h in complete])

    def ceiling(values: dict[str, dict[int, float]], kind_seeds: list[int]) -> dict[str, float] | None:
        if len(kind_seeds) < 2:
            return None
        a = [values[h][kind_seeds[0]] for h in complete]
        b = [values[h][kind_seeds[1]] for h in complete]
        differences = np.subtract(a, b)
        # The 95% band of the difference between two single-seed accuracies (each pair's
        # difference has the variance of such a difference): what archsearch's verdicts use.
        return {"kendall_tau": float(kendalltau(a, b).statistic), "spearman_rho": float(spearmanr(a, b).statistic),
                "mean_abs_seed_difference": float(np.mean(np.abs(differences))),
                "seed_band_95": float(1.96 * np.sqrt(np.mean(differences ** 2)))}

    def top_k(k: int) -> float:
        k = min(k, len(complete))
        return len(set(np.argsort(-p)[:k]) & set(np.argsort(-d)[:k])) / k

    def reliability(values: dict[str, dict[int, float]], means: np.ndarray, kind_seeds: list[int]) -> float | None:
        """The share of the variance of the seed means across networks that is not seed noise."""
        if len(kind_seeds) < 2:
            return None
        per_seed = np.array([[values[h][s] for s in kind_seeds] for h in complete])
        noise_of_mean = float(np.mean(np.var(per_seed, axis=1, ddof=1))) / len(kind_seeds)
        return max(0.0, 1.0 - noise_of_mean / float(np.var(means, ddof=1)))

    def tau_of_correlation(r: float) -> float:
        # Kendall's tau of a bivariate normal pair with correlation r (Greiner's relation).
        return float(2 / np.pi * np.arcsin(min(1.0, r)))

    # Seed noise on either side caps the tau any proxy can show (attenuation): a proxy that
    # ranks exactly as deployment training does in expectation would still score only
    # tau_of_correlation(sqrt(reliability)) against the deployment seed means.
    deploy_reliability = reliability(deploy, d, deploy_seeds)
    proxy_reliability = reliability(proxy, p, list(seeds))
    rng = np.random.default_rng(0)
    resampled = [kendalltau(p[i], d[i]).statistic
                 for i in (rng.integers(0, len(complete), len(complete)) for _ in range(2000))]
    return {"networks_complete": len(complete), "proxy_seeds": list(seeds), "deploy_seeds": deploy_seeds,
            "kendall_tau": float(kendalltau(p, d).statistic), "spearman_rho": float(spearmanr(p, d).statistic),
            "kendall_tau_90ci": [float(np.nanpercentile(resampled, 5)), float(np.nanpercentile(resampled, 95))],
            "top3_overlap": top_k(3), "top5_overlap": top_k(5),
            "proxy_seed_ceiling": ceiling(proxy, list(seeds)), "deploy_seed_ceiling": ceiling(deploy, deploy_seeds),
            "deploy_reliability": deploy_reliability, "proxy_reliability": proxy_reliability,
            "tau_attainable_by_exact_proxy": None if deploy_reliability is None else
            tau_of_correlation(np.sqrt(deploy_reliability)),
            "tau_attainable_with_this_proxy_noise": None if deploy_reliability is None or proxy_reliability is None
            else tau_of_correlation(np.sqrt(deploy_reliability * proxy_reliability)),
            "proxy_spread": float(p.max() - p.min()), "deploy_spread": float(d.max() - d.min())}


def deploy_rows(path: str | None) -> list[dict[str, Any]]:
    """The deployment runs stored in the result file ``path`` (none without one)."""
    if not path or not Path(path).is_file():
        return []
    return [row for row in json.loads(Path(path).read_text())["runs"] if row["kind"] == "deploy"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default=StudyConfig.model_fields["dataset"].default)
    parser.add_argument("--networks", type=int, default=12)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--epochs", type=int, default=TrainConfig.epochs, help="proxy epochs (the study's)")
    parser.add_argument("--deploy-epochs", type=int, default=10)
    parser.add_argument("--deploy-recipe", default="",
                        help="overrides of the deployment recipe, e.g. 'batch_size=32;learning_rate=0.001' (a "
                             "steadier target is measured in its own --out file)")
    parser.add_argument("--only", nargs="+", default=None,
                        help="train only the networks whose spec hash starts with one of these (e.g. to measure "
                             "a deployment recipe's seed noise on a few networks)")
    parser.add_argument("--proxies", nargs="*", default=["0.25", "32px"],
                        help="proxy rules to compare: a scale of the input size, or a fixed size like 32px, "
                             "optionally with recipe overrides: '0.25;batch_size=32;epochs=8' (none: deployment runs only)")
    parser.add_argument("--deploy", action=argparse.BooleanOptionalAction, default=True,
                        help="train the deployment runs too (--no-deploy: only the proxies, e.g. a new proxy "
                             "against deployment runs already stored)")
    parser.add_argument("--deploy-from", default=None,
                        help="another result file whose deployment runs this one's proxies are compared with "
                             "(so a new proxy can be measured while, or after, that file's deployment runs train)")
    parser.add_argument("--max-macs", type=float, default=450e6, help="roughly the default 20 ms budget here")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "proxy_fidelity.json"))
    parser.add_argument("--summary-only", action="store_true",
                        help="recompute the statistics of the runs in --out without training anything")
    args = parser.parse_args()
    if args.summary_only:
        stored = json.loads(Path(args.out).read_text())
        settings = stored["settings"]
        summary = statistics(stored["runs"] + deploy_rows(args.deploy_from), settings["seeds"])
        write_results(Path(args.out), {**stored, "summary": summary})
        print(json.dumps(summary, indent=2))
        return

    out = Path(args.out)
    previous = json.loads(out.read_text()) if out.is_file() else {}
    rows: list[dict[str, Any]] = previous.get("runs", []) if previous.get("settings", {}).get(
        "dataset") == args.dataset else []
    stored_recipe = previous.get("settings", {}).get("deploy_recipe", "")
    if rows and args.deploy and stored_recipe != args.deploy_recipe:  # resuming would mix two targets
        raise SystemExit(f"{out} holds deployment runs with --deploy-recipe {stored_recipe!r}: give another --out")
    done = {(r["hash"], r["kind"], r["seed"]) for r in rows}
    dataset = load_dataset(args.dataset)
    networks = choose_networks(args.networks, dataset.classes, args.max_macs, seed=0)
    if args.only:
        networks = [spec for spec in networks if spec_hash(spec).startswith(tuple(args.only))]
        if not networks:
            raise SystemExit(f"--only {' '.join(args.only)}: no chosen network's hash starts with that")
    deploy_overrides = [item for item in args.deploy_recipe.split(";") if item]
    # Cheap runs first, so a partial result already ranks every network by its proxy.
    plan = [(spec, f"proxy {proxy}", seed) for proxy in args.proxies for spec in networks for seed in args.seeds]
    # Deployment runs seed by seed (every network's first seed ranks them all early), grouped
    # by input size within a seed: one deployment size is held in memory at a time
    # (digits-clutter at all seven sizes 128-320 would hold about 11 GB).
    if args.deploy:
        plan += sorted(((spec, "deploy", seed) for spec in networks for seed in args.seeds),
                       key=lambda item: (item[2], item[0].input.size, count_macs(item[0])))
    deploy_data: Dataset | None = None
    for spec, kind, seed in plan:
        digest = spec_hash(spec)
        if (digest, kind, seed) in done:
            continue
        proxy = kind.startswith("proxy")
        size = training_size(spec.input.size, kind.split(maxsplit=1)[1]) if proxy else spec.input.size
        epochs = args.epochs if proxy else args.deploy_epochs
        if proxy:
            data = dataset.at_size(size)
        else:
            if deploy_data is None or deploy_data.image_size != size:
                deploy_data = None  # release the previous size before making the next
                deploy_data = load_dataset(args.dataset, size=size)
            data = deploy_data
        started = time.perf_counter()
        config = (proxy_recipe(kind.split(maxsplit=1)[1], epochs, seed) if proxy
                  else recipe(deploy_overrides, epochs, seed))
        result = train_spec(spec, data, config)
        rows.append({"hash": digest, "name": spec.name, "kind": kind, "seed": seed, "train_size": size,
                     "input_size": spec.input.size, "epochs": config.epochs, "batch_size": config.batch_size,
                     "learning_rate": config.learning_rate, "macs": count_macs(spec),
                     "accuracy": result.accuracy, "seconds": time.perf_counter() - started,
                     "spec": spec_to_dict(spec)})
        print(f"{kind:12s} seed {seed} {spec.name:24s} {size:3d}px {rows[-1]['accuracy']:.4f} "
              f"{rows[-1]['seconds']:.0f} s", flush=True)
        write_results(out, {"settings": vars(args), "runs": rows,
                            "summary": statistics(rows + deploy_rows(args.deploy_from), args.seeds)})
    summary = statistics(rows + deploy_rows(args.deploy_from), args.seeds)
    write_results(out, {"settings": vars(args), "runs": rows, "summary": summary})
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
