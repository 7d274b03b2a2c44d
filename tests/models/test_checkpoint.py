"""Official LIIF code-base checkpoints load into our networks with the same predictions.

The state dicts are built here by hand in the official layout (github yinboc/liif): random tensors
under the official key names. Oracles: the official encoders written as plain ``F.conv2d`` calls
on those tensors, and networks built from our constructors whose weights are assigned by hand.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from ipe_lightning.models import (
    LIIF,
    RDN,
    Cell,
    EDSRBaseline,
    MetaSR,
    NoEncoding,
    PlainMLP,
    from_liif_checkpoint,
    read_checkpoint,
)

C = 64


class StateDict(dict):
    """An official-layout state dict filled with random tensors of the right shapes."""

    def __init__(self, seed: int) -> None:
        super().__init__()
        self.generator = torch.Generator().manual_seed(seed)

    def conv(self, prefix: str, c_in: int, c_out: int, k: int) -> None:
        scale = (c_in * k * k) ** -0.5  # keeps activations O(1) through deep random encoders
        self[f"{prefix}.weight"] = torch.randn(c_out, c_in, k, k, generator=self.generator) * scale
        self[f"{prefix}.bias"] = torch.randn(c_out, generator=self.generator) * 0.1

    def linear(self, prefix: str, d_in: int, d_out: int) -> None:
        scale = d_in**-0.5
        self[f"{prefix}.weight"] = torch.randn(d_out, d_in, generator=self.generator) * scale
        self[f"{prefix}.bias"] = torch.randn(d_out, generator=self.generator) * 0.1


def edsr_baseline_keys(sd: StateDict) -> None:
    sd.conv("encoder.sub_mean", 3, 3, 1)  # mean shifts: present in the file, unused
    sd.conv("encoder.add_mean", 3, 3, 1)
    sd.conv("encoder.head.0", 3, C, 3)
    for i in range(16):
        sd.conv(f"encoder.body.{i}.body.0", C, C, 3)
        sd.conv(f"encoder.body.{i}.body.2", C, C, 3)
    sd.conv("encoder.body.16", C, C, 3)


def rdn_keys(sd: StateDict) -> None:
    sd.conv("encoder.SFENet1", 3, C, 3)
    sd.conv("encoder.SFENet2", C, C, 3)
    for i in range(16):
        for j in range(8):
            sd.conv(f"encoder.RDBs.{i}.convs.{j}.conv.0", C + 64 * j, 64, 3)
        sd.conv(f"encoder.RDBs.{i}.LFF", C + 8 * 64, C, 1)
    sd.conv("encoder.GFF.0", 16 * C, C, 1)
    sd.conv("encoder.GFF.1", C, C, 3)


def official_checkpoint(
    name: str, encoder: str, seed: int = 0, **liif_args
) -> tuple[dict, StateDict]:
    sd = StateDict(seed)
    (edsr_baseline_keys if encoder == "edsr-baseline" else rdn_keys)(sd)
    encoder_spec = {"name": encoder, "args": {"no_upsampling": True}}
    if name == "liif":
        latent = C * (9 if liif_args.get("feat_unfold", True) else 1)
        widths = [latent + (4 if liif_args.get("cell_decode", True) else 2), 256, 256, 256, 256, 3]
        for k in range(5):
            sd.linear(f"imnet.layers.{2 * k}", widths[k], widths[k + 1])
        args = {
            "encoder_spec": encoder_spec,
            "imnet_spec": {"name": "mlp", "args": {"out_dim": 3, "hidden_list": [256] * 4}},
            **liif_args,
        }
    else:  # the LIIF code's MetaSR fixes its own imnet: 3 → 256 → 9C·3
        sd.linear("imnet.layers.0", 3, 256)
        sd.linear("imnet.layers.2", 256, 9 * C * 3)
        args = {"encoder_spec": encoder_spec}
    return {"model": {"name": name, "args": args, "sd": dict(sd)}}, sd


# ---------------------------------------------------------------- oracles


def conv(sd, prefix, x):
    weight = sd[f"{prefix}.weight"]
    return F.conv2d(x, weight, sd[f"{prefix}.bias"], padding=weight.shape[-1] // 2)


def official_edsr_baseline(sd, x):
    head = conv(sd, "encoder.head.0", x)
    h = head
    for i in range(16):
        h = h + conv(
            sd, f"encoder.body.{i}.body.2", torch.relu(conv(sd, f"encoder.body.{i}.body.0", h))
        )
    return conv(sd, "encoder.body.16", h) + head


def official_rdn(sd, x):
    shallow = conv(sd, "encoder.SFENet1", x)
    h = conv(sd, "encoder.SFENet2", shallow)
    block_outputs = []
    for i in range(16):
        t = h
        for j in range(8):
            t = torch.cat([t, torch.relu(conv(sd, f"encoder.RDBs.{i}.convs.{j}.conv.0", t))], 1)
        h = conv(sd, f"encoder.RDBs.{i}.LFF", t) + h
        block_outputs.append(h)
    fused = conv(sd, "encoder.GFF.1", conv(sd, "encoder.GFF.0", torch.cat(block_outputs, 1)))
    return fused + shallow


def load_by_hand(net: nn.Module, sd: StateDict, n_linear: int) -> nn.Module:
    """Assign the official tensors to our constructor's network one by one."""
    encoder_state = {
        key.removeprefix("encoder."): value
        for key, value in sd.items()
        if key.startswith("encoder.")
        and not key.startswith(("encoder.sub_mean", "encoder.add_mean"))
    }
    net.encoder.load_state_dict(encoder_state)
    linears = [m for m in net.mlp.modules() if isinstance(m, nn.Linear)]
    assert len(linears) == n_linear
    with torch.no_grad():
        for k, layer in enumerate(linears):  # official imnet.layers.{0, 2, 4, ...}: Linear, ReLU
            layer.weight.copy_(sd[f"imnet.layers.{2 * k}.weight"])
            layer.bias.copy_(sd[f"imnet.layers.{2 * k}.bias"])
    return net


