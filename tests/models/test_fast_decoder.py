"""The fast LIIF decoder computes exactly the naive decoder's function.

Oracles: the naive decoder (``NaiveDecoder``, ``[z, enc]`` through the MLP per branch) for outputs
and gradients, and ``F.unfold`` followed by a matrix product for the precomputed projections.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate

from ipe_lightning.coords import make_cell, make_coord
from ipe_lightning.models import IPE, LIIF, PE, Cell, EDSRBaseline, IPECell, NoEncoding
from ipe_lightning.models.checkpoint import upgrade_network_config
from ipe_lightning.models.decoders import FastDecoder, NaiveDecoder
from ipe_lightning.models.fast_decoder import (
    DecodeLayout,
    decode_projections,
    layer_splits,
    projection_map,
)
from ipe_lightning.models.grid import LatentGrid
from ipe_lightning.models.mlp import PlainMLP, SkipMLP

CONF = Path(__file__).resolve().parents[2] / "conf"
LR_SIZE = (5, 7)
TOLERANCE = 1e-5


def queries(batch: int = 2):
    """Every pixel of a non-integer, anisotropic upscaling (x2.6 by x1.9, so 13 x 13), plus the
    four image corners and points on the border, where the ensemble's lookups are clamped."""
    hr_size = (13, 13)
    coord = make_coord(hr_size)
    border = torch.tensor(
        [[-1.0, -1.0], [-1.0, 1.0], [1.0, -1.0], [1.0, 1.0], [-0.9999, 0.3], [0.2, 0.99999]]
    )
    coord = torch.cat([coord, border])
    cell = make_cell(hr_size, len(coord))
    return coord.expand(batch, -1, -1).clone(), cell.expand(batch, -1, -1).clone()


def agree(actual: torch.Tensor, expected: torch.Tensor, tolerance: float = TOLERANCE) -> None:
    """Equal to ``tolerance`` relative to the tensor's scale (absolute for small tensors)."""
    scale = max(1.0, expected.abs().max().item())
    error = (actual - expected).abs().max().item()
    assert error <= tolerance * scale, f"max error {error:.2e} at scale {scale:.2e}"


def outputs_and_gradients(net: LIIF, lr: torch.Tensor, coord, cell, weights):
    net.zero_grad()
    lr = lr.clone().requires_grad_()
    output = net(lr, coord, cell)
    (output * weights).sum().backward()
    grads = {name: p.grad.clone() for name, p in net.named_parameters()}
    return output.detach(), lr.grad, grads


class EveryOtherSkipMLP(torch.nn.Module):
    """An MLP the decoders have never heard of: the decoder input ``u`` is re-read by every
    second hidden layer only (``h2 = relu(W2 [h1, u])``, ``h3 = relu(W3 h2)``, ...)."""

    def __init__(self, in_dim: int, out_dim: int, hidden=(16, 16, 16)) -> None:
        super().__init__()
        self.reads_input = (True, *(k % 2 == 1 for k in range(1, len(hidden))), False)
        widths = [in_dim, *hidden]
        self.layers = torch.nn.ModuleList(
            torch.nn.Linear(widths[k] + (in_dim if k and self.reads_input[k] else 0), widths[k + 1])
            for k in range(len(hidden))
        )
        self.layers.append(torch.nn.Linear(hidden[-1], out_dim))

    @property
    def linears(self):
        return list(self.layers)

    def forward(self, u):
        h = torch.relu(self.layers[0](u))
        for layer, reads in zip(self.layers[1:-1], self.reads_input[1:-1], strict=True):
            h = torch.relu(layer(torch.cat([h, u], dim=-1) if reads else h))
        return self.layers[-1](h)


ENCODINGS = {
    "none": NoEncoding(),
    "cell": Cell(),
    "pe": PE(4),
    "ipe": IPE(4),
    "ipe_cell": IPECell(4),
}
MLPS = {"plain": PlainMLP, "skip": SkipMLP, "every_other_skip": EveryOtherSkipMLP}
CONFIGS = [
    {"encoding": e, "mlp": m, "local_ensemble": le, "feat_unfold": fu}
    for e in ENCODINGS
    for m in ["plain", "skip"]
    for le in [True, False]
    for fu in [True, False]
] + [{"encoding": f"ipe{L}", "mlp": "skip"} for L in (10, 16)]
CONFIGS += [{"encoding": "ipe", "mlp": "every_other_skip"}]


