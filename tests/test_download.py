"""download_models.sh: fails fast offline, never leaves a half model folder, fetches only what the pipeline loads.

The script is run as a subprocess with this venv's bin dir first on PATH. Nothing reaches the real hub:
HF_ENDPOINT points either at a closed port or at a tiny in-process fake hub that speaks the few endpoints
`hf download` uses, so the real CLI's include patterns, staging, verification and rename are all exercised.
"""

import hashlib
import json
import os
import re
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "download_models.sh"
CLOSED_PORT = "http://127.0.0.1:9"
COMMIT = "0123456789abcdef0123456789abcdef01234567"

PIPELINE_FILES = [
    "model_index.json",
    "scheduler/scheduler_config.json",
    "tokenizer/vocab.json",
    "tokenizer/merges.txt",
    "text_encoder/config.json",
    "vae/config.json",
    "unet/config.json",
]
FP32_WEIGHTS = [
    "text_encoder/model.safetensors",
    "vae/diffusion_pytorch_model.safetensors",
    "unet/diffusion_pytorch_model.safetensors",
]
FP16_WEIGHTS = [name.replace(".safetensors", ".fp16.safetensors") for name in FP32_WEIGHTS]
# What a real SD-1.x repository also holds and the script must not fetch.
UNWANTED = [
    "safety_checker/config.json",
    "safety_checker/model.safetensors",
    "feature_extractor/preprocessor_config.json",
    "unet/diffusion_pytorch_model.bin",
    "unet/diffusion_flax_model.msgpack",
    "vae/diffusion_pytorch_model.onnx",
    "sd-v1-4.ckpt",
    "README.md",
]
# A ControlNet repository (lllyasviel/control_v11p_sd15_canny's layout) and a depth model's (Depth Anything V2's).
CONTROLNET_FILES = ["config.json", "diffusion_pytorch_model.safetensors"]
CONTROLNET_REPO = [
    *CONTROLNET_FILES,
    "diffusion_pytorch_model.fp16.safetensors",
    "diffusion_pytorch_model.bin",
    "diffusion_pytorch_model.fp16.bin",
    "images/input.png",
    "README.md",
]
DEPTH_FILES = ["config.json", "model.safetensors", "preprocessor_config.json"]
# A Stable Video Diffusion repository (stabilityai/stable-video-diffusion-img2vid-xt's layout).
SVD_FILES = [
    "model_index.json",
    "scheduler/scheduler_config.json",
    "feature_extractor/preprocessor_config.json",
    "image_encoder/config.json",
    "vae/config.json",
    "unet/config.json",
]
SVD_FP32 = [
    "image_encoder/model.safetensors",
    "vae/diffusion_pytorch_model.safetensors",
    "unet/diffusion_pytorch_model.safetensors",
]
SVD_FP16 = [name.replace(".safetensors", ".fp16.safetensors") for name in SVD_FP32]
SVD_UNWANTED = ["svd_xt.safetensors", "svd_xt_image_decoder.safetensors", "LICENSE.md", "README.md"]
SVD_INDEX = json.dumps(
    {"_class_name": "StableVideoDiffusionPipeline", "image_encoder": ["transformers", "CLIPVisionModelWithProjection"]}
).encode()
# The segmentation models' repositories (facebook/sam2.1-hiera-tiny's and CIDAS/clipseg-rd64-refined's layouts).
SAM2_FILES = ["config.json", "model.safetensors"]
CLIPSEG_FILES = [
    "config.json",
    "model.safetensors",
    "preprocessor_config.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "vocab.json",
    "merges.txt",
]
SEGMENT_REPOS = {
    "facebook/sam2.1-hiera-tiny": [
        *SAM2_FILES,
        "preprocessor_config.json",
        "video_preprocessor_config.json",
        "README.md",
    ],
    "CIDAS/clipseg-rd64-refined": [*CLIPSEG_FILES, "pytorch_model.bin", "README.md"],
}
CONTROL_REPOS = {
    "lllyasviel/control_v11p_sd15_canny": CONTROLNET_REPO,
    "lllyasviel/control_v11f1p_sd15_depth": CONTROLNET_REPO,
    "depth-anything/Depth-Anything-V2-Small-hf": [*DEPTH_FILES, "README.md", "depth.png"],
}