def queries(seed: int = 1):
    generator = torch.Generator().manual_seed(seed)
    lr = torch.rand(2, 3, 6, 7, generator=generator) * 2 - 1
    coord = torch.rand(2, 10, 2, generator=generator) * 2 - 1
    cell = torch.tensor([2 / 15, 2 / 22]).expand_as(coord)
    return lr, coord, cell


# ---------------------------------------------------------------- claims


def test_liif_edsr_checkpoint_saved_to_a_file_loads_by_path(tmp_path):
    checkpoint, sd = official_checkpoint("liif", "edsr-baseline")
    path = tmp_path / "edsr-baseline-liif.pth"
    torch.save(checkpoint, path)
    net = from_liif_checkpoint(path)
    assert isinstance(net, LIIF)
    lr, coord, cell = queries()
    with torch.no_grad():
        # the encoder is the official EDSR-baseline without mean shift or upsampler
        torch.testing.assert_close(net.encode(lr), official_edsr_baseline(sd, lr))
        by_hand = load_by_hand(LIIF(EDSRBaseline(), encoding=Cell(), mlp=PlainMLP), sd, 5)
        torch.testing.assert_close(net(lr, coord, cell), by_hand(lr, coord, cell))
        # a str path works as well as a Path
        torch.testing.assert_close(
            from_liif_checkpoint(str(path))(lr, coord, cell), net(lr, coord, cell)
        )


def test_liif_rdn_checkpoint_loads_from_a_dict():
    checkpoint, sd = official_checkpoint("liif", "rdn", seed=2)
    net = from_liif_checkpoint(checkpoint)
    assert isinstance(net.encoder, RDN)
    lr, coord, cell = queries(3)
    with torch.no_grad():
        torch.testing.assert_close(net.encode(lr), official_rdn(sd, lr), rtol=1e-4, atol=1e-4)
        by_hand = load_by_hand(LIIF(RDN(), encoding=Cell(), mlp=PlainMLP), sd, 5)
        torch.testing.assert_close(net(lr, coord, cell), by_hand(lr, coord, cell))


@pytest.mark.parametrize("encoder", ["edsr-baseline", "rdn"])
def test_metasr_checkpoint_loads(encoder):
    checkpoint, sd = official_checkpoint("metasr", encoder, seed=4)
    net = from_liif_checkpoint(checkpoint)
    assert isinstance(net, MetaSR)
    lr, coord, cell = queries(5)
    with torch.no_grad():
        by_hand = load_by_hand(MetaSR(RDN() if encoder == "rdn" else EDSRBaseline()), sd, 2)
        torch.testing.assert_close(net(lr, coord, cell), by_hand(lr, coord, cell))


@pytest.mark.parametrize(
    "liif_args",
    [
        {"local_ensemble": False},
        {"feat_unfold": False},
        {"local_ensemble": True, "feat_unfold": True},
    ],
    ids=str,
)
def test_liif_switches_in_the_checkpoint_args_are_honoured(liif_args):
    checkpoint, sd = official_checkpoint("liif", "edsr-baseline", seed=6, **liif_args)
    net = from_liif_checkpoint(checkpoint)
    by_hand = load_by_hand(
        LIIF(
            EDSRBaseline(),
            encoding=Cell(),
            mlp=PlainMLP,
            local_ensemble=liif_args.get("local_ensemble", True),
            feat_unfold=liif_args.get("feat_unfold", True),
        ),
        sd,
        5,
    )
    lr, coord, cell = queries(7)
    with torch.no_grad():
        torch.testing.assert_close(net(lr, coord, cell), by_hand(lr, coord, cell))