def config_id(config: dict) -> str:
    return "-".join(f"{k}={v}" for k, v in config.items())


def tiny_pair(config: dict, hidden=(16, 16, 16), n_feats: int = 4) -> tuple[LIIF, LIIF]:
    """The same LIIF with the naive and with the fast decoder (same weights)."""
    name = config["encoding"]
    encoding = IPE(int(name[3:])) if name[3:].isdigit() else ENCODINGS[name]
    switches = {k: config[k] for k in ("local_ensemble", "feat_unfold") if k in config}
    naive, fast = (
        LIIF(
            EDSRBaseline(n_resblocks=1, n_feats=n_feats),
            encoding=encoding,
            mlp=partial(MLPS[config["mlp"]], hidden=hidden),
            decoder=decoder,
            **switches,
        )
        for decoder in (NaiveDecoder, FastDecoder)
    )
    fast.load_state_dict(naive.state_dict())
    return naive, fast


@pytest.mark.parametrize("config", CONFIGS, ids=config_id)
def test_fast_decoder_outputs_and_gradients_equal_the_naive_decoder(config):
    # float64: in float32 the two summation orders put a pre-activation near 0 on different sides
    # of a ReLU now and then (seen twice in about ten runs on a loaded machine, presumably as the
    # BLAS split its sums differently: an LR gradient 3.9e-3 apart); float64 puts that out of reach
    naive, fast = (net.double() for net in tiny_pair(config))
    generator = torch.Generator().manual_seed(1)
    lr = torch.rand(2, 3, *LR_SIZE, generator=generator, dtype=torch.float64) * 2 - 1
    coord, cell = (tensor.double() for tensor in queries())
    weights = torch.randn(*coord.shape[:2], 3, generator=generator, dtype=torch.float64)
    out_naive, lr_grad_naive, grads_naive = outputs_and_gradients(naive, lr, coord, cell, weights)
    out_fast, lr_grad_fast, grads_fast = outputs_and_gradients(fast, lr, coord, cell, weights)
    agree(out_fast, out_naive)
    with torch.no_grad():  # inference gathers block by block, training all at once
        agree(fast(lr, coord, cell), out_naive)
    agree(lr_grad_fast, lr_grad_naive)
    assert grads_fast.keys() == grads_naive.keys()
    for name in grads_naive:
        agree(grads_fast[name], grads_naive[name])
    # the comparison is not vacuous: every parameter receives a gradient
    assert all(g.abs().sum() > 0 for g in grads_naive.values())


def test_gradients_with_respect_to_the_query_coordinates_agree_for_a_frozen_network():
    """Only the coordinates need gradients: the fast path must still take its autograd route."""
    naive, fast = tiny_pair({"encoding": "ipe", "mlp": "skip"}, hidden=(16, 16))
    lr = torch.rand(1, 3, *LR_SIZE) * 2 - 1
    coord, cell = queries(batch=1)
    grads = []
    for net in (naive, fast):
        net.requires_grad_(False)
        query = coord.clone().requires_grad_()
        net(lr, query, cell).sum().backward()
        grads.append(query.grad)
    assert grads[0].abs().sum() > 0
    agree(grads[1], grads[0])


def test_fast_decoder_equals_naive_at_the_paper_widths():
    """64 channels (576 unfolded), L = 10, 256-wide skip MLP: the shapes the conv view must get
    right."""
    torch.manual_seed(3)
    naive, fast = tiny_pair({"encoding": "ipe10", "mlp": "skip"}, hidden=(256,) * 4, n_feats=64)
    lr = torch.rand(1, 3, 12, 10) * 2 - 1
    coord = make_coord((41, 29)).unsqueeze(0)  # x3.4 by x2.9
    cell = make_cell((41, 29), coord.shape[1]).unsqueeze(0)
    weights = torch.randn(*coord.shape[:2], 3)
    out_naive, lr_grad_naive, grads_naive = outputs_and_gradients(naive, lr, coord, cell, weights)
    out_fast, lr_grad_fast, grads_fast = outputs_and_gradients(fast, lr, coord, cell, weights)
    agree(out_fast, out_naive)
    agree(lr_grad_fast, lr_grad_naive)
    for name in grads_naive:
        agree(grads_fast[name], grads_naive[name])


