"""Every other built-in layer with weights: one named matrix per stored variable.

Variable orders follow each layer's ``build()`` in keras/src/layers (and Keras 2 /
tf.keras where they differ); optional variables are dropped by config flags.
"""

from __future__ import annotations

from ._base import Config, Context, Rule, Var, flag


def _simple(*names: str, bias_flag: str | None = "use_bias") -> Rule:
    def variables(config: Config, context: Context) -> list[Var]:
        out = [Var(n) for n in names]
        if bias_flag is None or flag(config, bias_flag, True):
            out.append(Var("bias"))
        return out

    return Rule(class_names=(), variables=variables)


def _named(class_names: tuple[str, ...], rule: Rule) -> Rule:
    return Rule(class_names=class_names, variables=rule.variables, parts=rule.parts, v3_groups=rule.v3_groups)


def _depthwise(config: Config, context: Context) -> list[Var]:
    # Keras 3 calls it "kernel"; Keras 2 and tf.keras "depthwise_kernel".
    out = [Var("kernel" if context.keras_major >= 3 else "depthwise_kernel")]
    if flag(config, "use_bias", True):
        out.append(Var("bias"))
    return out


def _batch_norm(config: Config, context: Context) -> list[Var]:
    out = []
    if flag(config, "scale", True):
        out.append(Var("gamma"))
    if flag(config, "center", True):
        out.append(Var("beta"))
    out += [Var("moving_mean", trainable=False), Var("moving_variance", trainable=False)]
    if flag(config, "renorm", False) and context.keras_major >= 3:
        out += [Var(n, trainable=False) for n in ("moving_stddev", "renorm_mean", "renorm_stddev")]
    elif flag(config, "renorm", False):
        out += [Var(n, trainable=False) for n in ("renorm_mean", "renorm_stddev")]
    return out


def _layer_norm(config: Config, context: Context) -> list[Var]:
    out = []
    if flag(config, "scale", True):
        out.append(Var("gamma"))
    if flag(config, "center", True) and not flag(config, "rms_scaling", False):
        out.append(Var("beta"))
    return out


def _normalization(config: Config, context: Context) -> list[Var]:
    if config.get("mean") is not None and config.get("variance") is not None:
        return []  # values live in the config itself
    return [Var(n, trainable=False) for n in ("mean", "variance", "count")]


def _attention(config: Config, context: Context) -> list[Var]:
    out = []
    if flag(config, "use_scale", False):
        out.append(Var("scale"))
    if config.get("score_mode") == "concat":
        out.append(Var("concat_score_weight"))
    return out


def _additive_attention(config: Config, context: Context) -> list[Var]:
    return [Var("scale")] if flag(config, "use_scale", True) else []


def _only(*names: str, trainable: bool = True) -> Rule:
    return Rule(class_names=(), variables=lambda config, context: [Var(n, trainable) for n in names])


def _einsum_dense(config: Config, context: Context) -> list[Var]:
    return [Var("kernel")] + ([Var("bias")] if config.get("bias_axes") else [])


def _reversible_embedding(config: Config, context: Context) -> list[Var]:
    out = [Var("embeddings")]
    if not flag(config, "tie_weights", True):
        out.append(Var("reverse_embeddings"))
    return out


def _stft(config: Config, context: Context) -> list[Var]:
    mode = config.get("mode", "log")
    return [Var(n) for n, skip in (("real_kernel", "imag"), ("imag_kernel", "real")) if mode != skip]


def _spectral_normalization(config: Config, context: Context) -> list[Var]:
    # keras/src/layers/normalization/spectral_normalization.py: build() keeps the wrapped
    # layer's kernel (or embeddings) as self.kernel, so .keras stores it again among the
    # wrapper's own variables; legacy HDF5 and Keras's weights list it once.
    return [
        Var("kernel", meaning="the wrapped layer's kernel", shared=True),
        Var("vector_u", trainable=False, meaning="power-iteration estimate of the kernel's top singular vector"),
    ]


CONV = ("Conv1D", "Conv2D", "Conv3D", "Conv1DTranspose", "Conv2DTranspose", "Conv3DTranspose")

RULES = [
    _named(("Dense", "LocallyConnected1D", "LocallyConnected2D", *CONV), _simple("kernel")),
    Rule(("EinsumDense",), _einsum_dense),
    _named(("Embedding",), _only("embeddings")),
    Rule(("DepthwiseConv1D", "DepthwiseConv2D"), _depthwise),
    _named(("SeparableConv1D", "SeparableConv2D"), _simple("depthwise_kernel", "pointwise_kernel")),
    Rule(("BatchNormalization", "SyncBatchNormalization"), _batch_norm),
    Rule(("LayerNormalization", "GroupNormalization"), _layer_norm),
    _named(("RMSNormalization",), _only("scale")),
    _named(("PReLU",), _only("alpha")),
    Rule(("Normalization",), _normalization),
    Rule(("Attention",), _attention),
    Rule(("AdditiveAttention",), _additive_attention),
    Rule(("ReversibleEmbedding",), _reversible_embedding),
    Rule(("STFTSpectrogram",), _stft),
    Rule(("SpectralNormalization",), _spectral_normalization),
]
