#!/usr/bin/env bash
# Fetch a Stable Diffusion 1.x model from the Hugging Face hub into checkpoints/<name> (diffusers layout,
# safetensors only, only the parts the VidSynth pipeline loads); with --kind, a Stable Video Diffusion
# (image to video), ControlNet, depth or segmentation model; with --control, the ControlNets and the depth model
# of structure guidance; with --segment, the two segmentation models of region edits.
#
# Why this shape:
#   - The hub is probed first with short timeouts, so a machine without network fails in seconds with one
#     message instead of minutes of retries, before anything is written.
#   - `hf download` writes into a staging folder next to the destination; it resumes partial files there, and
#     the folder is renamed to the destination only once every needed file is verified, so a model folder
#     without its `.complete` marker is never one this script left half-done.
#   - The `.complete` marker is checked before any network access: a finished download is never repeated.
set -euo pipefail

readonly DEFAULT_MODEL="CompVis/stable-diffusion-v1-4"
# What --control fetches: the defaults of inference.py's --control canny / --control depth.
readonly CONTROL_MODELS=(
    "controlnet lllyasviel/control_v11p_sd15_canny"
    "controlnet lllyasviel/control_v11f1p_sd15_depth"
    "depth depth-anything/Depth-Anything-V2-Small-hf"
)
# What --segment fetches: the defaults of inference.py's --segment-model and --segment-text-model (kind, id and,
# where the default branch has no safetensors, the commit that added them).
readonly SEGMENT_MODELS=(
    "sam2-video facebook/sam2.1-hiera-tiny"
    "clipseg CIDAS/clipseg-rd64-refined 325a839908143a34b409ae6f2910fa015ea390e6"
)
readonly PROBE_TIMEOUT_S=10
readonly PROG="${0##*/}"
PYTHON="${PYTHON:-python3}"
SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
readonly SCRIPT_DIR