@pytest.mark.parametrize("stacked", [False, True], ids=["per_layer", "stacked"])
@pytest.mark.parametrize("row_block", [1, 7, 1000])
@pytest.mark.parametrize("mlp", ["plain", "skip", "every_other_skip"])
def test_layouts_do_not_change_the_result(row_block, stacked, mlp):
    """Row blocks, and the input layers' products stacked in one or made per layer (the
    calibrated layouts, ipe_lightning.models.decode_calibration), give the same outputs."""
    torch.manual_seed(7)
    net = LIIF(EDSRBaseline(n_resblocks=1, n_feats=4), mlp=partial(MLPS[mlp], hidden=(16, 16)))
    batch, n_queries, enc_width = 2, 150, 40
    with torch.no_grad():
        grid = net.prepare(net.encode(torch.rand(batch, 3, *LR_SIZE)))
        index = torch.randint(0, LR_SIZE[0] * LR_SIZE[1], (4, batch, n_queries))
        coord_input = torch.randn(4, batch, n_queries, enc_width)
        args = (net.mlp, grid.tables, index, coord_input, net.latent_dim)
        layout = DecodeLayout(row_block, stacked_inputs=stacked)
        agree(decode_projections(*args, layout=layout), decode_projections(*args))


@pytest.mark.parametrize("kernel", [3, 1], ids=["unfold", "no_unfold"])
def test_projection_map_is_unfold_then_the_latent_block_of_each_input_layer(kernel):
    """``conv3x3(feat)`` with the viewed weight equals ``W_z · unfold(feat) + b`` per layer."""
    torch.manual_seed(4)
    channels, latent_dim, enc_width = 5, 5 * kernel * kernel, 6
    mlp = SkipMLP(latent_dim + enc_width, 3, [8, 9, 10])
    feat = torch.randn(2, channels, 4, 6)
    latent = F.unfold(feat, kernel, padding=kernel // 2)  # (B, 9C, h*w), order c*9 + ky*3 + kx
    expected = []
    hidden_widths = [0, 8, 9]  # layer k > 0 reads [h_{k-1}, z, enc]
    for layer, offset in zip(mlp.linears[:-1], hidden_widths, strict=True):
        block = layer.weight[:, offset : offset + latent_dim]
        expected.append(torch.einsum("od,bdn->bon", block, latent) + layer.bias[:, None])
    expected = torch.cat(expected, dim=1).view(2, 8 + 9 + 10, 4, 6)
    with torch.no_grad():
        agree(projection_map(mlp, feat, latent_dim, feat_unfold=kernel == 3), expected)


def test_only_layers_that_read_the_decoder_input_are_projected():
    plain = PlainMLP(20, 3, [8, 8, 8])
    skip = SkipMLP(20, 3, [8, 8, 8])
    assert [s.reads_input for s in layer_splits(plain, 12)] == [True, False, False, False]
    assert [s.reads_input for s in layer_splits(skip, 12)] == [True, True, True, False]
    assert [s.hidden_width for s in layer_splits(skip, 12)] == [0, 8, 8, 8]
    other = EveryOtherSkipMLP(20, 3, [8, 8, 8])
    assert [s.reads_input for s in layer_splits(other, 12)] == [True, True, False, False]
    with pytest.raises(TypeError, match="reads_input"):
        layer_splits(torch.nn.Linear(3, 3), 12)


class SkipMLPDeclaredPlain(SkipMLP):
    reads_input = PlainMLP.reads_input  # wrong: its later hidden layers do read the input


def test_an_mlp_whose_declaration_does_not_fit_its_layers_is_refused():
    with pytest.raises(ValueError, match="layer 1 of the MLP has 28 inputs"):
        layer_splits(SkipMLPDeclaredPlain(20, 3, [8, 8, 8]), 12)


def test_both_decoders_share_one_state_dict_with_the_liif_key_names():
    naive, fast = (
        LIIF(EDSRBaseline(n_resblocks=2, n_feats=8), encoding=Cell(), mlp=PlainMLP, decoder=d)
        for d in (NaiveDecoder, FastDecoder)
    )
    naive_state, fast_state = naive.state_dict(), fast.state_dict()
    assert list(naive_state) == list(fast_state)
    assert {k: v.shape for k, v in naive_state.items()} == {
        k: v.shape for k, v in fast_state.items()
    }
    # the official LIIF layout of the plain MLP, and nothing but parameters (no buffers)
    assert [k for k in fast_state if k.startswith("mlp.")] == [
        f"mlp.layers.{i}.{p}" for i in (0, 2, 4, 6, 8) for p in ("weight", "bias")
    ]
    assert len(fast_state) == len(list(fast.parameters()))
    fast.load_state_dict(naive_state, strict=True)


def test_a_decoder_that_is_not_a_part_is_a_type_error_naming_the_parts():
    with pytest.raises(TypeError, match=r"decoder must build.*FastDecoder"):
        LIIF(EDSRBaseline(n_resblocks=1, n_feats=4), decoder="fast")


def test_an_unknown_legacy_impl_is_a_value_error_that_lists_the_choices():
    config = {"_target_": "ipe_lightning.models.LIIF", "impl": "turbo"}
    with pytest.raises(ValueError, match=r"unknown decoder impl 'turbo'.*\['fast', 'naive'\]"):
        upgrade_network_config(config)


@pytest.mark.parametrize("choice, part", [("fast", FastDecoder), ("naive", NaiveDecoder)])
def test_config_choice_selects_the_decoder(choice, part):
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose(
            config_name="config",
            overrides=[
                "model=ipe_liif",
                f"model/decoder={choice}",
                "model.net.encoder.n_resblocks=1",
                "model.net.encoder.n_feats=4",
            ],
        )
    net = instantiate(cfg.model.net)
    assert isinstance(net, LIIF)
    assert type(net.decoder) is part and net.decoder.mlp is net.mlp


def test_the_default_decoder_is_the_fast_one():
    net = LIIF(EDSRBaseline(n_resblocks=1, n_feats=4))
    assert type(net.decoder) is FastDecoder


def test_fast_decoder_runs_under_bf16_autocast_and_stays_close_to_fp32():
    """bf16 autocast (here on CPU; CUDA uses the same dtype rules) must not trip the in-place
    products over mixed dtypes; the result is the fp32 one to bf16 precision, and it trains."""
    torch.manual_seed(5)
    net = LIIF(EDSRBaseline(n_resblocks=1, n_feats=8), mlp=partial(SkipMLP, hidden=(32, 32)))
    lr = torch.rand(2, 3, *LR_SIZE) * 2 - 1
    coord, cell = queries()
    with torch.no_grad():
        reference = net(lr, coord, cell)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        output = net(lr, coord, cell)  # the training path
        with torch.no_grad():
            inference = net(lr, coord, cell)  # the in-place inference path
    assert output.dtype in (torch.bfloat16, torch.float32)
    for result in (output, inference):
        error = (result.float() - reference).abs().max().item()
        assert 0 < error < 0.05 * max(1.0, reference.abs().max().item())  # bf16, not fp32
    output.float().square().mean().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in net.parameters())


