"""A spec as the kernels a runtime executes, cut where LiteRT's XNNPACK delegate fuses ops.

A *kernel* is one unit of work at the runtime's fusion boundaries: a convolution with
its folded batch norm and a fusable activation (ReLU, ReLU6, linear), a depthwise
convolution likewise, a squeeze-and-excitation gate (mean, two small convolutions, the
gate and the multiply), a residual add, an activation XNNPACK runs as an op of its own
(hard-swish, swish, GELU...), pooling, a dense layer. Each kernel has a type and the
numbers its cost depends on (sizes, channels, MACs); ``kernel_features`` turns a network's
kernels into one feature vector per kernel type, which a device profile
(``archsearch.latency.profile``) maps to milliseconds.

Pure Python from the resolved spec: no TensorFlow, no conversion, microseconds per
network. Block types plug in through ``register_kernels`` like builders and cost
functions.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from archsearch.errors import UnknownNameError
from archsearch.registry import BlockRegistry
from archsearch.spec import NetworkSpec, ResolvedBlock, resolve
from archsearch.spec.blocks import SqueezeExciteSpec

FUSED_ACTIVATIONS = frozenset({"relu", "relu6", "linear"})
"""Activations XNNPACK fuses into the preceding convolution (free); others are kernels of their own."""


@dataclass(frozen=True)
class Kernel:
    """One fused unit of work: ``type`` and the numbers its cost depends on."""

    type: str
    numbers: dict[str, float] = field(default_factory=dict)


# ----- what each kernel type's cost is regressed on -----

KERNEL_FEATURES: dict[str, tuple[str, ...]] = {
    # Convolutions: a fixed cost, compute, and memory traffic in and out. Depthwise
    # kernels are split by kernel size and stride, whose per-MAC efficiency differs.
    "conv": ("count", "macs", "in_elems", "out_elems"),
    "conv1x1": ("count", "macs", "in_elems", "out_elems"),
    "conv1x1_narrow": ("count", "macs", "in_elems", "out_elems"),
    **{f"dwconv{k}_s{s}": ("count", "macs", "in_elems", "out_elems") for k in (3, 5, 7) for s in (1, 2)},
    "squeeze_excite": ("count", "elems", "macs"),
    "add": ("count", "elems"),
    "hswish": ("count", "elems"),
    "hsigmoid": ("count", "elems"),
    "swish": ("count", "elems"),
    "sigmoid": ("count", "elems"),
    "gelu": ("count", "elems"),
    "preprocess": ("count", "elems"),
    "maxpool": ("count", "in_elems"),
    "mean": ("count", "in_elems"),
    "dense": ("count", "macs"),
    "split": ("count", "elems"),
    "concat_shuffle": ("count", "elems"),
    "softmax": ("count", "elems"),
}
"""The regressors' inputs, per kernel type; a network's vector sums them over its kernels."""

NARROW_CHANNELS = 32
"""1x1 convolutions with fewer input or output channels run far below peak GEMM throughput."""


def feature_names() -> list[str]:
    """The names of a network's feature vector, in order (``invoke`` is the per-inference overhead)."""
    return ["invoke"] + [f"{kind}.{name}" for kind, names in KERNEL_FEATURES.items() for name in names]


# ----- building kernels -----


def conv_kernel(kernel: int, stride: int, cin: int, cout: int, in_size: int, out_size: int) -> Kernel:
    macs = kernel * kernel * cin * cout * out_size * out_size
    kind = "conv" if kernel > 1 else ("conv1x1_narrow" if min(cin, cout) < NARROW_CHANNELS else "conv1x1")
    return Kernel(kind, {"macs": macs, "in_elems": in_size * in_size * cin, "out_elems": out_size * out_size * cout,
                         "kernel": kernel, "stride": stride, "cin": cin, "cout": cout, "in_size": in_size})


def depthwise_kernel(kernel: int, stride: int, channels: int, in_size: int, out_size: int) -> Kernel:
    # Kernels beyond 7 (the schema allows up to 15) share the 7x7 regressor: the nearest regime.
    bucket = min((3, 5, 7), key=lambda size: abs(size - kernel))
    return Kernel(f"dwconv{bucket}_s{stride}",
                  {"macs": kernel * kernel * channels * out_size * out_size, "in_elems": in_size * in_size * channels,
                   "out_elems": out_size * out_size * channels, "kernel": kernel, "channels": channels,
                   "in_size": in_size})


def activation_kernels(activation: str | None, elems: int) -> list[Kernel]:
    """The kernel an activation costs after a convolution: none when XNNPACK fuses it."""
    if activation is None or activation in FUSED_ACTIVATIONS:
        return []
    return [Kernel(activation, {"elems": elems})]


def conv_act(kernel: int, stride: int, cin: int, cout: int, in_size: int, out_size: int,
             activation: str | None) -> list[Kernel]:
    return [conv_kernel(kernel, stride, cin, cout, in_size, out_size),
            *activation_kernels(activation, out_size * out_size * cout)]


def dw_act(kernel: int, stride: int, channels: int, in_size: int, out_size: int,
           activation: str | None) -> list[Kernel]:
    return [depthwise_kernel(kernel, stride, channels, in_size, out_size),
            *activation_kernels(activation, out_size * out_size * channels)]


def squeeze_excite_kernel(channels: int, reduced: int, size: int) -> Kernel:
    # Mean over the map, two 1x1 convolutions on a 1x1 map, the gate, the multiply.
    return Kernel("squeeze_excite", {"elems": size * size * channels, "macs": 2 * channels * reduced,
                                     "channels": channels, "reduced": reduced})


