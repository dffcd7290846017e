"""Graph to kernels: fused and unfused patterns, GELU, residual adds, ops that cannot be priced."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from onnx import TensorProto, helper, numpy_helper

from predictors.kernels import FusionRules, model_kernels
from profiler.operators import FUSION_PAIRS, fusion_workloads

ALL = FusionRules(frozenset(FUSION_PAIRS))
NONE = FusionRules(frozenset())


def build(nodes, inputs, initializers=(), domain_opsets=()) -> tuple[bytes, dict[str, tuple[int, ...]]]:
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info(name, TensorProto.FLOAT, list(shape)) for name, shape in inputs.items()],
        [helper.make_tensor_value_info(nodes[-1].output[0], TensorProto.FLOAT, None)],
        initializer=[numpy_helper.from_array(np.asarray(value, dtype=np.float32), name) for name, value in initializers],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), *domain_opsets])
    model.ir_version = 8
    return model.SerializeToString(), inputs


def conv_bn_relu() -> tuple[bytes, dict]:
    c = 8
    return build(
        [helper.make_node("Conv", ["x", "w"], ["c"], kernel_shape=[3, 3, 3], pads=[1] * 6, name="conv"),
         helper.make_node("BatchNormalization", ["c", "s", "b", "m", "v"], ["n"], name="bn"),
         helper.make_node("Relu", ["n"], ["y"], name="relu")],
        {"x": (1, c, 4, 8, 8)},
        [("w", np.ones((c, c, 3, 3, 3))), ("s", np.ones(c)), ("b", np.zeros(c)), ("m", np.zeros(c)), ("v", np.ones(c))],
    )


def test_conv_bn_relu_is_one_kernel_where_the_device_fuses_it_else_three():
    fused = model_kernels(*conv_bn_relu(), ALL)
    assert [(k.type, k.label) for k in fused.kernels] == [("conv", "Conv+BatchNormalization+Relu")]
    assert fused.kernels[0].features["f_bn"] == 1 and fused.kernels[0].features["f_act"] == 1
    apart = model_kernels(*conv_bn_relu(), NONE)
    assert [(k.type, k.label) for k in apart.kernels] == [("conv", "Conv"), ("norm", "BatchNormalization"), ("elementwise", "Relu")]
    only_bn = model_kernels(*conv_bn_relu(), FusionRules(frozenset({"conv>BatchNormalization"})))
    assert [k.label for k in only_bn.kernels] == ["Conv+BatchNormalization", "Relu"]
    assert not fused.unpriced and not apart.unpriced


def test_a_residual_add_joins_one_of_its_two_convolutions():
    c = 4
    data = build(
        [helper.make_node("Conv", ["x", "w1"], ["a"], kernel_shape=[1, 1, 1], name="main"),
         helper.make_node("Conv", ["x", "w2"], ["b"], kernel_shape=[1, 1, 1], name="shortcut"),
         helper.make_node("Add", ["a", "b"], ["s"], name="add"),
         helper.make_node("Relu", ["s"], ["y"], name="relu")],
        {"x": (1, c, 2, 4, 4)}, [("w1", np.ones((c, c, 1, 1, 1))), ("w2", np.ones((c, c, 1, 1, 1)))],
    )
    graph = model_kernels(*data, ALL)
    assert sorted(k.label for k in graph.kernels) == ["Conv", "Conv+Add+Relu"]
    assert sum(len(k.nodes) for k in graph.kernels) == 4


def test_matmul_add_by_rule_and_the_exported_gelu_as_one_elementwise_kernel():
    half, one, root = np.array(0.5), np.array(1.0), np.array(2 ** 0.5)
    data = build(
        [helper.make_node("MatMul", ["x", "w"], ["m"], name="mm"),
         helper.make_node("Add", ["m", "bias"], ["a"], name="bias_add"),
         helper.make_node("Div", ["a", "root"], ["d"], name="div"),
         helper.make_node("Erf", ["d"], ["e"], name="erf"),
         helper.make_node("Add", ["e", "one"], ["p"], name="plus"),
         helper.make_node("Mul", ["a", "p"], ["q"], name="mul"),
         helper.make_node("Mul", ["q", "half"], ["y"], name="half_mul")],
        {"x": (1, 16, 32)}, [("w", np.ones((32, 64))), ("bias", np.zeros(64)), ("root", root), ("one", one), ("half", half)],
    )
    fused = model_kernels(*data, FusionRules(frozenset({"matmul>Add"})))
    assert [(k.type, k.label) for k in fused.kernels] == [("matmul", "MatMul+Add"), ("elementwise", "Div+Erf+Add+Mul+Mul")]
    assert fused.kernels[1].features["transcendental"] == 2  # Div and Erf
    apart = model_kernels(*data, NONE)
    assert [k.label for k in apart.kernels] == ["MatMul", "Add", "Div+Erf+Add+Mul+Mul"]


def test_ops_no_predictor_covers_and_unknown_shapes_are_listed_never_zero():
    data = build(
        [helper.make_node("Einsum", ["x", "x"], ["e"], equation="bij,bjk->bik", name="einsum"),
         helper.make_node("Foo", ["e"], ["f"], domain="com.example", name="custom"),
         helper.make_node("Relu", ["f"], ["y"], name="relu")],
        {"x": (1, 8, 8)}, domain_opsets=[helper.make_opsetid("com.example", 1)],
    )
    graph = model_kernels(*data, ALL)
    reasons = {item.op_type: item.reason for item in graph.unpriced}
    assert set(reasons) == {"Einsum", "Foo", "Relu"}
    assert "no operator predictor" in reasons["Einsum"] and "unknown" in reasons["Relu"]
    assert graph.kernels == []


def test_fusion_rules_follow_the_measured_tests():
    rows = []
    for workload in fusion_workloads():
        pair, part = workload.spec["pair"], workload.spec["part"]
        a, b = 1.0, 0.4
        fused = pair in ("conv>Relu", "matmul>Add")
        ms = {"A": a, "B": b, "AB": a + (0.02 if fused else b)}[part]
        rows.append({"key": workload.key, "status": "ok", "median_ms": ms, "cpu_ms": ms, "contended": False, "spec": workload.spec})
    rules = FusionRules.from_table(pd.DataFrame.from_records(rows))
    assert rules.fused == {"conv>Relu", "matmul>Add"}
    assert rules.fuses("conv", "Clip") and not rules.fuses("conv", "Add")
    assert rules.evidence["conv>Add"] == pytest.approx(1.0)


def test_a_damaged_onnx_is_one_error():
    from profiler.errors import WorkloadError

    with pytest.raises(WorkloadError, match="not a valid ONNX model"):
        model_kernels(b"not onnx", {"x": (1,)}, ALL)


def test_a_patch_embedding_is_marked_and_an_overlapping_conv_is_not():
    def conv(kernel, strides, pads):
        return build([helper.make_node("Conv", ["x", "w"], ["y"], kernel_shape=kernel, strides=strides, pads=pads, name="conv")],
                     {"x": (1, 3, 4, 32, 32)}, [("w", np.ones((8, 3, *kernel)))])

    [patch] = model_kernels(*conv([2, 16, 16], [2, 16, 16], [0] * 6), ALL).kernels
    [overlap] = model_kernels(*conv([3, 3, 3], [2, 2, 2], [1] * 6), ALL).kernels
    [pointwise] = model_kernels(*conv([1, 1, 1], [1, 1, 1], [0] * 6), ALL).kernels
    assert (patch.features["patchify"], overlap.features["patchify"], pointwise.features["patchify"]) == (1.0, 0.0, 0.0)
