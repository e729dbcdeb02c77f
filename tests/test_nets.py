import pytest
import torch

from asdxai import ConfigError, FeatureConfig
from asdxai.nets import LEGACY_VARIANTS, NetConfig, build_encoder, encoder_inputs

FEAT = FeatureConfig(duration_s=1.0)


def _encoder(arch, cfg=FEAT, **kw):
    torch.manual_seed(0)
    return build_encoder(NetConfig(arch=arch, width=0.125, **kw), cfg)


def test_net_config_resolves_embed_dim_and_round_trips():
    assert NetConfig().embed_dim == 256
    assert NetConfig(arch="spectrogram").embed_dim == 128
    cfg = NetConfig(arch="spectrogram", width=0.5, embed_dim=64)
    assert NetConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ConfigError):
        NetConfig(arch="transformer")
    with pytest.raises(ConfigError):
        NetConfig(embed_dim=129)
    with pytest.raises(ConfigError):
        NetConfig(width=0)


@pytest.mark.parametrize("arch,dim", [("dual", 256), ("spectrogram", 128)])
def test_output_shape_unit_norm_and_needs_spectrum(arch, dim):
    enc = _encoder(arch)
    assert enc.needs_spectrum == (arch == "dual")
    inputs = encoder_inputs(torch.randn(3, FEAT.n_samples), FEAT, arch=arch)
    assert inputs["spec"].shape == (3, FEAT.n_frames, FEAT.n_bins)
    assert (inputs["spectrum"] is None) == (arch == "spectrogram")
    out = enc(**inputs)
    assert out.shape == (3, dim) and out.dtype == torch.float32
    torch.testing.assert_close(out.norm(dim=1), torch.ones(3))
    enc.eval()
    single = enc(**{k: (None if v is None else v[:1]) for k, v in inputs.items()})
    torch.testing.assert_close(single, enc(**inputs)[:1], atol=1e-5, rtol=1e-4)


def test_dual_encoder_requires_spectrum():
    enc = _encoder("dual")
    spec = encoder_inputs(torch.randn(2, FEAT.n_samples), FEAT, arch="spectrogram")["spec"]
    with pytest.raises(ConfigError, match="spectrum"):
        enc(spec)


@pytest.mark.parametrize("arch", ["dual", "spectrogram"])
@pytest.mark.parametrize("residual", ["preact", "reference"])
def test_no_bias_anywhere(arch, residual):
    enc = _encoder(arch, residual=residual)
    for name, _ in list(enc.named_parameters()) + list(enc.named_buffers()):
        assert "bias" not in name, name
    for m in enc.modules():
        if isinstance(m, (torch.nn.Conv1d, torch.nn.Conv2d, torch.nn.Linear)):
            assert m.bias is None
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            assert not m.affine


def test_width_scales_channels():
    small = build_encoder(NetConfig(width=0.125), FEAT)
    big = build_encoder(NetConfig(width=0.25), FEAT)
    n_small = sum(p.numel() for p in small.parameters())
    n_big = sum(p.numel() for p in big.parameters())
    assert n_big > 2 * n_small
    assert small.spectrogram_branch.stem.out_channels == 2


@pytest.mark.parametrize("duration", [2.0, 0.5, 10.0])
def test_branch_lengths_follow_the_feature_config(duration):
    cfg = FeatureConfig(duration_s=duration)
    enc = _encoder("dual", cfg)
    assert enc.spectrum_branch.flat_dim >= 1
    if duration == 10.0:  # the reference's shapes: 10 frames x 128 channels, 16 bins x 128 filters
        full = build_encoder(NetConfig(), cfg)
        assert full.spectrum_branch.flat_dim == 1280
        assert full.spectrogram_branch.flat_dim == 2048
        legacy = build_encoder(NetConfig(spectrum_padding="valid"), cfg)
        assert legacy.spectrum_branch.flat_dim == 768  # 1247 / 37 / 6 frames
        return
    out = enc(**encoder_inputs(torch.randn(2, cfg.n_samples), cfg, arch="dual"))
    assert out.shape == (2, 256)


def test_too_short_spectrogram_raises():
    with pytest.raises(ConfigError, match="too small"):
        build_encoder(NetConfig(), FeatureConfig(duration_s=0.1))


def test_autocast_bf16_forward_on_cpu():
    enc = _encoder("dual")
    inputs = encoder_inputs(torch.randn(4, FEAT.n_samples), FEAT, arch="dual")
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = enc(**inputs)
    assert out.dtype == torch.float32 and torch.isfinite(out).all()
    torch.testing.assert_close(out.norm(dim=1), torch.ones(4))


