"""Train, test or predict with one composed config.

python run.py                                   # the embedded default (bundled photos)
python run.py experiment=table1_edsr_baseline_ipe_liif data.root=/data
python run.py mode=test ckpt_path=run/checkpoints/last.ckpt eval=folder eval.root=/my/hr
"""

from __future__ import annotations

import hydra
from omegaconf import DictConfig


@hydra.main(config_path="conf", config_name="config", version_base="1.3")
def main(cfg: DictConfig) -> None:
    from ipe_lightning.report_console import print_record
    from ipe_lightning.tasks import run

    record = run(cfg)
    if record:
        print_record(record)


if __name__ == "__main__":
    main()
