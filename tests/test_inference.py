"""Whole-image upsampling: tiling and chunking change nothing, and memory is set by the tiles.

Every head (LIIF family, MetaSR) goes through the same tiled path. Oracles: one query of every HR
pixel at once (``net(lr, coord, cell)``), and the sizes of the tensors the tiles make.
"""

from __future__ import annotations

from functools import partial

import numpy as np
import pytest
import torch

from ipe_lightning import inference
from ipe_lightning.coords import make_cell, make_coord
from ipe_lightning.inference import count_tiles, upsample
from ipe_lightning.models import (
    IPE,
    LIIF,
    PE,
    RDN,
    Cell,
    EDSRBaseline,
    MetaPlain,
    MetaSR,
    PlainMLP,
    SkipMLP,
)
from ipe_lightning.models.decoders import FastDecoder, NaiveDecoder
from ipe_lightning.tiling import receptive_radius

TOLERANCE = 1e-5


def tiny_liif(impl: str = "fast", encoder=None, encoding=None, mlp=SkipMLP, **kwargs) -> LIIF:
    torch.manual_seed(0)
    encoder = encoder or EDSRBaseline(n_resblocks=2, n_feats=8)
    return LIIF(
        encoder,
        encoding=encoding or IPE(4),
        mlp=partial(mlp, hidden=(16, 16, 16)),
        decoder={"fast": FastDecoder, "naive": NaiveDecoder}[impl],
        **kwargs,
    ).eval()


def tiny_metasr(encoding=None) -> MetaSR:
    torch.manual_seed(0)
    return MetaSR(
        EDSRBaseline(n_resblocks=1, n_feats=4),
        encoding=encoding or MetaPlain(),
        mlp=partial(PlainMLP, hidden=(8,)),
    ).eval()


HEADS = {"liif": tiny_liif, "metasr": tiny_metasr}


def image(height: int, width: int, batch: int = 2, seed: int = 1) -> torch.Tensor:
    return torch.rand(batch, 3, height, width, generator=torch.Generator().manual_seed(seed))


def one_query(net, lr_image: torch.Tensor, hr_size: tuple[int, int]) -> torch.Tensor:
    """Every HR pixel in one query: docs/method.md §4 with no chunks and no tiles."""
    batch = lr_image.shape[0]
    coord = make_coord(hr_size).expand(batch, -1, -1)
    cell = make_cell(hr_size, coord.shape[1]).expand(batch, -1, -1)
    with torch.no_grad():
        prediction = net((lr_image - 0.5) / 0.5, coord, cell)
    rgb = (prediction * 0.5 + 0.5).clamp(0, 1)
    return rgb.transpose(1, 2).reshape(batch, 3, *hr_size)


def assert_agree(actual: torch.Tensor, expected: torch.Tensor) -> None:
    assert actual.shape == expected.shape
    error = (actual - expected).abs().max().item()
    assert error <= TOLERANCE, f"max error {error:.2e}"


@pytest.fixture
def small_decoder_tiles(monkeypatch):
    """Decoder tiles of 4 LR pixels, so small test images span many of them."""
    monkeypatch.setattr(inference, "DECODER_TILE", 4)


@pytest.mark.parametrize("impl", ["fast", "naive"])
@pytest.mark.parametrize("tile", [None, 3, 5, 8, 64])
def test_tiled_upsample_equals_one_query_of_every_pixel(impl, tile, small_decoder_tiles):
    """Non-integer anisotropic scale; tiles that do not divide the 11 x 14 image."""
    net = tiny_liif(impl)
    lr_image = image(11, 14)
    hr_size = (29, 19)  # x2.64 by x1.36
    expected = one_query(net, lr_image, hr_size)
    assert_agree(upsample(net, lr_image, size=hr_size, tile=tile), expected)


