"""MultiHeadAttention: four EinsumDense sublayers, each a kernel and an optional bias.

Keras 3 stores them under ``query_dense``, ``key_dense``, ``value_dense`` and
``output_dense`` (``_query_dense``... in tf.keras and Keras 3.0.0); legacy HDF5 names
them ``query/kernel``, ``key/kernel``, ``value/kernel``, ``attention_output/kernel``.
"""

from __future__ import annotations

from ._base import Config, Context, Rule, Var, flag

_PROJECTIONS = ("query", "key", "value", "attention_output")
_MEANINGS = {
    "query": "query projection",
    "key": "key projection",
    "value": "value projection",
    "attention_output": "output projection",
}


def _variables(config: Config, context: Context) -> list[Var]:
    bias = flag(config, "use_bias", True)
    out = []
    for projection in _PROJECTIONS:
        out.append(Var(f"{projection}/kernel", meaning=f"{_MEANINGS[projection]} kernel"))
        if bias:
            out.append(Var(f"{projection}/bias", meaning=f"{_MEANINGS[projection]} bias"))
    return out


RULES = [
    Rule(
        # GroupedQueryAttention (exported also as GroupQueryAttention) builds the same four
        # EinsumDense sublayers and stores them only under the private names (Keras 3.15).
        class_names=("MultiHeadAttention", "GroupedQueryAttention", "GroupQueryAttention"),
        variables=_variables,
        v3_groups=("query_dense", "key_dense", "value_dense", "output_dense"),
        aliases_v3={
            "query_dense": ("_query_dense",),
            "key_dense": ("_key_dense",),
            "value_dense": ("_value_dense",),
            "output_dense": ("_output_dense",),
        },
    )
]
