#!/usr/bin/env bash
# The Multi Model Server regression suites, run offline with their YAML and .jmx plans unchanged.
#
# Installs Multi Model Server 1.1.11 and model-archiver from PyPI into a virtualenv (Java 17
# from Debian's packages when missing), builds small local model archives under the names the
# suites register (squeezenet_v1.1, resnet-152, resnet-18, shufflenet: one tiny custom handler
# that answers every request with a fixed classification; no downloads), and runs the suites of
# a copy of the suites (MMS_SUITES: the MMS repository's performance suites directory, the
# one holding global_config.yaml; else $PERFGATE_COMPAT_DIR/mms/master) with:
#   -e xlarge  the suites' own environment files (thresholds tuned for an EC2 xlarge host)
#   -c offline.yaml, ONE layer of ours: `settings.env` puts shims first on PATH, where
#     `curl` answers the suites' S3 downloads from local files (kitten.jpg, *.mar) and
#     `multi-model-server` starts MMS with the local model store. The register_unregister
#     plan registers `${model_url}`, an S3 URL in its user-defined variables: the suite's
#     scenario `variables` (from -o) point it at the local archive.
# MMS facts met here: ports >= 32767 are refused, it needs its site-packages on PYTHONPATH
# when started directly, it keeps a global pid file in $TMPDIR (one per TMPDIR: the script
# gives it its own), and its Python workers outlive a SIGTERM to the JVM (perfgate's
# ServerLocalClient and `multi-model-server --stop` in the suites' post-process end them).
#   usage: bench/mms.sh [SUITE ...]   (default: inference_single_worker scale_up_workers
#                                      register_unregister batch_inference; the rest validate)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
corpus=${MMS_SUITES:-${PERFGATE_COMPAT_DIR:?set MMS_SUITES to the MMS performance suites (the directory with global_config.yaml)}/mms/master}
suites=("$@")
[ ${#suites[@]} -gt 0 ] || suites=(inference_single_worker scale_up_workers register_unregister batch_inference)
cache=${MMS_CACHE:-$HOME/.cache/perfgate-bench/mms}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

if ! command -v java >/dev/null; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q openjdk-17-jre-headless >/dev/null
fi
venv=$cache/venv
if ! "$venv/bin/python" -c 'import mms, model_archiver' 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet "multi-model-server==1.1.11" model-archiver
fi
site=$("$venv/bin/python" -c 'import site; print(site.getsitepackages()[0])')

# The model archives: one tiny custom handler under every name the suites register.
store=$work/store
mkdir -p "$store" "$work/model" "$work/shims" "$work/tmp"
cat > "$work/model/handler.py" <<'PY'
"""Answers every request with a fixed classification: the suites measure the server."""
import json


def handle(data, context):
    if data is None:
        return None
    return [json.dumps([{"class": "n02123045 tabby, tabby cat", "probability": 0.42}])
            for _ in data]
PY
for m in squeezenet_v1.1 resnet-152 resnet-18 shufflenet; do
  "$venv/bin/model-archiver" --model-name "$m" --model-path "$work/model" \
    --handler handler:handle --runtime python3 --export-path "$store" -f
done
printf 'not a real kitten, but an image the handler accepts\n' > "$work/kitten.jpg"

# `curl`: the suites' S3 downloads answered locally; the rest goes to the real curl.
real_curl=$(command -v curl)
cat > "$work/shims/curl" <<SH
#!/usr/bin/env bash
args=()
for a in "\$@"; do
  case "\$a" in
    https://s3.amazonaws.com/model-server/inputs/*)
      cp "$work/\$(basename "\$a")" . && exit 0 ;;
    *url=https://s3.amazonaws.com/*)
      # models?url=https://.../name.mar&... -> models?url=name.mar&... (from the local store)
      a=\$(printf '%s' "\$a" | sed -E 's#url=https://s3.amazonaws.com/[^&]*/([^/&]+\\.mar)#url=\\1#') ;;
  esac
  args+=("\$a")
done
exec "$real_curl" "\${args[@]}"
SH
cat > "$work/shims/multi-model-server" <<SH
#!/usr/bin/env bash
if [ "\${1:-}" = "--start" ]; then
  exec "$venv/bin/multi-model-server" "\$@" --model-store "$store"
fi
exec "$venv/bin/multi-model-server" "\$@"
SH
chmod +x "$work/shims/curl" "$work/shims/multi-model-server"
cat > "$work/offline.yaml" <<YAML
# Offline: MMS and curl from the shims, the local model store, MMS's own TMPDIR.
settings:
  env:
    PATH: "$work/shims:$venv/bin:/usr/local/bin:/usr/bin:/bin"
    PYTHONPATH: "$site"
    TMPDIR: "$work/tmp"
YAML

cargo build --release --quiet
perfgate=$root/target/release/perfgate
cp -r "$corpus" "$work/suites"
echo "== validate every suite"
"$perfgate" validate "$work/suites" -e xlarge -c "$work/offline.yaml" | tail -1
for s in "${suites[@]}"; do
  extra=()
  if [ "$s" = register_unregister ]; then
    extra=(-o "scenarios.register_unregister.variables.model_url=squeezenet_v1.1.mar"
           -o "scenarios.register_unregister.variables.model=squeezenet_v1.1")
  fi
  echo "== $s"
  set +e
  TMPDIR=$work/tmp "$perfgate" run "$work/suites/$s/$s.yaml" -e xlarge -c "$work/offline.yaml" \
    "${extra[@]}" --no-progress -a "$work/out-$s" 2>&1 | sed -n '/criterion/,$p'
  echo "   exit ${PIPESTATUS[0]}"
  set -e
  if pgrep -f "model_service_worker" >/dev/null; then
    echo "   WARNING: MMS workers outlived the suite"
  fi
done
