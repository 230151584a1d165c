"""A domain package installs and works alone: paperzoo-core + paperzoo-vision in an empty virtual environment."""

import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]

SCRIPT = textwrap.dedent(
    """
    import importlib.util, json
    import lightning as L
    import paperzoo.core, paperzoo.vision
    from paperzoo.vision import ImageClassifier, MNIST5kDataModule, create_model

    others = {d: importlib.util.find_spec(f"paperzoo.{d}") is not None
              for d in ("sequence", "generative", "graph", "llm")}
    model = ImageClassifier(create_model("resnet20", num_classes=10, in_chans=1))
    data = MNIST5kDataModule(batch_size=16)
    trainer = L.Trainer(max_steps=1, limit_val_batches=0, logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, accelerator="cpu")
    trainer.fit(model, datamodule=data)
    print(json.dumps({"others": others, "step": trainer.global_step,
                      "core": paperzoo.core.__file__, "vision": paperzoo.vision.__file__}))
    """
)


@pytest.mark.timeout(900)
def test_core_and_vision_wheels_install_and_train_alone(tmp_path):
    uv = shutil.which("uv")
    if uv is None:
        pytest.skip("uv is not installed (the README's set-up installs it)")
    dist = tmp_path / "dist"
    for package in ("core", "vision"):
        subprocess.run(
            [uv, "build", "--wheel", "--quiet", "--out-dir", str(dist), str(ROOT / "packages" / package)],
            check=True,
            timeout=300,
        )
    wheels = sorted(dist.glob("*.whl"))
    assert [w.name.split("-")[0] for w in wheels] == ["paperzoo_core", "paperzoo_vision"]

    venv = tmp_path / "venv"
    subprocess.run([uv, "venv", "--quiet", "--python", sys.executable, str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    subprocess.run(
        [uv, "pip", "install", "--quiet", "--python", str(python), *map(str, wheels)], check=True, timeout=600
    )

    proc = subprocess.run([str(python), "-c", SCRIPT], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    import json

    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["step"] == 1
    assert result["others"] == {"sequence": False, "generative": False, "graph": False, "llm": False}
    assert str(venv) in result["core"] and str(venv) in result["vision"], "imported from the new environment"