def test_cell_decode_false_gives_a_network_without_cell_input():
    checkpoint, sd = official_checkpoint("liif", "edsr-baseline", seed=8, cell_decode=False)
    net = from_liif_checkpoint(checkpoint)
    first = next(m for m in net.mlp.modules() if isinstance(m, nn.Linear))
    assert first.in_features == 9 * C + 2  # [z, c_t]: no rel_cell
    lr, coord, cell = queries(9)
    with torch.no_grad():
        out = net(lr, coord, cell)
        torch.testing.assert_close(net(lr, coord, cell * 3.7), out, rtol=0, atol=0)
        by_hand = load_by_hand(LIIF(EDSRBaseline(), encoding=NoEncoding(), mlp=PlainMLP), sd, 5)
        torch.testing.assert_close(out, by_hand(lr, coord, cell))


def test_unknown_model_name_is_a_value_error():
    checkpoint, _ = official_checkpoint("liif", "edsr-baseline")
    checkpoint["model"]["name"] = "lte"
    with pytest.raises(ValueError, match="'lte'"):
        from_liif_checkpoint(checkpoint)


def test_unknown_encoder_name_is_a_value_error():
    checkpoint, _ = official_checkpoint("liif", "edsr-baseline")
    checkpoint["model"]["args"]["encoder_spec"]["name"] = "swinir"
    with pytest.raises(ValueError, match="'swinir'"):
        from_liif_checkpoint(checkpoint)


def test_not_a_liif_checkpoint_is_a_value_error():
    with pytest.raises(ValueError, match="LIIF"):
        from_liif_checkpoint({"state_dict": {}})


def test_missing_and_unexpected_keys_are_listed():
    checkpoint, _ = official_checkpoint("liif", "edsr-baseline")
    sd = checkpoint["model"]["sd"]
    del sd["encoder.body.3.body.0.weight"]
    del sd["imnet.layers.8.bias"]
    sd["imnet.layers.10.weight"] = torch.zeros(3, 3)
    with pytest.raises(ValueError, match=r"(?i)missing") as error:
        from_liif_checkpoint(checkpoint)
    message = str(error.value)
    assert "encoder.body.3.body.0.weight" in message
    assert "layers.8.bias" in message
    assert "unexpected" in message.lower() and "layers.10.weight" in message


def test_missing_keys_alone_are_a_value_error():
    checkpoint, _ = official_checkpoint("metasr", "edsr-baseline")
    del checkpoint["model"]["sd"]["encoder.head.0.bias"]
    with pytest.raises(ValueError, match=r"encoder\.head\.0\.bias"):
        from_liif_checkpoint(checkpoint)


def test_a_tensor_of_the_wrong_shape_is_a_value_error():
    checkpoint, _ = official_checkpoint("liif", "edsr-baseline")
    checkpoint["model"]["sd"]["imnet.layers.0.weight"] = torch.zeros(256, 600)
    with pytest.raises(ValueError, match=r"layers\.0\.weight"):
        from_liif_checkpoint(checkpoint)


def test_an_official_checkpoint_gives_a_config_of_parts(tmp_path):
    # the config tasks.py hands to SRModule: encoding and MLP as `_target_` parts, no strings
    checkpoint, _ = official_checkpoint("liif", "edsr-baseline", cell_decode=False)
    path = tmp_path / "liif.pth"
    torch.save(checkpoint, path)
    config, _ = read_checkpoint(path)
    assert config["encoding"] == {"_target_": "ipe_lightning.models.encodings.NoEncoding"}
    assert config["mlp"] == {
        "_target_": "ipe_lightning.models.mlp.PlainMLP",
        "_partial_": True,
        "hidden": [256, 256, 256, 256],
    }
    metasr, _ = official_checkpoint("metasr", "edsr-baseline")
    torch.save(metasr, path)
    config, _ = read_checkpoint(path)
    assert config["encoding"] == {"_target_": "ipe_lightning.models.encodings.MetaPlain"}
    assert config["mlp"]["hidden"] == [256]
    assert not {"bandwidth", "hidden", "meta_input"} & set(config)


def test_load_network_gives_the_network_in_eval_mode_on_the_device_asked(tmp_path):
    from ipe_lightning.models import load_network

    checkpoint, _ = official_checkpoint("liif", "edsr-baseline")
    path = tmp_path / "edsr-baseline-liif.pth"
    torch.save(checkpoint, path)
    net, info = load_network(path)
    assert not net.training and not any(m.training for m in net.modules())
    assert {p.device.type for p in net.parameters()} == {"cpu"}
    assert info.config["_target_"] == "ipe_lightning.models.LIIF"
    assert info.model_name is None  # official files name no preset of ours
    # The meta device holds no data, so every parameter lands there only if moved there.
    on_meta, _ = load_network(path, device="meta")
    assert {p.device.type for p in on_meta.parameters()} == {"meta"} and not on_meta.training
