"""Does a reference's measured latency agree with Keras' own model under the same protocol?

    python benchmarks/reference_agreement.py [--threads 1] [--repeats 3] [--out benchmarks/results/reference_agreement.json]

For each reference with a ``keras.applications`` twin, converts both our compiled spec
and the Keras model to TFLite the same way, times both in LiteRT under the standard
protocol (alternating, ``--repeats`` times each, every time in a fresh worker), and
reports the ratio of medians. Run it on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

import numpy as np
from results_file import write_results  # benchmarks/ is the script folder: on sys.path

import archsearch
from archsearch.latency import device_info, measure_latency, measure_tflite

TWINS = {
    "mobilenet_v1": "MobileNet",
    "mobilenet_v2": "MobileNetV2",
    "mobilenet_v3_small": "MobileNetV3Small",
    "mobilenet_v3_large": "MobileNetV3Large",
    "efficientnet_b0": "EfficientNetB0",
}


def keras_flatbuffer(application: str, size: int, directory: Path) -> Path:
    import keras
    import tensorflow as tf

    model = getattr(keras.applications, application)(weights=None, input_shape=(size, size, 3))
    function = tf.function(lambda x: model(x, training=False), input_signature=[tf.TensorSpec((1, size, size, 3))])
    path = directory / f"{application}.tflite"
    path.write_bytes(tf.lite.TFLiteConverter.from_concrete_functions([function.get_concrete_function()]).convert())
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "reference_agreement.json"))
    args = parser.parse_args()
    os.environ["ARCHSEARCH_CACHE_DIR"] = tempfile.mkdtemp(prefix="archsearch-agreement-")
    directory = Path(tempfile.mkdtemp(prefix="archsearch-keras-"))

    rows = []
    for name, application in TWINS.items():
        spec = archsearch.load_reference(name)
        keras_path = keras_flatbuffer(application, spec.input.size, directory)
        ours, theirs = [], []
        for _ in range(args.repeats):
            ours.append(measure_latency(spec, threads=args.threads, fresh=True).median_ms)
            theirs.append(measure_tflite(keras_path, threads=args.threads)["median_ms"])
        ratio = float(np.median(ours) / np.median(theirs))
        rows.append({"name": name, "keras_application": application, "archsearch_ms": ours, "keras_ms": theirs,
                     "ratio": ratio})
        print(f"{name:20s} archsearch {np.median(ours):7.3f} ms   keras.applications {np.median(theirs):7.3f} ms   "
              f"ratio {ratio:.3f}", flush=True)
    out = write_results(args.out, {"device": device_info().as_dict(), "threads": args.threads, "rows": rows})
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