def test_a_window_gives_the_whole_grid_result_for_queries_inside_it():
    torch.manual_seed(6)
    net = LIIF(EDSRBaseline(n_resblocks=1, n_feats=4), mlp=partial(SkipMLP, hidden=(16, 16)))
    lr = torch.rand(1, 3, 9, 11) * 2 - 1
    coord = make_coord((18, 22)).view(18, 22, 2)[6:12, 8:14].reshape(1, -1, 2)  # LR rows 3..5
    cell = make_cell((18, 22), coord.shape[1]).unsqueeze(0)
    with torch.no_grad():
        feat = net.encode(lr)
        whole = net.query(feat, coord, cell)
        # features of LR rows 1..7, cols 2..9; the window keeps rows 2..6, cols 3..8
        grid = net.prepare(
            feat[..., 1:8, 2:10], lr_size=(9, 11), offset=(1, 2), rows=(2, 7), cols=(3, 9)
        )
        assert isinstance(grid, LatentGrid) and grid.tables[0].shape[1] == 5 * 6
        agree(net.query_grid(grid, coord, cell), whole)
        narrow = net.prepare(feat, rows=(3, 6), cols=(0, 11))
        with pytest.raises(ValueError, match="outside the window"):
            net.query_grid(narrow, coord, cell)
