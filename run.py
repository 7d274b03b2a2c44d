"""Entry point. For now: build the configured network and upsample a bundled photo x3.5.

The network is *untrained* (random weights) until the training suite lands; the demo checks the
install and the whole-image path, not image quality.
"""

from __future__ import annotations

import importlib.resources
from pathlib import Path

import hydra
import numpy as np
import torch
from omegaconf import DictConfig
from PIL import Image

from ipe_lightning.inference import upsample


@hydra.main(config_path="conf", config_name="config", version_base="1.3")
def main(cfg: DictConfig) -> None:
    net = hydra.utils.instantiate(cfg.model.net).eval()
    photo = importlib.resources.files("skimage") / "data" / "chelsea.png"
    with importlib.resources.as_file(photo) as path:
        lr = np.array(Image.open(path).convert("RGB"))
    image = torch.from_numpy(lr).permute(2, 0, 1)[None].float() / 255
    sr = upsample(net, image, scale=3.5)
    out_dir = Path(hydra.core.hydra_config.HydraConfig.get().runtime.output_dir)
    out_path = out_dir / "chelsea_x3.5.png"
    pixels = (sr[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    Image.fromarray(pixels).save(out_path)
    print(
        f"{cfg.model.name} (untrained weights): {lr.shape[1]}x{lr.shape[0]} -> "
        f"{pixels.shape[1]}x{pixels.shape[0]} written to {out_path}"
    )


if __name__ == "__main__":
    main()