usage() {
    cat <<EOF
Usage: $PROG [MODEL_ID] [--kind KIND] [--dir DEST] [--fp16] [--revision REV] [--force]
       $PROG --control [--dir FOLDER] [--fp16] [--force]
       $PROG --segment [--dir FOLDER] [--force]
       $PROG --verify-only DIR [--kind KIND] [--fp16]

Fetch a Stable Diffusion 1.x model (diffusers layout, safetensors only) from the Hugging Face hub, a Stable
Video Diffusion model for image to video (python -m vidsynth.animate), a ControlNet or depth-estimation
model for structure guidance (inference.py --control), or a segmentation model for region edits
(inference.py --segment).

Arguments and options:
  MODEL_ID           hub id of a diffusers SD-1.x model (default: $DEFAULT_MODEL),
                     e.g. stable-diffusion-v1-5/stable-diffusion-v1-5 or a DreamBooth model, or of a model of
                     another --kind
  --kind KIND        what MODEL_ID is: sd (an SD-1.x model), svd (a diffusers Stable Video Diffusion model,
                     e.g. stabilityai/stable-video-diffusion-img2vid-xt), controlnet (a diffusers ControlNet,
                     e.g. lllyasviel/control_v11p_sd15_canny), depth (a transformers depth-estimation model),
                     sam2-video (a transformers SAM 2 video model, e.g. facebook/sam2.1-hiera-tiny) or clipseg
                     (a transformers CLIPSeg model, e.g. CIDAS/clipseg-rd64-refined).
                     Without --kind: svd when MODEL_ID contains stable-video-diffusion, when DEST's (or with
                     --verify-only DIR's) model_index.json names StableVideoDiffusionPipeline, or when the
                     hub says the repository's model_index.json does; sd otherwise
  --control          fetch what inference.py --control uses by default, each into checkpoints/<name> (where
                     inference.py looks first; with --dir, into FOLDER/<name>): the ControlNets
                     lllyasviel/control_v11p_sd15_canny and lllyasviel/control_v11f1p_sd15_depth (--fp16
                     applies to them) and the depth model depth-anything/Depth-Anything-V2-Small-hf
  --segment          fetch what inference.py --segment uses by default, each into checkpoints/<name> (with
                     --dir, into FOLDER/<name>): the SAM 2 video model facebook/sam2.1-hiera-tiny, which follows
                     the region through the clip, and CLIPSeg CIDAS/clipseg-rd64-refined, which finds a text on
                     the first frame
  --dir DEST         model folder to fill (default: checkpoints/<last part of MODEL_ID> in the repository)
  --fp16             fetch the *.fp16.safetensors weights instead of the full-precision ones (sd, svd,
                     controlnet)
  --revision REV     branch, tag or commit to fetch (default: the repository's default branch)
  --force            download again even if DEST is already complete
  --verify-only DIR  only check that DIR holds every file the pipeline needs (no network), then exit
  -h, --help         show this help and exit

Only the files that are loaded are fetched. For sd: model_index.json, scheduler/, tokenizer/, text_encoder/,
vae/ and unet/ (no safety checker, feature extractor, .ckpt, .bin, flax or onnx files); for svd:
model_index.json, scheduler/, feature_extractor/preprocessor_config.json, image_encoder/, vae/ and unet/ (no
single-file svd*.safetensors checkpoints); for controlnet: config.json and diffusion_pytorch_model.safetensors;
for depth: config.json, model.safetensors and preprocessor_config.json; for sam2-video: config.json and
model.safetensors (its inputs are prepared without its processor); for clipseg: config.json,
model.safetensors, preprocessor_config.json and the tokenizer files. Files are staged in
<parent of DEST>/.partial-<name>/, where an interrupted download resumes when the same command is run again,
and moved to DEST once verified; DEST/.complete marks a finished download, which later runs report as already
complete without network.

Environment:
  HF_TOKEN     access token for gated or private models (accept the model's license on the hub first)
  HF_ENDPOINT  hub or mirror to download from (default: https://huggingface.co)
  PYTHON       Python with huggingface_hub installed (default: python3 of the active environment);
               the Hugging Face CLI is run from it as '\$PYTHON -m huggingface_hub.cli.hf download'

Exit status: 0 when the model folder is complete, 2 on any error (the message names the problem and the fix).
EOF
}

die() {
    printf '%s: %s\n' "$PROG" "$*" >&2
    exit 2
}

log() {
    printf '%s: %s\n' "$PROG" "$*" >&2
}

# One Python program with two jobs, so the list of needed files lives in one place:
#   verify DIR SUFFIX KIND                           print the needed files missing or empty in DIR, one per line;
#                                                    exit 3 if any
#   probe REPO REVISION SUFFIX DEST SECS KIND GIVEN  check the hub is reachable, the repo readable and complete, and
#                                                    print the kind (sd becomes svd for a Stable Video Diffusion
#                                                    repository unless GIVEN is 1); exit 2 if not
# SUFFIX is "" for the full-precision weights, ".fp16" for the fp16 variant; KIND is sd, svd, controlnet, depth,
# sam2-video or clipseg.
read -r -d '' HELPER_PY <<'PY' || true
import os
import sys

# What each kind of model is, for messages, and the file that marks its layout.
KINDS = {
    "sd": ("a diffusers SD-1.x", "model_index.json"),
    "svd": ("a diffusers Stable Video Diffusion", "model_index.json"),
    "controlnet": ("a diffusers ControlNet", "config.json"),
    "depth": ("a transformers depth-estimation model", "config.json"),
    "sam2-video": ("a transformers SAM 2 video model", "config.json"),
    "clipseg": ("a transformers CLIPSeg model", "config.json"),
}


def missing_files(present, suffix, kind):
    """Needed files that `present(name)` rejects: what VidSynth's from_pretrained calls read for this kind."""
    if kind == "controlnet":  # ControlNetModel.from_pretrained
        required = ["config.json", f"diffusion_pytorch_model{suffix}.safetensors"]
        return [name for name in required if not present(name)]
    if kind == "depth":  # AutoModelForDepthEstimation and AutoImageProcessor.from_pretrained
        required = ["config.json", "model.safetensors", "preprocessor_config.json"]
        return [name for name in required if not present(name)]
    if kind == "sam2-video":  # Sam2VideoModel.from_pretrained
        return [name for name in ["config.json", "model.safetensors"] if not present(name)]
    if kind == "clipseg":  # CLIPSegForImageSegmentation, AutoImageProcessor and AutoTokenizer.from_pretrained
        required = ["config.json", "model.safetensors", "preprocessor_config.json", "tokenizer_config.json"]
        missing = [name for name in required if not present(name)]
        if not ((present("vocab.json") and present("merges.txt")) or present("tokenizer.json")):
            missing.append("vocab.json + merges.txt (or tokenizer.json)")
        return missing
    if kind == "svd":  # StableVideoDiffusionPipeline.from_pretrained
        required = [
            "model_index.json",
            "scheduler/scheduler_config.json",
            "feature_extractor/preprocessor_config.json",
            "image_encoder/config.json",
            f"image_encoder/model{suffix}.safetensors",
            "vae/config.json",
            f"vae/diffusion_pytorch_model{suffix}.safetensors",
            "unet/config.json",
            f"unet/diffusion_pytorch_model{suffix}.safetensors",
        ]
        return [name for name in required if not present(name)]
    # StableDiffusionPipeline.from_pretrained for SD-1.x
    required = [
        "model_index.json",
        "scheduler/scheduler_config.json",
        "text_encoder/config.json",
        f"text_encoder/model{suffix}.safetensors",
        "vae/config.json",
        f"vae/diffusion_pytorch_model{suffix}.safetensors",
        "unet/config.json",
        f"unet/diffusion_pytorch_model{suffix}.safetensors",
    ]
    missing = [name for name in required if not present(name)]
    bpe = ("tokenizer/vocab.json", "tokenizer/merges.txt")
    if not (all(present(name) for name in bpe) or present("tokenizer/tokenizer.json")):
        missing.append("tokenizer/vocab.json + tokenizer/merges.txt (or tokenizer/tokenizer.json)")
    return missing


def verify(root, suffix, kind):
    """Exit 3 with the missing names on stdout when `root` lacks a needed file or has an empty one."""

    def present(name):
        path = os.path.join(root, name)
        return os.path.isfile(path) and os.path.getsize(path) > 0

    missing = missing_files(present, suffix, kind)
    if missing:
        print("\n".join(missing))
        sys.exit(3)


def probe(repo, revision, suffix, dest, timeout, kind, kind_given):
    """One short request or two, so that no network, no access or a wrong id fail in seconds with one message.

    Returns (problem, kind): the hub's listing names the pipeline class of a diffusers repository's
    model_index.json, so a Stable Video Diffusion id asked for as the default sd becomes svd at no extra cost.
    """
    from huggingface_hub import HfApi, constants, get_hf_file_metadata, hf_hub_url
    from huggingface_hub.errors import (
        GatedRepoError,
        HfHubHTTPError,
        OfflineModeIsEnabled,
        RemoteEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    endpoint = constants.ENDPOINT
    license_fix = f"accept the model's license at {endpoint}/{repo} and set HF_TOKEN to a token of that account"
    what, marker = KINDS[kind]
    try:
        # A HEAD on the layout's first file is what answers 401/403 for gated repos; the listing below does not.
        get_hf_file_metadata(hf_hub_url(repo, marker, revision=revision), timeout=timeout)
        info = HfApi().model_info(repo, revision=revision, timeout=timeout)
    except OfflineModeIsEnabled:
        return (
            f"HF_HUB_OFFLINE is set, so {repo} cannot be downloaded. "
            f"Unset HF_HUB_OFFLINE, or copy {what} folder into {dest}."
        ), kind
    except GatedRepoError:
        return f"{repo} is gated and this account may not download it. To fix: {license_fix}.", kind
    except RepositoryNotFoundError:
        return (
            f"{repo} was not found on {endpoint}, or it is private or gated. "
            f"Check the model id; for a gated or private model {license_fix}."
        ), kind
    except RevisionNotFoundError:
        return f"{repo} has no revision {revision!r}. Pass an existing branch, tag or commit to --revision.", kind
    except RemoteEntryNotFoundError:
        if marker == "model_index.json":
            return f"{repo} has no model_index.json, so it is not a diffusers model. Pick {what} model id.", kind
        return f"{repo} has no {marker}, so it is not {what}. Check the model id and --kind.", kind
    except HfHubHTTPError as err:
        status = err.response.status_code if err.response is not None else None
        if status in (401, 403):
            return (
                f"the hub refused access to {repo} (HTTP {status}). Set HF_TOKEN to a valid token and {license_fix}."
            ), kind
        return (
            f"the Hugging Face hub ({endpoint}) answered with an error: {err}. Retry later, or check HF_ENDPOINT."
        ), kind
    except Exception as err:  # connection refused, DNS failure, timeout, proxy error: all mean "no usable hub"
        return (
            f"cannot reach the Hugging Face hub ({endpoint}): {type(err).__name__}: {err}. "
            f"Check your network and HF_ENDPOINT, or copy {what} folder into {dest}."
        ), kind
    pipeline = ((info.config or {}).get("diffusers") or {}).get("_class_name")
    if marker == "model_index.json" and pipeline:
        is_svd = pipeline == "StableVideoDiffusionPipeline"
        if is_svd and kind == "sd" and not kind_given:
            kind, what = "svd", KINDS["svd"][0]
        elif is_svd and kind == "sd":
            return f"{repo} is a {pipeline} (image to video), not an SD-1.x model. Pass --kind svd.", kind
        elif kind == "svd" and not is_svd:
            return (
                f"{repo} is a {pipeline}, not a StableVideoDiffusionPipeline (image to video). "
                "Check the model id and --kind."
            ), kind
    missing = missing_files({entry.rfilename for entry in info.siblings or []}.__contains__, suffix, kind)
    if missing:
        hint = "Drop --fp16, pick" if suffix else "Try --fp16, pick" if kind in ("sd", "svd", "controlnet") else "Pick"
        return (
            f"{repo} does not ship every needed file as safetensors (missing: {', '.join(missing)}). "
            f"{hint} another --revision, or pick {what} repository that has them."
        ), kind
    return None, kind


if sys.argv[1] == "verify":
    verify(sys.argv[2], sys.argv[3], sys.argv[4])
else:
    problem, kind = probe(
        sys.argv[2], sys.argv[3] or None, sys.argv[4], sys.argv[5], float(sys.argv[6]), sys.argv[7], sys.argv[8] == "1"
    )
    if problem:
        print(f"download_models.sh: {problem}", file=sys.stderr)
        sys.exit(2)
    print(kind)
PY

# Check that folder $1 holds every needed file of weights variant $2 for model kind $KIND. Returns 0 when complete;
# 1 when not, with the missing names in MISSING (comma-separated). A helper crash must not pass for "complete",
# hence the exit code 3.
check_complete() {
    local rc=0
    MISSING="$("$PYTHON" -c "$HELPER_PY" verify "$1" "$2" "$KIND")" || rc=$?
    case "$rc" in
        0) return 0 ;;
        3)
            MISSING="${MISSING//$'\n'/, }"
            return 1
            ;;
        *) die "checking $1 failed ($PYTHON exited with $rc, see above). Check that PYTHON runs Python 3." ;;
    esac
}

weights_name() {
    if [[ -n "$1" ]]; then printf 'fp16'; else printf 'fp32'; fi
}

# The kind when --kind is not given: svd when the model id ($1) names Stable Video Diffusion or folder $2's
# model_index.json names its pipeline (no network needed for either), sd otherwise; the hub probe may still
# turn sd into svd from the repository's model_index.json.
default_kind() {
    if [[ "$1" == *stable-video-diffusion* ]] ||
        grep -qs '"StableVideoDiffusionPipeline"' "$2/model_index.json"; then
        printf 'svd'
    else
        printf 'sd'
    fi
}

# True when the staging folder holds downloaded files (beyond hf's own .cache bookkeeping), i.e. is worth resuming.
has_payload() {
    [[ -d "$1" ]] && [[ -n "$(find "$1" -type f -not -path "$1/.cache/*" -print -quit)" ]]
}

model_id=""
dest=""
verify_dir=""
revision=""
suffix=""
force=0
control=0
segment=0
KIND="" # empty until --kind or default_kind says
while [[ $# -gt 0 ]]; do
    case "$1" in
        -h | --help)
            usage
            exit 0
            ;;
        --kind)
            [[ $# -ge 2 ]] ||
                die "--kind needs sd, svd, controlnet, depth, sam2-video or clipseg. Usage: $PROG MODEL_ID --kind KIND"
            KIND="$2"
            shift
            ;;
        --control) control=1 ;;
        --segment) segment=1 ;;
        --dir)
            [[ $# -ge 2 ]] || die "--dir needs a folder. Usage: $PROG [MODEL_ID] --dir DEST"
            dest="$2"
            shift
            ;;
        --revision)
            [[ $# -ge 2 ]] || die "--revision needs a branch, tag or commit. Usage: $PROG [MODEL_ID] --revision REV"
            revision="$2"
            shift
            ;;
        --verify-only)
            [[ $# -ge 2 ]] || die "--verify-only needs a folder. Usage: $PROG --verify-only DIR"
            verify_dir="$2"
            shift
            ;;
        --fp16) suffix=".fp16" ;;
        --force) force=1 ;;
        -*) die "unknown option $1. Run $PROG --help for the options." ;;
        *)
            [[ -z "$model_id" ]] || die "more than one model id ($model_id, $1). Pass one MODEL_ID."
            model_id="$1"
            ;;
    esac
    shift
done

case "$KIND" in
    "" | sd | svd | controlnet | depth | sam2-video | clipseg) ;;
    *)
        die "unknown --kind $KIND. Use sd (an SD-1.x model), svd (Stable Video Diffusion), controlnet, depth," \
            "sam2-video or clipseg."
        ;;
esac
kind_given=0
[[ -z "$KIND" ]] || kind_given=1
case "$KIND" in
    depth | sam2-video | clipseg)
        [[ -z "$suffix" ]] || die "$KIND models ship one precision; drop --fp16 (inference.py casts it to --dtype)."
        ;;
esac

# fetch_set "KIND ID [REVISION]"...  fetch each model of a fixed set into <--dir or checkpoints>/<name>, then exit
fetch_set() {
    local parent="${dest:-$SCRIPT_DIR/checkpoints}" entry kind id rev options
    for entry in "$@"; do
        read -r kind id rev <<<"$entry"
        options=(--kind "$kind" --dir "${parent%/}/${id##*/}")
        [[ -z "$rev" ]] || options+=(--revision "$rev")
        [[ "$force" -eq 0 ]] || options+=(--force)
        [[ "$kind" != controlnet || -z "$suffix" ]] || options+=(--fp16)
        bash "${BASH_SOURCE[0]}" "$id" "${options[@]}" || exit 2
    done
    exit 0
}

[[ "$control" -eq 0 || "$segment" -eq 0 ]] || die "pass --control or --segment, not both (run the script twice)."
if [[ "$control" -eq 1 ]]; then
    [[ -z "$model_id" && -z "$verify_dir" && -z "$revision" && "${KIND:-sd}" == sd ]] ||
        die "--control fetches a fixed set of models; pass only --dir, --fp16 or --force with it."
    fetch_set "${CONTROL_MODELS[@]}"
fi

if [[ "$segment" -eq 1 ]]; then
    [[ -z "$model_id" && -z "$verify_dir" && -z "$revision" && -z "$KIND" && -z "$suffix" ]] ||
        die "--segment fetches a fixed set of models; pass only --dir or --force with it."
    fetch_set "${SEGMENT_MODELS[@]}"
fi

command -v "$PYTHON" >/dev/null ||
    die "no Python found ($PYTHON). Activate the project's venv, or set PYTHON=/path/to/python."
weights="$(weights_name "$suffix")"

if [[ -n "$verify_dir" ]]; then
    [[ -d "$verify_dir" ]] || die "$verify_dir is not a folder. Pass the model folder to --verify-only."
    KIND="${KIND:-$(default_kind "" "$verify_dir")}"
    if ! check_complete "$verify_dir" "$suffix"; then
        other_hint=""
        [[ -n "$suffix" ]] || other_hint=" (for a folder with *.fp16.safetensors weights pass --fp16)"
        die "$verify_dir is incomplete for the $weights weights, missing: $MISSING. Rerun $PROG to resume the" \
            "download, or copy the missing files from the model's hub repository$other_hint."
    fi
    printf 'complete: %s (%s weights)\n' "$verify_dir" "$weights"
    exit 0
fi

if [[ -z "$model_id" && "${KIND:-sd}" != sd ]]; then
    example="lllyasviel/control_v11p_sd15_canny (or use --control)"
    [[ "$KIND" != svd ]] || example="stabilityai/stable-video-diffusion-img2vid-xt"
    [[ "$KIND" != sam2-video ]] || example="facebook/sam2.1-hiera-tiny (or use --segment)"
    [[ "$KIND" != clipseg ]] || example="CIDAS/clipseg-rd64-refined (or use --segment)"
    die "--kind $KIND needs a MODEL_ID, e.g. $example."
fi
model_id="${model_id:-$DEFAULT_MODEL}"
[[ "$model_id" =~ ^[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)?$ ]] ||
    die "invalid model id '$model_id'. Pass a hub id like $DEFAULT_MODEL."
name="${model_id##*/}"
dest="${dest:-$SCRIPT_DIR/checkpoints/$name}"
dest="${dest%/}"
KIND="${KIND:-$(default_kind "$model_id" "$dest")}"
staging="$(dirname "$dest")/.partial-$(basename "$dest")"
# The marker says what the folder holds; its first two lines must match the request for a run to skip the download.
marker_key="model=$model_id
weights=$weights"

if [[ -f "$dest/.complete" && "$force" -eq 0 ]]; then
    [[ "$(head -n 2 "$dest/.complete")" == "$marker_key" ]] ||
        die "$dest already holds another download ($(tr '\n' ' ' <"$dest/.complete")). Rerun with --force to" \
            "replace it, or pick another --dir."
    printf 'already complete: %s (%s, %s weights)\n' "$dest" "$model_id" "$weights"
    exit 0
fi

if [[ -d "$dest" && "$force" -eq 0 ]]; then
    # A folder without the marker was not made by this script (it renames only verified downloads):
    # a model copied in by hand. Accept it if it is complete; never overwrite it without --force.
    check_complete "$dest" "$suffix" ||
        die "$dest exists but is incomplete, missing: $MISSING. Copy the missing files into it, or rerun" \
            "with --force to download $model_id there."
    printf '%s\nrevision=unknown (verified existing folder)\n' "$marker_key" >"$dest/.complete"
    printf 'already complete: %s (existing folder verified, %s weights)\n' "$dest" "$weights"
    exit 0
fi

"$PYTHON" -c 'import huggingface_hub' 2>/dev/null ||
    die "$PYTHON cannot import huggingface_hub. Activate the project's venv (. $SCRIPT_DIR/.venv/bin/activate)," \
        "or set PYTHON=$SCRIPT_DIR/.venv/bin/python."

log "checking $model_id on the Hugging Face hub"
# Nothing is written before this check passes: an offline machine is left exactly as it was. A staging folder
# with files from an earlier interrupted attempt is kept on every failure, so that the next run resumes it.
KIND="$("$PYTHON" -c "$HELPER_PY" probe "$model_id" "$revision" "$suffix" "$dest" "$PROBE_TIMEOUT_S" "$KIND" \
    "$kind_given")" || exit 2

if [[ "$force" -eq 1 ]]; then
    rm -rf "$staging"
fi
# A staging folder that this run leaves without downloaded files is not worth resuming: remove it on any exit.
trap 'has_payload "$staging" || rm -rf "$staging"' EXIT
mkdir -p "$staging"

case "$KIND" in
    controlnet) includes=(config.json "diffusion_pytorch_model$suffix.safetensors") ;;
    depth) includes=(config.json model.safetensors preprocessor_config.json) ;;
    sam2-video) includes=(config.json model.safetensors) ;;
    clipseg)
        includes=(
            config.json model.safetensors preprocessor_config.json
            tokenizer_config.json special_tokens_map.json vocab.json merges.txt tokenizer.json
        )
        ;;
    svd)
        includes=(
            model_index.json
            "scheduler/*.json"
            feature_extractor/preprocessor_config.json
            image_encoder/config.json "image_encoder/model$suffix.safetensors"
            vae/config.json "vae/diffusion_pytorch_model$suffix.safetensors"
            unet/config.json "unet/diffusion_pytorch_model$suffix.safetensors"
        )
        ;;
    *)
        includes=(
            model_index.json
            "scheduler/*.json"
            "tokenizer/*"
            text_encoder/config.json "text_encoder/model$suffix.safetensors"
            vae/config.json "vae/diffusion_pytorch_model$suffix.safetensors"
            unet/config.json "unet/diffusion_pytorch_model$suffix.safetensors"
        )
        ;;
