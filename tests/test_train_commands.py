"""``qstore train-keras`` and ``qstore train-torch`` share one option set (from qstore-core) and
add their own; bad values are refused by the parser."""

from __future__ import annotations

import pytest

from qstore.core.cli import build_parser

SHARED = [
    "--data-dir", "/data", "--n-train", "100", "--n-test", "50", "--epochs", "2",
    "--batch-size", "16", "--learning-rate", "0.01", "--validation-split", "0.1",
    "--out", "/runs", "--seed", "7", "--progress",
]  # fmt: skip


@pytest.mark.parametrize(
    ("command", "extra", "attr", "value"),
    [
        ("train-torch", ["--checkpoint-dir", "/ck", "--resume"], "checkpoint_dir", "/ck"),
        ("train-keras", ["--backup-dir", "/bk", "--communication", "ring"], "backup_dir", "/bk"),
    ],
)
def test_both_training_commands_take_the_shared_options(
    command: str, extra: list[str], attr: str, value: str
) -> None:
    pytest.importorskip("qstore.torch" if command == "train-torch" else "qstore.tf")
    args = build_parser().parse_args([command, *SHARED, *extra])
    assert (args.data_dir, args.n_train, args.n_test, args.epochs) == ("/data", 100, 50, 2)
    assert (args.batch_size, args.learning_rate, args.validation_split) == (16, 0.01, 0.1)
    assert (args.out, args.seed, args.progress) == ("/runs", 7, True)
    assert getattr(args, attr) == value
    defaults = build_parser().parse_args([command])
    assert (defaults.epochs, defaults.batch_size, defaults.learning_rate) == (3, 32, 1e-3)


@pytest.mark.parametrize("command", ["train-torch", "train-keras"])
def test_a_bad_epoch_count_is_refused(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("qstore.torch" if command == "train-torch" else "qstore.tf")
    with pytest.raises(SystemExit):
        build_parser().parse_args([command, "--epochs", "0"])
    assert "--epochs" in capsys.readouterr().err