@pytest.mark.parametrize("head", sorted(HEADS))
@pytest.mark.parametrize("max_queries", [1, 13, 100, 100_000])
def test_chunked_upsample_equals_one_shot(head, max_queries, small_decoder_tiles):
    net = HEADS[head]()
    lr_image = image(6, 7)
    expected = one_query(net, lr_image, (16, 13))
    assert_agree(upsample(net, lr_image, size=(16, 13), max_queries=max_queries), expected)


SCALES = [0.5, 1.0, (3.0, 0.7), 12.0, 1 / 3, (0.4, 2.5)]
SCALE_IDS = ["x0.5", "x1", "x3_x0.7", "x12", "x1/3", "x0.4_x2.5"]


@pytest.mark.parametrize("scale", SCALES, ids=SCALE_IDS)
@pytest.mark.parametrize("head", sorted(HEADS))
def test_tiles_that_own_few_or_no_hr_pixels(head, scale, small_decoder_tiles):
    """Downscaling leaves LR tiles without HR pixels (and puts MetaSR's lookup, the pixel's
    corner, far from its centre); x12 gives tiles many queries."""
    net = tiny_liif(encoding=IPE(4), mlp=SkipMLP) if head == "liif" else tiny_metasr(IPE(4))
    lr_image = image(9, 10, batch=1)
    hr_size = inference.output_size((9, 10), scale)
    assert_agree(upsample(net, lr_image, scale=scale, tile=4), one_query(net, lr_image, hr_size))


@pytest.mark.parametrize(
    "config",
    [
        {"encoding": Cell(), "mlp": PlainMLP},
        {"encoding": IPE(4), "mlp": SkipMLP, "local_ensemble": False},
        {"encoding": PE(4), "mlp": PlainMLP, "feat_unfold": False},
    ],
    ids=["liif", "no_ensemble", "no_unfold"],
)
def test_tiled_upsample_equals_one_query_for_the_ablations(config, small_decoder_tiles):
    net = tiny_liif(**config)
    lr_image = image(9, 8)
    assert_agree(upsample(net, lr_image, size=(20, 17), tile=3), one_query(net, lr_image, (20, 17)))


def test_tiled_encoder_with_a_deep_receptive_field_equals_the_whole_image():
    """RDN's dense paths reach further than its conv count per block suggests."""
    encoder = RDN(n_feats=8, n_blocks=2, n_layers=3, growth=4)
    net = tiny_liif(encoder=encoder)
    lr_image = image(40, 23, batch=1)
    assert receptive_radius(encoder) == 1 + 1 + 2 * 3 + 1
    assert_agree(upsample(net, lr_image, scale=1.5, tile=12), one_query(net, lr_image, (60, 34)))


@pytest.mark.parametrize("encoding", [MetaPlain(), PE(4), IPE(4)], ids=["plain", "pe", "ipe"])
@pytest.mark.parametrize("tile", [None, 3, 4, 7])
def test_metasr_upsamples_whole_images_with_or_without_encoder_tiles(
    tile, encoding, small_decoder_tiles
):
    """MetaSR reads one LR pixel per query, so it is tiled like LIIF: the result is the same."""
    net = tiny_metasr(encoding)
    lr_image = image(10, 13)
    expected = one_query(net, lr_image, (23, 29))
    assert_agree(upsample(net, lr_image, size=(23, 29), tile=tile, max_queries=100), expected)


@pytest.mark.parametrize("tile", [0, -3, 2.5, True])
def test_tile_must_be_a_positive_integer(tile):
    with pytest.raises(ValueError, match="tile must be a positive number of LR pixels"):
        upsample(tiny_liif(), image(4, 4), scale=2, tile=tile)