esac
hf_args=(download "$model_id" --local-dir "$staging")
for pattern in "${includes[@]}"; do
    hf_args+=(--include "$pattern")
done
if [[ -n "$revision" ]]; then
    hf_args+=(--revision "$revision")
fi

log "downloading $model_id ($weights weights) into $staging"
# hf's stdout (the folder path) goes to stderr too: this script's stdout is its one-line summary.
"$PYTHON" -m huggingface_hub.cli.hf "${hf_args[@]}" >&2 ||
    die "downloading $model_id failed (see the message above). Rerun the same command to resume; on HTTP 401/403" \
        "accept the model's license on the hub and set HF_TOKEN."

check_complete "$staging" "$suffix" ||
    die "the download of $model_id is incomplete, missing: $MISSING. Rerun the same command to resume, or" \
        "add --force to start over."
rm -rf "$staging/.cache"
printf '%s\nrevision=%s\n' "$marker_key" "${revision:-default}" >"$staging/.complete"

if [[ -e "$dest" ]]; then
    # --force over an existing folder: the old model stays in place until the new one is complete.
    rm -rf "$staging.old"
    mv "$dest" "$staging.old"
    mv "$staging" "$dest"
    rm -rf "$staging.old"
else
    mv "$staging" "$dest"
fi
printf 'downloaded %s (%s weights) into %s\n' "$model_id" "$weights" "$dest"
