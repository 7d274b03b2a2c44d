"""Every value out of its range is refused where the config is composed, with one SettingError
naming the option as the user writes it and the values it takes; what the paper's configs and
the test suite use passes."""

from __future__ import annotations

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from ipe_lightning.errors import SettingError, user_message
from ipe_lightning.settings import check_values, is_scale
from ipe_lightning.tasks import check_settings
from tests.support.runs import CONF_DIR

CHECKPOINT = "ckpt_path=/some/last.ckpt"
PREDICT = ["mode=predict", CHECKPOINT, "predict.input=/some/photo.png"]


def composed(overrides: list[str]):
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose("config", overrides=overrides)


def refusal(overrides: list[str]) -> str:
    with pytest.raises(SettingError) as caught:
        check_values(composed(overrides))
    message = user_message(caught.value)
    assert message is not None and "\n" not in message, message  # one line, told alone
    return message


@pytest.mark.parametrize(
    ("override", "named"),
    [
        ("eval.scales=0", "eval.scales=0: 0 is not a scale; a non-empty list of scales"),
        ("eval.scales=2", "eval.scales=2: a non-empty list of scales"),
        ("eval.scales=[0]", "eval.scales=[0]: 0 is not a scale"),
        ("eval.scales=[-2]", "eval.scales=[-2]: -2 is not a scale"),
        ("eval.scales=[nan]", "eval.scales=[nan]: nan is not a scale"),
        ("eval.scales=[2,inf]", "eval.scales=[2, inf]: inf is not a scale"),
        ("eval.scales=[2,3,[2]]", "eval.scales=[2, 3, [2]]: [2] is not a scale"),
        ("eval.scales=['abc']", "eval.scales=['abc']: 'abc' is not a scale"),
        ("eval.scales=[0.5]", "eval.scales=[0.5]: 0.5 is not a scale"),
        ("eval.scales=[]", "eval.scales=[]: a non-empty list"),
    ],
)
def test_an_evaluation_scale_out_of_range_is_refused_naming_eval_scales(override, named):
    message = refusal([override])
    assert message.startswith(f"eval set 'sample': {named}"), message
    assert message.endswith(
        "a non-empty list of scales, each a finite number >= 1 or a pair [s_h, s_w] of them "
        "(eval.scales=[2,3.5,[2,3]])"
    )


@pytest.mark.parametrize(
    ("overrides", "named"),
    [
        (["data.inp_size=48x"], "data.inp_size=48x: a whole number >= 1"),
        (["data.inp_size=0"], "data.inp_size=0: a whole number >= 1"),
        (["data.batch_size=0"], "data.batch_size=0: a whole number >= 1"),
        (["data.batch_size=2.5"], "data.batch_size=2.5: a whole number >= 1"),
        (["data.num_workers=-1"], "data.num_workers=-1: a whole number >= 0"),
        (["data.sample_q=0"], "data.sample_q=0: a whole number >= 1 or null"),
        (["data.scale_min=5", "data.scale_max=2"], "data.scale_min=5 data.scale_max=2:"),
        (["data.scale_min=0"], "data.scale_min=0: a finite number > 0"),
        (["data.scale_max=nan"], "data.scale_max=nan: a finite number > 0"),
        (["test.tile=0"], "test.tile=0: a whole number >= 1 or null"),
        (["test.tile=-5"], "test.tile=-5: a whole number >= 1 or null"),
        (["test.grid_band=0"], "test.grid_band=0: a whole number >= 1 or null"),
        (["test.max_queries=0"], "test.max_queries=0: a whole number >= 1"),
        (["eval.shave=-1"], "eval set 'sample': eval.shave=-1: a whole number of pixels >= 0"),
        (["eval.shave=edge"], "eval set 'sample': eval.shave=edge: a whole number of pixels"),
        (["eval.channel=cb"], "eval set 'sample': eval.channel=cb: one of rgb | y"),
        (
            ["eval=paper", "eval.sets.div2k.scales=[2,0]"],
            "eval set 'div2k': eval.sets.div2k.scales=[2, 0]: 0 is not a scale",
        ),
        (["eval=paper", "eval.scales=[0]"], "eval set 'set5': eval.scales=[0]: 0 is not a scale"),
    ],
)
def test_a_data_test_or_eval_value_out_of_range_is_refused_naming_it(overrides, named):
    message = refusal(overrides)
    assert message.startswith(named), message