def spy_on(net, monkeypatch) -> dict[str, list]:
    """Record the size of every decoder table, encoder input and query batch."""
    seen: dict[str, list] = {"table": [], "encoder_input": [], "queries": []}
    prepare, encode, query_grid = net.prepare, net.encode, net.query_grid

    def spy_prepare(*args, **kwargs):
        grid = prepare(*args, **kwargs)
        seen["table"].append(sum(t.numel() for t in grid.tables))
        return grid

    def spy_encode(lr):
        seen["encoder_input"].append(tuple(lr.shape[-2:]))
        return encode(lr)

    def spy_query_grid(grid, coord, cell):
        seen["queries"].append(coord.shape[1])
        return query_grid(grid, coord, cell)

    monkeypatch.setattr(net, "prepare", spy_prepare)
    monkeypatch.setattr(net, "encode", spy_encode)
    monkeypatch.setattr(net, "query_grid", spy_query_grid)
    return seen


# head -> (numbers in the tables of one 4 x 4 decoder tile, LR pixels a tile's encoder crop
# reaches beyond it besides the receptive radius)
TILE_TABLES = {
    # the tile plus the ensemble's neighbours; one 16-wide projection per skip-MLP layer that
    # reads the input
    "liif": ((4 + 2) ** 2 * 3 * 16, 1 + 1),
    # the tile itself (each query reads the pixel it belongs to), its 9C-wide unfolded latent
    "metasr": (4**2 * 9 * 4, 0 + 1),
}


@pytest.mark.parametrize("head", sorted(HEADS))
def test_memory_is_set_by_tile_and_chunk_sizes_not_by_the_image_size(
    head, monkeypatch, small_decoder_tiles
):
    """The tensors that grow with the work (decoder tables, encoder inputs, query batches) have
    the same largest size for a 12 x 10 and a 45 x 38 image: the tiles', not the image's."""
    net = HEADS[head]()
    table, reach = TILE_TABLES[head]
    tile, max_queries, halo = 8, 50, receptive_radius(net.encoder) + reach
    largest = {}
    for lr_size in [(12, 10), (45, 38)]:
        seen = spy_on(net, monkeypatch)
        upsample(net, image(*lr_size, batch=1), scale=3.3, tile=tile, max_queries=max_queries)
        largest[lr_size] = {key: max(values) for key, values in seen.items()}
        assert len(seen["table"]) == count_tiles(lr_size, tile)
    small, large = largest[(12, 10)], largest[(45, 38)]
    assert large["table"] == small["table"] == table
    assert large["queries"] == small["queries"] == max_queries
    side = tile + 2 * halo
    assert large["encoder_input"] == (side, side) != (45, 38)
    assert small["encoder_input"] == (12, 10)


@pytest.mark.parametrize("head", sorted(HEADS))
def test_without_tiles_only_the_encoder_sees_the_whole_image(
    head, monkeypatch, small_decoder_tiles
):
    net = HEADS[head]()
    seen = spy_on(net, monkeypatch)
    upsample(net, image(30, 20, batch=1), scale=2, tile=None)
    assert seen["encoder_input"] == [(30, 20)]
    assert max(seen["table"]) == TILE_TABLES[head][0]


def test_encoder_tiles_see_only_their_halo(monkeypatch):
    """Each encoded piece is at most tile + 2 x (receptive radius + the head's reach) on a side,
    and the image is cut into ceil(30 / 8) x ceil(20 / 8) pieces."""
    net = tiny_metasr()
    seen = spy_on(net, monkeypatch)
    lr_image = image(30, 20, batch=1)
    tiled = upsample(net, lr_image, scale=2, tile=8)
    halo = receptive_radius(net.encoder) + net.lookup_reach + net.table_reach
    assert len(seen["encoder_input"]) == 4 * 3
    assert max(max(side) for side in seen["encoder_input"]) <= 8 + 2 * halo
    assert_agree(tiled, one_query(net, lr_image, (60, 40)))