def _run(*args, endpoint=CLOSED_PORT, cwd=None, timeout=60, python=None):
    """Run the script like a user with the venv active; a run longer than ``timeout`` seconds fails the test."""
    env = {k: v for k, v in os.environ.items() if k not in {"HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_TOKEN"}}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["HF_ENDPOINT"] = endpoint
    env["HF_HUB_DISABLE_TELEMETRY"] = "1"
    if python is not None:
        env["PYTHON"] = str(python)
    return subprocess.run(
        ["bash", str(SCRIPT), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )


def _make_model(root: Path, names) -> Path:
    for name in names:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(f"{name} payload".encode())
    return root


def _files(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}


class _FakeHub(BaseHTTPRequestHandler):
    """Answers model info, file tree and file resolve requests for the repositories in `server.repos`."""

    def log_message(self, *args):
        """Record each request (tests count them) instead of printing it."""
        self.server.requests.append(f"{self.command} {self.path}")

    def _reply(self, status, body=b"", headers=None):
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def do_HEAD(self):
        self.do_GET()

    def do_GET(self):
        path = self.path.split("?")[0]
        for repo, files in self.server.repos.items():
            if path.startswith(f"/api/models/{repo}/tree/"):
                if repo in self.server.failing:
                    return self._reply(403)
                tree = [
                    {"type": "file", "path": name, "size": len(body), "oid": hashlib.sha1(body).hexdigest()}
                    for name, body in files.items()
                ]
                return self._reply(200, json.dumps(tree).encode())
            if path.startswith(f"/api/models/{repo}"):
                info = {"id": repo, "sha": COMMIT, "siblings": [{"rfilename": name} for name in files]}
                if repo in self.server.pipelines:  # what the hub reads from a diffusers repo's model_index.json
                    info["config"] = {"diffusers": {"_class_name": self.server.pipelines[repo]}}
                return self._reply(200, json.dumps(info).encode())
            if path.startswith(f"/{repo}/resolve/"):
                if repo in self.server.gated:
                    return self._reply(401, headers={"X-Error-Code": "GatedRepo"})
                name = path[len(f"/{repo}/resolve/") :].partition("/")[2]
                if name in files:
                    etag = f'"{hashlib.sha1(files[name]).hexdigest()}"'
                    return self._reply(200, files[name], {"ETag": etag, "X-Repo-Commit": COMMIT})
                return self._reply(404, headers={"X-Error-Code": "EntryNotFound"})
        return self._reply(404, headers={"X-Error-Code": "RepoNotFound"})


@pytest.fixture
def fake_hub():
    names = PIPELINE_FILES + FP32_WEIGHTS + FP16_WEIGHTS + UNWANTED
    svd = {name: f"svd {name}".encode() for name in SVD_FILES + SVD_FP32 + SVD_FP16 + SVD_UNWANTED}
    svd["model_index.json"] = SVD_INDEX
    server = ThreadingHTTPServer(("127.0.0.1", 0), _FakeHub)
    server.repos = {
        "org/tiny-sd": {name: f"{name} payload".encode() for name in names},
        "org/no-fp16": {name: b"x" for name in PIPELINE_FILES + FP32_WEIGHTS},
        "org/gated-sd": {name: b"x" for name in names},
        "org/failing-sd": {name: b"x" for name in names},
        **{repo: {name: f"{repo}/{name}".encode() for name in files} for repo, files in CONTROL_REPOS.items()},
        **{repo: {name: f"{repo}/{name}".encode() for name in files} for repo, files in SEGMENT_REPOS.items()},
        "org/clipseg-bin-only": {name: b"x" for name in CLIPSEG_FILES[2:] + ["config.json", "pytorch_model.bin"]},
        "stabilityai/stable-video-diffusion-img2vid-xt": svd,
        "org/animator": svd,  # an SVD repository whose id does not say so
        "org/svd-fp16-only": {name: b"x" for name in SVD_FILES + SVD_FP16},
    }
    server.pipelines = {
        "org/tiny-sd": "StableDiffusionPipeline",
        "stabilityai/stable-video-diffusion-img2vid-xt": "StableVideoDiffusionPipeline",
        "org/animator": "StableVideoDiffusionPipeline",
        "org/svd-fp16-only": "StableVideoDiffusionPipeline",
    }
    server.gated = {"org/gated-sd"}
    server.failing = {"org/failing-sd"}  # the hub breaks after the probe, before any file arrives
    server.requests = []
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def test_unreachable_hub_fails_fast_with_fix_and_leaves_nothing(tmp_path):
    proc = _run("--dir", str(tmp_path / "checkpoints" / "sd"), cwd=tmp_path, timeout=30)  # no minutes of retries
    assert proc.returncode != 0
    assert f"cannot reach the Hugging Face hub ({CLOSED_PORT})" in proc.stderr
    assert "HF_ENDPOINT" in proc.stderr and "copy a diffusers SD-1.x folder into" in proc.stderr
    assert proc.stdout == ""
    assert list(tmp_path.iterdir()) == []  # no model folder, no staging folder, not even checkpoints/


def test_unreachable_hub_keeps_an_earlier_partial_download_for_resume(tmp_path):
    partial = _make_model(tmp_path / ".partial-sd", ["unet/config.json"])
    proc = _run("--dir", str(tmp_path / "sd"))
    assert proc.returncode != 0
    assert not (tmp_path / "sd").exists()
    assert _files(partial) == {"unet/config.json"}


def test_help_documents_every_option():
    proc = _run("--help")
    assert proc.returncode == 0
    assert proc.stdout.startswith("Usage: download_models.sh [MODEL_ID]")
    for option in ("--dir DEST", "--fp16", "--revision REV", "--force", "--verify-only DIR", "HF_TOKEN", "HF_ENDPOINT"):
        assert option in proc.stdout
    # The rule that picks svd without --kind.
    assert "svd when MODEL_ID contains stable-video-diffusion" in proc.stdout
    assert "StableVideoDiffusionPipeline" in proc.stdout


def test_unknown_option_is_a_usage_error():
    proc = _run("--fp32")
    assert proc.returncode == 2
    assert "unknown option --fp32" in proc.stderr


def test_complete_marker_skips_the_download_without_network(tmp_path):
    dest = _make_model(tmp_path / "sd", ["model_index.json"])
    (dest / ".complete").write_text("model=org/tiny-sd\nweights=fp32\nrevision=default\n")
    proc = _run("org/tiny-sd", "--dir", str(dest))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(f"already complete: {dest}")
    # The marker records what the folder holds: asking for other weights is refused, not silently accepted.
    proc = _run("org/tiny-sd", "--fp16", "--dir", str(dest))
    assert proc.returncode == 2
    assert "--force" in proc.stderr


def test_verify_only_names_the_missing_or_empty_unet_weights(tmp_path):
    staged = _make_model(tmp_path / ".partial-sd", PIPELINE_FILES + FP32_WEIGHTS[:2])
    proc = _run("--verify-only", str(staged))
    assert proc.returncode == 2
    assert "missing: unet/diffusion_pytorch_model.safetensors." in proc.stderr
    assert "vae/" not in proc.stderr and "tokenizer/" not in proc.stderr

    (staged / FP32_WEIGHTS[2]).write_bytes(b"")  # an empty file is as bad as none
    proc = _run("--verify-only", str(staged))
    assert "missing: unet/diffusion_pytorch_model.safetensors." in proc.stderr

    (staged / FP32_WEIGHTS[2]).write_bytes(b"weights")
    proc = _run("--verify-only", str(staged))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == f"complete: {staged} (fp32 weights)\n"

    proc = _run("--verify-only", str(staged), "--fp16")
    assert proc.returncode == 2
    for name in FP16_WEIGHTS:
        assert name in proc.stderr


def test_verify_only_accepts_either_tokenizer_layout(tmp_path):
    """diffusers' save_pretrained writes tokenizer.json with current transformers; hub repos have vocab + merges."""
    names = [n for n in PIPELINE_FILES if not n.startswith("tokenizer/")] + FP32_WEIGHTS
    folder = _make_model(tmp_path / "sd", names)
    proc = _run("--verify-only", str(folder))
    assert proc.returncode == 2
    assert "missing: tokenizer/vocab.json + tokenizer/merges.txt (or tokenizer/tokenizer.json)." in proc.stderr

    _make_model(folder, ["tokenizer/tokenizer.json"])
    proc = _run("--verify-only", str(folder))
    assert proc.returncode == 0, proc.stderr


def test_hand_copied_complete_folder_is_accepted_without_network(tmp_path):
    dest = _make_model(tmp_path / "sd", PIPELINE_FILES + FP32_WEIGHTS)
    proc = _run("org/tiny-sd", "--dir", str(dest))
    assert proc.returncode == 0, proc.stderr
    assert "already complete" in proc.stdout
    assert (dest / ".complete").read_text().startswith("model=org/tiny-sd\nweights=fp32\n")


def test_download_fetches_only_pipeline_files_and_is_not_repeated(tmp_path, fake_hub):
    dest = tmp_path / "checkpoints" / "tiny-sd"
    proc = _run("org/tiny-sd", "--fp16", "--dir", str(dest), endpoint=f"http://127.0.0.1:{fake_hub.server_port}")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == f"downloaded org/tiny-sd (fp16 weights) into {dest}\n"
    assert _files(dest) == set(PIPELINE_FILES + FP16_WEIGHTS) | {".complete"}
    assert (dest / "unet/diffusion_pytorch_model.fp16.safetensors").read_bytes() == (
        b"unet/diffusion_pytorch_model.fp16.safetensors payload"
    )
    assert sorted(p.name for p in dest.parent.iterdir()) == ["tiny-sd"]  # staging renamed away

    seen = len(fake_hub.requests)
    proc = _run("org/tiny-sd", "--fp16", "--dir", str(dest), endpoint=f"http://127.0.0.1:{fake_hub.server_port}")
    assert proc.returncode == 0
    assert proc.stdout.startswith("already complete")
    assert len(fake_hub.requests) == seen

    proc = _run("org/tiny-sd", "--force", "--dir", str(dest), endpoint=f"http://127.0.0.1:{fake_hub.server_port}")
    assert proc.returncode == 0, proc.stderr
    assert _files(dest) == set(PIPELINE_FILES + FP32_WEIGHTS) | {".complete"}
    assert sorted(p.name for p in dest.parent.iterdir()) == ["tiny-sd"]


def test_download_completes_a_partial_staging_folder(tmp_path, fake_hub):
    _make_model(tmp_path / ".partial-tiny-sd", ["model_index.json", "unet/config.json"])
    dest = tmp_path / "tiny-sd"
    proc = _run("org/tiny-sd", "--dir", str(dest), endpoint=f"http://127.0.0.1:{fake_hub.server_port}")
    assert proc.returncode == 0, proc.stderr
    assert _files(dest) == set(PIPELINE_FILES + FP32_WEIGHTS) | {".complete"}
    assert not (tmp_path / ".partial-tiny-sd").exists()


def test_failed_download_says_how_to_resume_and_removes_its_empty_staging_folder(tmp_path, fake_hub):
    dest = tmp_path / "checkpoints" / "sd"
    proc = _run("org/failing-sd", "--dir", str(dest), endpoint=f"http://127.0.0.1:{fake_hub.server_port}")
    assert proc.returncode == 2
    assert sum("/tree/" in request for request in fake_hub.requests) == 1  # the refused listing is not retried
    assert "downloading org/failing-sd failed" in proc.stderr and "Rerun the same command to resume" in proc.stderr
    assert list(dest.parent.iterdir()) == []


def test_gated_model_asks_for_license_and_token(tmp_path, fake_hub):
    proc = _run("org/gated-sd", "--dir", str(tmp_path / "sd"), endpoint=f"http://127.0.0.1:{fake_hub.server_port}")
    assert proc.returncode == 2
    assert "accept the model's license" in proc.stderr and "HF_TOKEN" in proc.stderr
    assert list(tmp_path.iterdir()) == []


def test_repo_without_fp16_weights_is_refused_before_downloading(tmp_path, fake_hub):
    proc = _run(
        "org/no-fp16", "--fp16", "--dir", str(tmp_path / "sd"), endpoint=f"http://127.0.0.1:{fake_hub.server_port}"
    )
    assert proc.returncode == 2
    assert "unet/diffusion_pytorch_model.fp16.safetensors" in proc.stderr and "Drop --fp16" in proc.stderr
    assert sum("/resolve/" in request for request in fake_hub.requests) == 1  # the probe's HEAD, no download
    assert list(tmp_path.iterdir()) == []


def test_missing_huggingface_hub_names_the_venv_the_readme_makes(tmp_path):
    """The fix must point at the environment the README's quick start creates."""
    venv = re.search(r"python3 -m venv (\S+)", (SCRIPT.parent / "README.md").read_text())[1]
    python = tmp_path / "python"  # a Python without huggingface_hub
    python.write_text("#!/bin/sh\nexit 1\n")
    python.chmod(0o755)
    proc = _run("--dir", str(tmp_path / "sd"), python=python)
    assert proc.returncode == 2
    assert f"{python} cannot import huggingface_hub" in proc.stderr
    assert f". {SCRIPT.parent / venv}/bin/activate" in proc.stderr
    assert f"PYTHON={SCRIPT.parent / venv}/bin/python" in proc.stderr
    assert not (tmp_path / "sd").exists()


def test_control_fetches_the_controlnets_and_the_depth_model_with_only_their_loaded_files(tmp_path, fake_hub):
    endpoint = f"http://127.0.0.1:{fake_hub.server_port}"
    proc = _run("--control", "--fp16", "--dir", str(tmp_path / "checkpoints"), endpoint=endpoint)
    assert proc.returncode == 0, proc.stderr
    folders = tmp_path / "checkpoints"
    assert sorted(p.name for p in folders.iterdir()) == sorted(repo.split("/")[1] for repo in CONTROL_REPOS)
    fp16 = {"config.json", "diffusion_pytorch_model.fp16.safetensors", ".complete"}
    assert _files(folders / "control_v11p_sd15_canny") == fp16
    assert _files(folders / "control_v11f1p_sd15_depth") == fp16
    assert _files(folders / "Depth-Anything-V2-Small-hf") == {*DEPTH_FILES, ".complete"}  # one precision
    assert (folders / "Depth-Anything-V2-Small-hf" / "model.safetensors").read_bytes() == (
        b"depth-anything/Depth-Anything-V2-Small-hf/model.safetensors"
    )
    seen = len(fake_hub.requests)
    proc = _run("--control", "--fp16", "--dir", str(folders), endpoint=endpoint)
    assert proc.returncode == 0 and proc.stdout.count("already complete") == 3
    assert len(fake_hub.requests) == seen


def test_one_controlnet_by_id_and_the_checks_of_each_kind(tmp_path, fake_hub):
    endpoint = f"http://127.0.0.1:{fake_hub.server_port}"
    dest = tmp_path / "canny"
    proc = _run("lllyasviel/control_v11p_sd15_canny", "--kind", "controlnet", "--dir", str(dest), endpoint=endpoint)
    assert proc.returncode == 0, proc.stderr
    assert _files(dest) == {*CONTROLNET_FILES, ".complete"}

    folder = _make_model(tmp_path / "depth", ["config.json", "model.safetensors"])
    proc = _run("--verify-only", str(folder), "--kind", "depth")
    assert proc.returncode == 2 and "missing: preprocessor_config.json." in proc.stderr
    proc = _run("depth-anything/Depth-Anything-V2-Small-hf", "--kind", "depth", "--fp16")
    assert proc.returncode == 2 and "drop --fp16" in proc.stderr
    proc = _run("--kind", "controlnet")
    assert proc.returncode == 2 and "needs a MODEL_ID" in proc.stderr
    proc = _run("org/tiny-sd", "--kind", "controlnet", "--dir", str(tmp_path / "sd"), endpoint=endpoint)
    assert proc.returncode == 2 and "so it is not a diffusers ControlNet" in proc.stderr  # no config.json at its root
    assert not (tmp_path / "sd").exists()


def test_verify_only_checks_an_svd_folder_for_either_precision(tmp_path):
    fp32 = _make_model(tmp_path / "svd", SVD_FILES + SVD_FP32)
    proc = _run("--verify-only", str(fp32), "--kind", "svd")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == f"complete: {fp32} (fp32 weights)\n"
    proc = _run("--verify-only", str(fp32), "--kind", "sd")  # the same folder is not an SD-1.x one
    assert proc.returncode == 2 and "text_encoder/config.json" in proc.stderr

    (fp32 / "image_encoder/model.safetensors").unlink()
    (fp32 / "feature_extractor/preprocessor_config.json").write_bytes(b"")  # empty is as bad as none
    proc = _run("--verify-only", str(fp32), "--kind", "svd")
    assert proc.returncode == 2
    assert "missing: feature_extractor/preprocessor_config.json, image_encoder/model.safetensors." in proc.stderr

    fp16 = _make_model(tmp_path / "svd-fp16", SVD_FILES + SVD_FP16)
    proc = _run("--verify-only", str(fp16), "--kind", "svd", "--fp16")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == f"complete: {fp16} (fp16 weights)\n"
    (fp16 / "unet/diffusion_pytorch_model.fp16.safetensors").unlink()
    proc = _run("--verify-only", str(fp16), "--kind", "svd", "--fp16")
    assert proc.returncode == 2 and "missing: unet/diffusion_pytorch_model.fp16.safetensors." in proc.stderr
    proc = _run("--verify-only", str(fp16), "--kind", "svd")  # fp16 files do not stand in for the fp32 ones
    assert proc.returncode == 2
    assert "missing: image_encoder/model.safetensors, vae/diffusion_pytorch_model.safetensors" in proc.stderr


def test_verify_only_reads_the_kind_from_the_folders_model_index(tmp_path):
    folder = _make_model(tmp_path / "svd", SVD_FILES + SVD_FP32)
    proc = _run("--verify-only", str(folder))  # a model_index.json without the SVD pipeline: checked as sd
    assert proc.returncode == 2 and "text_encoder/config.json" in proc.stderr
    (folder / "model_index.json").write_bytes(SVD_INDEX)
    proc = _run("--verify-only", str(folder))
    assert proc.returncode == 0, proc.stderr


def test_svd_by_its_id_fetches_only_what_the_pipeline_loads(tmp_path, fake_hub):
    endpoint = f"http://127.0.0.1:{fake_hub.server_port}"
    dest = tmp_path / "checkpoints" / "stable-video-diffusion-img2vid-xt"
    proc = _run("stabilityai/stable-video-diffusion-img2vid-xt", "--fp16", "--dir", str(dest), endpoint=endpoint)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == f"downloaded stabilityai/stable-video-diffusion-img2vid-xt (fp16 weights) into {dest}\n"
    assert _files(dest) == set(SVD_FILES + SVD_FP16) | {".complete"}
    assert (dest / "unet/diffusion_pytorch_model.fp16.safetensors").read_bytes() == (
        b"svd unet/diffusion_pytorch_model.fp16.safetensors"
    )
    assert sorted(p.name for p in dest.parent.iterdir()) == [dest.name]  # staging renamed away

    proc = _run("--verify-only", str(dest), "--fp16")  # its model_index.json says svd
    assert proc.returncode == 0, proc.stderr
    seen = len(fake_hub.requests)
    proc = _run("stabilityai/stable-video-diffusion-img2vid-xt", "--fp16", "--dir", str(dest), endpoint=endpoint)
    assert proc.returncode == 0 and proc.stdout.startswith("already complete")
    assert len(fake_hub.requests) == seen


def test_svd_kind_comes_from_the_hub_when_the_id_does_not_say(tmp_path, fake_hub):
    endpoint = f"http://127.0.0.1:{fake_hub.server_port}"
    proc = _run("org/animator", "--dir", str(tmp_path / "animator"), endpoint=endpoint)
    assert proc.returncode == 0, proc.stderr
    assert _files(tmp_path / "animator") == set(SVD_FILES + SVD_FP32) | {".complete"}

    proc = _run("org/animator", "--kind", "sd", "--dir", str(tmp_path / "sd"), endpoint=endpoint)
    assert proc.returncode == 2
    assert "org/animator is a StableVideoDiffusionPipeline (image to video), not an SD-1.x model" in proc.stderr
    assert "--kind svd" in proc.stderr
    proc = _run("org/tiny-sd", "--kind", "svd", "--dir", str(tmp_path / "sd"), endpoint=endpoint)
    assert proc.returncode == 2
    assert "org/tiny-sd is a StableDiffusionPipeline, not a StableVideoDiffusionPipeline" in proc.stderr
    proc = _run("org/svd-fp16-only", "--dir", str(tmp_path / "sd"), endpoint=endpoint)
    assert proc.returncode == 2
    assert "missing: image_encoder/model.safetensors" in proc.stderr and "Try --fp16" in proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["animator"]  # nothing written by the refused ones
    proc = _run("--kind", "svd")
    assert proc.returncode == 2 and "e.g. stabilityai/stable-video-diffusion-img2vid-xt" in proc.stderr


def test_segment_fetches_sam2_and_clipseg_with_only_their_loaded_files(tmp_path, fake_hub):
    endpoint = f"http://127.0.0.1:{fake_hub.server_port}"
    folders = tmp_path / "checkpoints"
    proc = _run("--segment", "--dir", str(folders), endpoint=endpoint)
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in folders.iterdir()) == ["clipseg-rd64-refined", "sam2.1-hiera-tiny"]
    assert _files(folders / "sam2.1-hiera-tiny") == {*SAM2_FILES, ".complete"}  # no processor configs: unused
    assert _files(folders / "clipseg-rd64-refined") == {*CLIPSEG_FILES, ".complete"}  # no pytorch_model.bin
    assert (folders / "sam2.1-hiera-tiny" / "model.safetensors").read_bytes() == (
        b"facebook/sam2.1-hiera-tiny/model.safetensors"
    )
    seen = len(fake_hub.requests)
    proc = _run("--segment", "--dir", str(folders), endpoint=endpoint)
    assert proc.returncode == 0 and proc.stdout.count("already complete") == 2
    assert len(fake_hub.requests) == seen

    for extra, message in [("--fp16", "pass only --dir or --force"), ("--control", "--control or --segment")]:
        proc = _run("--segment", extra, "--dir", str(tmp_path / "other"), endpoint=endpoint)
        assert proc.returncode == 2 and message in proc.stderr
    proc = _run("org/clipseg-bin-only", "--kind", "clipseg", "--dir", str(tmp_path / "bin"), endpoint=endpoint)
    assert proc.returncode == 2 and "missing: model.safetensors" in proc.stderr
    assert "Pick another --revision" in proc.stderr and "--fp16" not in proc.stderr  # one precision
    assert not (tmp_path / "other").exists() and not (tmp_path / "bin").exists()


def test_verify_only_checks_the_segmentation_kinds(tmp_path):
    folder = _make_model(tmp_path / "clipseg", ["config.json", "model.safetensors", "preprocessor_config.json"])
    proc = _run("--verify-only", str(folder), "--kind", "clipseg")
    assert proc.returncode == 2
    assert "missing: tokenizer_config.json, vocab.json + merges.txt (or tokenizer.json)." in proc.stderr
    _make_model(folder, ["tokenizer_config.json", "tokenizer.json"])  # the layout save_pretrained writes
    proc = _run("--verify-only", str(folder), "--kind", "clipseg")
    assert proc.returncode == 0, proc.stderr

    sam2 = _make_model(tmp_path / "sam2", ["config.json"])
    proc = _run("--verify-only", str(sam2), "--kind", "sam2-video")
    assert proc.returncode == 2 and "missing: model.safetensors." in proc.stderr
    proc = _run("facebook/sam2.1-hiera-tiny", "--kind", "sam2-video", "--fp16")
    assert proc.returncode == 2 and "drop --fp16" in proc.stderr
    proc = _run("--kind", "clipseg")
    assert proc.returncode == 2 and "e.g. CIDAS/clipseg-rd64-refined (or use --segment)" in proc.stderr