def test_temporal_mean_normalisation_is_inside_the_model():
    """Adding a constant per frequency bin to the linear spectrogram does not change the output."""
    enc = _encoder("spectrogram").eval()
    spec = encoder_inputs(torch.randn(2, FEAT.n_samples), FEAT, arch="spectrogram")["spec"]
    shifted = spec + torch.rand(1, 1, spec.shape[-1]) * 10
    torch.testing.assert_close(enc(spec), enc(shifted), atol=1e-4, rtol=1e-4)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_gpu_forward_matches_cpu():
    enc = _encoder("dual").eval()
    inputs = encoder_inputs(torch.randn(2, FEAT.n_samples), FEAT, arch="dual")
    ref = enc(**inputs)
    out = enc.cuda()(**{k: v.cuda() for k, v in inputs.items()}).cpu()
    torch.testing.assert_close(out, ref, atol=1e-3, rtol=1e-3)


def test_spectrum_branch_sees_the_whole_spectrum():
    """'same' padding (the reference): bins above 7.6 kHz reach the output; 'valid' drops them."""
    cfg = FeatureConfig(duration_s=10.0)
    torch.manual_seed(0)
    spectrum = torch.rand(2, cfg.n_spectrum_bins)
    high = spectrum.clone()
    top = int(7600 / (cfg.sample_rate / 2) * cfg.n_spectrum_bins)  # first bin above 7.6 kHz
    high[:, top:] += 5.0
    for padding, changes in (("same", True), ("valid", False)):
        torch.manual_seed(0)
        branch = build_encoder(NetConfig(width=0.125, spectrum_padding=padding), cfg)
        branch = branch.spectrum_branch.eval()
        assert branch.convs[0](spectrum.unsqueeze(1)).shape[-1] == (1250 if changes else 1247)
        with torch.no_grad():
            assert torch.equal(branch(high), branch(spectrum)) != changes, padding


def test_keras_same_padding_matches_tensorflow_lengths_and_alignment():
    from asdxai.nets import _same_pad

    assert _same_pad(80000, 256, 64) == (96, 96)
    assert _same_pad(1250, 64, 32) == (31, 31)
    assert _same_pad(40, 16, 4) == (6, 6)
    assert _same_pad(128, 3, 2) == (0, 1)  # TensorFlow puts the odd pad on the right
    assert _same_pad(5, 7, 1) == (3, 3)


def test_net_config_variants_validate_and_old_configs_load_as_trained():
    with pytest.raises(ConfigError, match="spectrum_padding"):
        NetConfig(spectrum_padding="causal")
    with pytest.raises(ConfigError, match="residual"):
        NetConfig(residual="post")
    with pytest.raises(ConfigError, match="batch_norm"):
        NetConfig(batch_norm="group")
    cfg = NetConfig(residual="reference", batch_norm="keras")
    assert NetConfig.from_dict(cfg.to_dict()) == cfg
    old = {k: v for k, v in NetConfig().to_dict().items() if k not in LEGACY_VARIANTS}
    legacy = NetConfig.from_dict(old)  # a checkpoint written before the variant fields
    assert (legacy.spectrum_padding, legacy.residual, legacy.batch_norm) == (
        "valid",
        "preact",
        "plain",
    )


def test_reference_residual_wiring_by_hand():
    """A reference unit: h = BN(x); out = shortcut(h) + conv2(relu(BN(conv1(relu(h)))))."""
    from asdxai.nets import _ReferenceUnit

    torch.manual_seed(0)
    unit = _ReferenceUnit(2, 2, downsample=False, bn="keras").eval()
    with torch.no_grad():
        for bn in (unit.bn1, unit.bn2):
            bn.running_mean.uniform_(-1, 1)
            bn.running_var.uniform_(0.5, 2)
            bn.weight.uniform_(0.5, 2)
            bn.bias.uniform_(-1, 1)
    x = torch.randn(3, 2, 5, 6)

    def bn(m, t):
        shape = (1, -1, 1, 1)
        z = (t - m.running_mean.view(shape)) / torch.sqrt(m.running_var.view(shape) + 1e-3)
        return z * m.weight.view(shape) + m.bias.view(shape)

    conv = torch.nn.functional.conv2d
    h = bn(unit.bn1, x)
    r = conv(torch.relu(bn(unit.bn2, conv(torch.relu(h), unit.conv1.weight, padding=1))),
             unit.conv2.weight, padding=1)  # fmt: skip
    torch.testing.assert_close(unit(x), h + r)
    assert unit.bn1.momentum == pytest.approx(0.01) and unit.bn1.eps == pytest.approx(1e-3)


def test_reference_first_stage_follows_the_reference_code():
    """First stage as the reference writes it: unit 1 convolves the un-normalised input with no
    batch norm in between; unit 2 applies ReLU before its inner batch norm."""
    enc = _encoder("spectrogram", residual="reference", batch_norm="keras")
    first, second, third = list(enc.spectrogram_branch.stages)[:3]
    assert (first.normalised_input, first.mid, first.bn2) == (False, "relu", None)
    assert (second.normalised_input, second.mid) == (True, "relu-bn")
    assert (third.normalised_input, third.mid) == (True, "bn-relu")
    out = enc(encoder_inputs(torch.randn(2, FEAT.n_samples), FEAT, arch="spectrogram")["spec"])
    torch.testing.assert_close(out.norm(dim=1), torch.ones(2))