@pytest.mark.parametrize("head", sorted(HEADS))
@pytest.mark.parametrize("tile", [None, 5])
def test_progress_reports_every_tile_once(head, tile, small_decoder_tiles):
    calls = []
    upsample(
        HEADS[head](),
        image(11, 9, batch=1),
        scale=2.0,
        tile=tile,
        progress=lambda done, total: calls.append((done, total)),
    )
    total = count_tiles((11, 9), tile)
    assert calls == [(done, total) for done in range(1, total + 1)]
    # 11 x 9 in decoder tiles of 4: 3 x 3; in encoder tiles of 5 cut to 4 + 1: 5 x 3
    assert total == (3 * 3 if tile is None else 5 * 3)


def test_a_progress_bar_leaves_the_result_unchanged(small_decoder_tiles):
    net, lr_image = tiny_liif(), image(9, 7, batch=1)
    with_bar = upsample(net, lr_image, scale=1.7, progress=True)
    assert_agree(with_bar, upsample(net, lr_image, scale=1.7))


# ---------------------------------------------------------------- inputs and PIL images


@pytest.mark.parametrize(
    ("values", "error", "hint"),
    [
        (lambda x: (x * 255).round().to(torch.uint8), TypeError, r"image.float\(\) / 255"),
        (lambda x: (x * 255).round(), ValueError, "divide 0-255 values by 255"),
        (lambda x: x * 2 - 1, ValueError, r"\(image \+ 1\) / 2"),
        (lambda x: torch.full_like(x, float("nan")), ValueError, "got values in"),
    ],
    ids=["uint8", "0-255 floats", "[-1, 1]", "nan"],
)
def test_an_image_outside_0_1_is_refused_with_how_to_convert_it(values, error, hint):
    # Before: 0-255 floats came out all white (mean 0.998 for a true mean of 0.42), silently.
    with pytest.raises(error, match=hint):
        upsample(tiny_liif(), values(image(8, 8, batch=1)), scale=2)


def test_the_overshoot_of_a_float_resize_is_accepted():
    lr = image(8, 8, batch=1)
    lr[..., 0, 0], lr[..., 1, 1] = -0.05, 1.05  # a bicubic resize rings past 0 and 1
    assert upsample(tiny_liif(), lr, scale=2).shape == (1, 3, 16, 16)


def test_pil_conversions_are_8_bit_values_over_255_and_back_rounded():
    from PIL import Image

    pixels = torch.randint(0, 256, (5, 7, 3), generator=torch.Generator().manual_seed(0))
    photo = Image.fromarray(pixels.numpy().astype("uint8"))
    tensor = inference.from_pil(photo)
    assert tensor.shape == (1, 3, 5, 7) and tensor.dtype == torch.float32
    torch.testing.assert_close(tensor, pixels.permute(2, 0, 1)[None].float() / 255)
    assert inference.from_pil(photo.convert("L")).shape == (1, 3, 5, 7)  # any mode → RGB
    back = inference.to_pil(tensor)
    assert back.mode == "RGB" and (torch.from_numpy(np.array(back)) == pixels).all()
    # round(v * 255), clamped: 0.2 → 51, 0.5 → 128 (127.5 rounds to even), 1.3 → 255
    grey = inference.to_pil(torch.tensor([0.2, 0.5, 1.3]).view(3, 1, 1))
    assert grey.getpixel((0, 0)) == (51, 128, 255)


@pytest.mark.parametrize("target", [{"scale": 2.5}, {"size": (11, 13)}])
def test_upsample_pil_is_upsample_between_pil_images(target):
    from PIL import Image

    net = tiny_liif()
    pixels = (image(6, 5, batch=1, seed=3)[0].permute(1, 2, 0) * 255).round().to(torch.uint8)
    photo = Image.fromarray(pixels.numpy())
    sr = inference.upsample_pil(net, photo, **target, max_queries=50)
    expected = inference.to_pil(upsample(net, inference.from_pil(photo), **target))
    assert sr.size == expected.size == ((13, 11) if "size" in target else (12, 15))
    assert (np.asarray(sr) == np.asarray(expected)).all()
