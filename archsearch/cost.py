"""Parameters and multiply-accumulates computed from a spec alone (no TensorFlow).

Counts follow Keras: ``params`` is what ``model.count_params()`` reports (batch-norm
moving statistics and normalisation constants included); ``trainable`` leaves those
out, as PyTorch's parameter counts do. MACs count convolution, depthwise convolution
and dense layers at batch 1. One cost function per block type, in a registry keyed
by ``type`` like the builders.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from archsearch.registry import BlockRegistry
from archsearch.spec import NetworkSpec, ResolvedBlock, resolve


@dataclass(frozen=True)
class Cost:
    """Parameter (total and trainable) and MAC counts of some layers."""

    params: int = 0
    trainable: int = 0
    macs: int = 0

    def __add__(self, other: Cost) -> Cost:
        return Cost(self.params + other.params, self.trainable + other.trainable, self.macs + other.macs)


def conv_cost(kernel: int, cin: int, cout: int, out_size: int, bias: bool = False) -> Cost:
    weights = kernel * kernel * cin * cout
    params = weights + (cout if bias else 0)
    return Cost(params, params, weights * out_size * out_size)


def depthwise_cost(kernel: int, channels: int, out_size: int) -> Cost:
    weights = kernel * kernel * channels
    return Cost(weights, weights, weights * out_size * out_size)


def batchnorm_cost(channels: int) -> Cost:
    # gamma and beta train; the moving mean and variance do not.
    return Cost(4 * channels, 2 * channels, 0)


def dense_cost(cin: int, cout: int) -> Cost:
    return Cost(cin * cout + cout, cin * cout + cout, cin * cout)


def conv_bn_cost(kernel: int, cin: int, cout: int, out_size: int) -> Cost:
    return conv_cost(kernel, cin, cout, out_size) + batchnorm_cost(cout)


def dw_bn_cost(kernel: int, channels: int, out_size: int) -> Cost:
    return depthwise_cost(kernel, channels, out_size) + batchnorm_cost(channels)


BlockCostFunction = Callable[[ResolvedBlock], Cost]
_COSTS: BlockRegistry[BlockCostFunction] = BlockRegistry("a cost function")
COST_FUNCTIONS = _COSTS.functions
register_cost = _COSTS.register
"""Register the cost function of a block type (a decorator); one per type."""


@register_cost("conv")
def _conv_block_cost(rb: ResolvedBlock) -> Cost:
    return conv_bn_cost(rb.block.kernel, rb.in_channels, rb.out_channels, rb.out_size)


@register_cost("dsconv")
def _dsconv_cost(rb: ResolvedBlock) -> Cost:
    return dw_bn_cost(rb.block.kernel, rb.in_channels, rb.out_size) + conv_bn_cost(
        1, rb.in_channels, rb.out_channels, rb.out_size
    )


@register_cost("mbconv")
def _mbconv_cost(rb: ResolvedBlock) -> Cost:
    b, expanded = rb.block, rb.widths["expanded"]
    cost = Cost()
    if b.expansion != 1:
        cost += conv_bn_cost(1, rb.in_channels, expanded, rb.in_size)
    cost += dw_bn_cost(b.kernel, expanded, rb.out_size)
    if "se" in rb.widths:
        cost += dense_cost(expanded, rb.widths["se"]) + dense_cost(rb.widths["se"], expanded)
    return cost + conv_bn_cost(1, expanded, rb.out_channels, rb.out_size)


@register_cost("shuffle")
def _shuffle_cost(rb: ResolvedBlock) -> Cost:
    b, branch = rb.block, rb.widths["branch"]
    cost = Cost()
    if b.stride == 1:
        right_in = rb.in_channels // 2
    else:
        right_in = rb.in_channels
        cost += dw_bn_cost(b.kernel, rb.in_channels, rb.out_size) + conv_bn_cost(1, rb.in_channels, branch, rb.out_size)
    return (cost + conv_bn_cost(1, right_in, branch, rb.in_size) + dw_bn_cost(b.kernel, branch, rb.out_size)
            + conv_bn_cost(1, branch, branch, rb.out_size))


def block_cost(rb: ResolvedBlock) -> Cost:
    """The cost of one resolved block, by its type's registered function."""
    return _COSTS.get(rb.type)(rb)


@dataclass(frozen=True)
class PartCost:
    """The cost of one part of a network (stem, a block repeat, head) with its shapes."""

    name: str
    stage: int | None
    kind: str
    summary: str
    in_shape: tuple[int, int, int]
    out_shape: tuple[int, int, int]
    cost: Cost


@dataclass(frozen=True)
class NetworkCost:
    """Per-part costs of a network and their totals."""

    parts: tuple[PartCost, ...]

    @property
    def total(self) -> Cost:
        total = Cost()
        for part in self.parts:
            total += part.cost
        return total

    @property
    def params(self) -> int:
        return self.total.params

    @property
    def trainable_params(self) -> int:
        return self.total.trainable

    @property
    def macs(self) -> int:
        return self.total.macs

    def stages(self) -> Iterator[tuple[int, list[PartCost]]]:
        """Block parts grouped by stage index, in order."""
        groups: dict[int, list[PartCost]] = {}
        for part in self.parts:
            if part.stage is not None:
                groups.setdefault(part.stage, []).append(part)
        yield from groups.items()


def network_cost(spec: NetworkSpec) -> NetworkCost:
    """Cost every part of ``spec``: preprocessing and stem, each block repeat, the head."""
    net = resolve(spec)
    size, channels = net.input_size, net.input_channels
    stem = net.stem
    stem_cost = conv_bn_cost(stem.kernel, channels, stem.channels, stem.conv_size)
    if spec.input.preprocessing == "imagenet":
        stem_cost += Cost(2 * channels + 1, 0, 0)  # normalisation mean, variance and count
    parts = [PartCost("stem", None, "stem", f"conv k{stem.kernel} s{stem.stride} c{stem.channels}"
                      + (" + maxpool" if stem.pool else ""), (size, size, channels),
                      (stem.out_size, stem.out_size, stem.channels), stem_cost)]
    for rb in net.blocks:
        parts.append(PartCost(rb.name, rb.stage, rb.type, rb.block.summary(),
                              (rb.in_size, rb.in_size, rb.in_channels),
                              (rb.out_size, rb.out_size, rb.out_channels), block_cost(rb)))
    head = net.head
    head_cost = Cost()
    if head.conv_channels is not None:
        head_cost += conv_bn_cost(1, head.in_channels, head.conv_channels, head.in_size)
    width = head.pooled_channels
    for dense in head.hidden:
        head_cost += dense_cost(width, dense.channels)
        width = dense.channels
    head_cost += dense_cost(width, head.classes)
    summary = " -> ".join(
        ([f"conv c{head.conv_channels}"] if head.conv_channels else []) + [f"{head.pooling}pool"]
        + [f"dense {d.channels}" for d in head.hidden] + [f"classifier {head.classes}"]
    )
    parts.append(PartCost("head", None, "head", summary, (head.in_size, head.in_size, head.in_channels),
                          (1, 1, head.classes), head_cost))
    return NetworkCost(tuple(parts))


def count_params(spec: NetworkSpec, trainable_only: bool = False) -> int:
    """Parameters of the compiled model: ``count_params()``, or only the trainable ones."""
    cost = network_cost(spec)
    return cost.trainable_params if trainable_only else cost.params


def count_macs(spec: NetworkSpec) -> int:
    """Multiply-accumulates of one forward pass at batch 1 and the spec's input size."""
    return network_cost(spec).macs
