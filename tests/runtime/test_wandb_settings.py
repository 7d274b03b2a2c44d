"""W&B talks to the server the user's settings name (a self-hosted one too), and its run config
is flat: one column per setting, named as the override that sets it."""

from __future__ import annotations

import socket

import pytest

from ipe_lightning.runtime import loggers


@pytest.fixture
def listening_port():
    """A TCP port on localhost that accepts connections (a stand-in for a W&B server)."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        yield server.getsockname()[1]


@pytest.fixture
def no_wandb_settings(monkeypatch, tmp_path):
    for name in ("WANDB_BASE_URL", "WANDB_API_KEY", "WANDB_MODE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("WANDB_CONFIG_DIR", str(tmp_path / "wandb_config"))
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_a_self_hosted_server_in_wandb_base_url_is_the_one_checked(
    no_wandb_settings, monkeypatch, listening_port
):
    monkeypatch.setenv("WANDB_BASE_URL", f"http://127.0.0.1:{listening_port}")
    monkeypatch.setenv("WANDB_API_KEY", "k" * 40)
    assert loggers.wandb_reachable()
    assert loggers.wandb_should_run_offline() is None


def test_the_server_and_its_login_come_from_wandbs_settings_file(no_wandb_settings, listening_port):
    url = f"http://127.0.0.1:{listening_port}"
    settings = no_wandb_settings / "wandb_config" / "settings"
    settings.parent.mkdir()
    settings.write_text(f"[default]\nbase_url = {url}/\n")
    assert loggers.wandb_base_url() == url
    assert loggers.wandb_should_run_offline().startswith(f"no W&B credentials for {url}")
    netrc = no_wandb_settings / ".netrc"
    netrc.write_text("machine 127.0.0.1\n  login user\n  password secret\n")
    netrc.chmod(0o600)
    assert loggers.wandb_should_run_offline() is None


def test_the_working_directorys_settings_win_and_the_public_server_is_the_default(
    no_wandb_settings,
):
    assert loggers.wandb_base_url() == loggers.DEFAULT_BASE_URL
    (no_wandb_settings / "wandb").mkdir()
    (no_wandb_settings / "wandb" / "settings").write_text("[default]\nbase_url = https://a.b\n")
    assert loggers.wandb_base_url() == "https://a.b"


@pytest.mark.parametrize(
    "url, address",
    [
        ("https://wandb.example.org:8443/", ("wandb.example.org", 8443)),
        ("http://10.0.0.5", ("10.0.0.5", 80)),
        ("https://api.wandb.ai", ("api.wandb.ai", 443)),
    ],
)
def test_the_port_is_the_urls_or_its_schemes(url, address):
    assert loggers.server_address(url) == address


def test_the_job_config_reaches_wandb_flat(tmp_path, monkeypatch):
    class Config:
        def __init__(self) -> None:
            self.values: dict = {}

        def update(self, values, allow_val_change=False):
            self.values.update(values)

    run = type("Run", (), {"config": Config()})()
    monkeypatch.setattr(loggers.FlatConfigWandbLogger, "experiment", property(lambda self: run))
    logger = loggers.FlatConfigWandbLogger(save_dir=str(tmp_path), offline=True)
    job = {"model": {"net": {"encoding": {"bandwidth": 4}}}, "eval": {"scales": [2, 3]}, "seed": 0}
    logger.log_hyperparams({"config": job})
    assert run.config.values == {
        "model.net.encoding.bandwidth": 4,
        "eval.scales": [2, 3],
        "seed": 0,
    }
    assert loggers.is_wandb(logger)