@pytest.mark.parametrize(
    ("overrides", "named"),
    [
        (["predict.scale=0"], "predict.scale=0: a finite number > 0 or a pair"),
        (["predict.scale=[2,-1]"], "predict.scale=[2, -1]: a finite number > 0"),
        (["predict.size=[0,10]"], "predict.size=[0, 10]: [H, W], two whole numbers"),
        (["predict.size=[10]"], "predict.size=[10]: [H, W]"),
        (["predict.scale=2", "predict.size=[10,10]"], "mode=predict takes exactly one of"),
        ([], "mode=predict takes exactly one of predict.scale"),
        (["predict.scale=2", "predict.precision=16"], "predict.precision=16: one of 32 | bf16"),
        (["predict.scale=2", "predict.device=gpu"], "predict.device=gpu: one of auto | cpu"),
    ],
)
def test_a_predict_option_out_of_range_is_refused_with_its_predict_prefix(overrides, named):
    message = refusal([*PREDICT, *overrides])
    assert message.startswith(named), message
    if not overrides:
        assert message.endswith("neither given")
    if len(overrides) == 2 and "size" in overrides[1]:
        assert message.endswith("both given")


def test_predict_needs_a_checkpoint_and_an_input():
    assert refusal(["mode=predict", "predict.scale=2"]).startswith(
        "mode=predict needs ckpt_path=<checkpoint> and predict.input="
    )


@pytest.mark.parametrize(
    "overrides",
    [
        [*PREDICT, "predict.scale=2.5"],
        [*PREDICT, "predict.scale=[2,3]"],
        [*PREDICT, "predict.scale=0.5"],  # a downscale is an upsampling query too
        [*PREDICT, "predict.size=[480,640]", "predict.precision=32", "predict.device=cuda:1"],
        [*PREDICT, "predict.scale=2", "eval.scales=0"],  # predict reads no evaluation set
        ["eval.scales=[2,2.5,[2,3],4]", "eval.shave=0", "test.tile=48", "data.sample_q=null"],
        ["eval=paper", "data.root=/data"],
        ["experiment=table1_rdn_ipe_liif", "data.root=/data"],
        ["experiment=table3_u1_8_metasr", "data.root=/data", "debug=smoke"],
        ["experiment=table4_ipe_liif_l4", "debug=tiny", "data.val_first_k=null"],
    ],
)
def test_the_values_the_configs_use_pass(overrides):
    check_settings(composed(overrides))


@pytest.mark.parametrize("name", sorted(p.stem for p in (CONF_DIR / "experiment").glob("*.yaml")))
def test_every_experiment_passes_the_checks(name):
    check_values(composed([f"experiment={name}", "data.root=/data"]))


def test_a_scale_is_a_finite_number_at_least_the_minimum_or_a_pair_of_them():
    assert is_scale(1) and is_scale(2.5) and is_scale([2, 3]) and is_scale((1.0, 4))
    assert not any(is_scale(v) for v in (0.99, True, "2", [2], [2, 3, 4], [[2, 3]], None))
    assert is_scale(0.5, 0, above=True) and not is_scale(0, 0, above=True)


def test_check_settings_runs_the_value_checks_after_mode_and_seed():
    cfg = composed(["eval.scales=[0]"])
    with pytest.raises(SettingError, match=r"^eval set 'sample': eval\.scales=\[0\]"):
        check_settings(cfg)
    OmegaConf.update(cfg, "mode", "fly")
    with pytest.raises(SettingError, match="unknown mode='fly'"):
        check_settings(cfg)