BlockKernels = Callable[[ResolvedBlock, SqueezeExciteSpec], list[Kernel]]
_KERNELS: BlockRegistry[BlockKernels] = BlockRegistry("a kernel decomposition")
KERNEL_FUNCTIONS = _KERNELS.functions
register_kernels = _KERNELS.register
"""Register how a block type decomposes into kernels (a decorator); one function per type."""


@register_kernels("conv")
def _conv_kernels(rb: ResolvedBlock, se: SqueezeExciteSpec) -> list[Kernel]:
    b = rb.block
    return conv_act(b.kernel, b.stride, rb.in_channels, rb.out_channels, rb.in_size, rb.out_size, b.activation)


@register_kernels("dsconv")
def _dsconv_kernels(rb: ResolvedBlock, se: SqueezeExciteSpec) -> list[Kernel]:
    b = rb.block
    return (dw_act(b.kernel, b.stride, rb.in_channels, rb.in_size, rb.out_size, b.activation)
            + conv_act(1, 1, rb.in_channels, rb.out_channels, rb.out_size, rb.out_size, b.activation))


@register_kernels("mbconv")
def _mbconv_kernels(rb: ResolvedBlock, se: SqueezeExciteSpec) -> list[Kernel]:
    b, expanded = rb.block, rb.widths["expanded"]
    kernels: list[Kernel] = []
    if b.expansion != 1:
        kernels += conv_act(1, 1, rb.in_channels, expanded, rb.in_size, rb.in_size, b.activation)
    kernels += dw_act(b.kernel, b.stride, expanded, rb.in_size, rb.out_size, b.activation)
    if "se" in rb.widths:
        kernels.append(squeeze_excite_kernel(expanded, rb.widths["se"], rb.out_size))
    kernels += conv_act(1, 1, expanded, rb.out_channels, rb.out_size, rb.out_size, None)
    if b.skip and b.stride == 1 and rb.in_channels == rb.out_channels:
        kernels.append(Kernel("add", {"elems": rb.out_size * rb.out_size * rb.out_channels}))
    return kernels


@register_kernels("shuffle")
def _shuffle_kernels(rb: ResolvedBlock, se: SqueezeExciteSpec) -> list[Kernel]:
    b, branch = rb.block, rb.widths["branch"]
    kernels: list[Kernel] = []
    if b.stride == 1:
        kernels.append(Kernel("split", {"elems": rb.in_size * rb.in_size * rb.in_channels}))
        right_in = rb.in_channels // 2
    else:
        right_in = rb.in_channels
        kernels += dw_act(b.kernel, b.stride, rb.in_channels, rb.in_size, rb.out_size, None)
        kernels += conv_act(1, 1, rb.in_channels, branch, rb.out_size, rb.out_size, b.activation)
    kernels += conv_act(1, 1, right_in, branch, rb.in_size, rb.in_size, b.activation)
    kernels += dw_act(b.kernel, b.stride, branch, rb.in_size, rb.out_size, None)
    kernels += conv_act(1, 1, branch, branch, rb.out_size, rb.out_size, b.activation)
    kernels.append(Kernel("concat_shuffle", {"elems": rb.out_size * rb.out_size * rb.out_channels}))
    return kernels


def block_kernels(rb: ResolvedBlock, se: SqueezeExciteSpec) -> list[Kernel]:
    """The kernels of one resolved block, by its type's registered function."""
    return _KERNELS.get(rb.type)(rb, se)


def network_kernels(spec: NetworkSpec) -> list[Kernel]:
    """Every kernel of ``spec``'s batch-1 inference, in order."""
    net = resolve(spec)
    size, channels = spec.input.size, spec.input.channels
    kernels: list[Kernel] = []
    if spec.input.preprocessing != "none":
        steps = 2 if spec.input.preprocessing == "imagenet" else 1  # rescale (+ normalise)
        kernels += [Kernel("preprocess", {"elems": size * size * channels})] * steps
    stem = net.stem
    kernels += conv_act(stem.kernel, stem.stride, channels, stem.channels, size, stem.conv_size, stem.activation)
    if stem.pool is not None:
        kernels.append(Kernel("maxpool", {"in_elems": stem.conv_size ** 2 * stem.channels}))
    for rb in net.blocks:
        kernels += block_kernels(rb, spec.squeeze_excite)
    head = net.head
    width = head.in_channels
    if head.conv_channels:
        kernels += conv_act(1, 1, head.in_channels, head.conv_channels, head.in_size, head.in_size,
                            head.conv_activation)
        width = head.conv_channels
    kernels.append(Kernel("mean", {"in_elems": head.in_size ** 2 * width}))
    for dense in head.hidden:
        kernels.append(Kernel("dense", {"macs": width * dense.channels}))
        kernels += activation_kernels(dense.activation, dense.channels)
        width = dense.channels
    kernels.append(Kernel("dense", {"macs": width * head.classes}))
    if head.classifier_activation == "softmax":
        kernels.append(Kernel("softmax", {"elems": head.classes}))
    else:
        kernels += activation_kernels(head.classifier_activation, head.classes)
    return kernels


def kernel_features(kernels: Iterable[Kernel]) -> list[float]:
    """A network's feature vector (``feature_names`` order): per kernel type, sums over its kernels."""
    index = {name: i for i, name in enumerate(feature_names())}
    vector = [0.0] * len(index)
    vector[index["invoke"]] = 1.0
    for kernel in kernels:
        names = KERNEL_FEATURES.get(kernel.type)
        if names is None:
            raise UnknownNameError("kernel type", kernel.type, sorted(KERNEL_FEATURES))
        for name in names:
            vector[index[f"{kernel.type}.{name}"]] += 1.0 if name == "count" else float(kernel.numbers[name])
    return vector


def spec_features(spec: NetworkSpec) -> list[float]:
    """``kernel_features(network_kernels(spec))``."""
    return kernel_features(network_kernels(spec))
